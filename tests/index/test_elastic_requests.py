"""What the Elasticsearch backend sends, through the real client and transport, to an in-process node.

No server can run here, so :class:`FakeCluster` stands in for one at the transport's node layer
(``node_class``): the official client, its transport (retries, node pool, serialisation) and
``helpers.streaming_bulk`` all run for real; only the HTTP round trip is replaced by answers
shaped as in Elastic's REST reference (index/alias/mapping APIs, ``_bulk`` items, ``_pit``,
search with ``pit_id``). Each test checks a request-level property the unit tests of the pure
modules cannot: how many attempts a failure causes, which requests a read-only call makes,
that scans read one point in time and close it, and that a permanent rejection is not resent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from elastic_transport import ApiResponseMeta, BaseNode, HttpHeaders
from elastic_transport._node import NodeApiResponse  # not re-exported at the top level

from core.documents import EmbeddingSpace, SearchFilters, SearchQuery
from core.errors import IndexUnavailable
from core.settings import ElasticsearchSettings
from index.elastic import ElasticsearchIndex
from index.elastic_client import client_options
from index.elastic_mappings import docs_alias
from index.embed import HashingEmbedder
from tests.index.test_elastic_bulk import indexed, load_documents

EMB = HashingEmbedder(dim=32)
PREFIX = "nwtest"
ALIAS = docs_alias(PREFIX)

Reply = tuple[int, Any]


@dataclass
class Request:
    """One request as the node received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any

    @property
    def line(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class FakeCluster:
    """A one-node cluster's answers to the APIs the backend uses (documented response shapes)."""

    version: str = "9.1.0"
    indices: dict[str, dict[str, Any]] = field(default_factory=dict)
    alias_target: str | None = None
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    overrides: dict[str, Callable[[Request], Reply | None]] = field(default_factory=dict)
    bulk_item_errors: dict[str, dict[str, Any]] = field(default_factory=dict)
    """``_id`` -> ``{"status": ..., "error": {...}}`` for bulk items the cluster rejects."""

    def handle(self, req: Request) -> Reply:
        self.requests.append(req)
        for prefix, fn in self.overrides.items():
            if req.line.startswith(prefix):
                reply = fn(req)
                if reply is not None:
                    return reply
        m, parts = req.method, [p for p in req.path.split("/") if p]
        if m == "GET" and len(parts) >= 3 and parts[1] == "_doc":  # ids contain "/"
            if self.alias_target is None:
                return self._missing(parts[0])
            doc_id = "/".join(parts[2:])
            if doc_id not in self.docs:
                return 404, {"_index": self.alias_target, "_id": doc_id, "found": False}
            return 200, {"_index": self.alias_target, "_id": doc_id, "found": True, "_source": self.docs[doc_id]}
        if m == "GET" and not parts:
            return 200, {"name": "n1", "cluster_name": "fake", "version": {"number": self.version}, "tagline": "x"}
        if parts[:1] == ["_alias"]:
            if self.alias_target is None:
                return 404, {"error": f"alias [{parts[1]}] missing", "status": 404}
            return 200, {self.alias_target: {"aliases": {ALIAS: {"is_write_index": True}}}}
        if parts[:1] == ["_index_template"]:
            return 200, {"acknowledged": True}
        if parts == ["_bulk"]:
            return 200, self._bulk(req.body)
        if parts == ["_search"] and isinstance(req.body, dict) and "pit" in req.body:
            return 200, self._pit_page(req.body)
        if parts == ["_pit"] and m == "DELETE":
            return 200, {"succeeded": True, "num_freed": 1}
        if len(parts) == 2 and parts[1] == "_pit":
            return (200, {"id": "pit-0"}) if self.alias_target else self._missing(parts[0])
        if len(parts) == 2 and parts[1] == "_mapping":
            return 200, {parts[0]: {"mappings": self.indices[parts[0]]["mappings"]}}
        if len(parts) == 2 and parts[1] == "_mget":
            ids = req.body["ids"]
            found = [
                {"_id": i, "found": True, "_source": {"content_hash": self.docs[i]["content_hash"]}}
                if i in self.docs
                else {"_id": i, "found": False}
                for i in ids
            ]
            return (200, {"docs": found}) if self.alias_target else self._missing(parts[0])
        if len(parts) == 2 and parts[1] in ("_search", "_count", "_doc"):
            return self._missing(parts[0])
        if len(parts) == 1 and m == "GET":  # indices.get on a pattern
            return 200, {name: {} for name in self.indices}
        if len(parts) == 1 and m == "PUT":  # indices.create
            self.indices[parts[0]] = req.body
            if ALIAS in (req.body.get("aliases") or {}):
                self.alias_target = parts[0]
            return 200, {"acknowledged": True, "shards_acknowledged": True, "index": parts[0]}
        raise AssertionError(f"unexpected request {req.line}")

    def _missing(self, name: str) -> Reply:
        return 404, {
            "error": {"type": "index_not_found_exception", "reason": f"no such index [{name}]", "index": name},
            "status": 404,
        }

    def _bulk(self, lines: list[dict[str, Any]]) -> dict[str, Any]:
        items = []
        for action, source in zip(lines[::2], lines[1::2], strict=True):
            ((op, meta),) = action.items()
            doc_id = meta["_id"]
            if doc_id in self.bulk_item_errors:
                items.append({op: {"_index": meta["_index"], "_id": doc_id, **self.bulk_item_errors[doc_id]}})
                continue
            result = "updated" if doc_id in self.docs else "created"
            self.docs[doc_id] = source
            items.append({op: {"_index": meta["_index"], "_id": doc_id, "result": result, "status": 201}})
        return {"took": 3, "errors": any("error" in next(iter(i.values())) for i in items), "items": items}

    def _pit_page(self, body: dict[str, Any]) -> dict[str, Any]:
        ordered = sorted(self.docs.values(), key=lambda d: (d["published"], d["id"]))
        after = body.get("search_after")
        start = 0
        if after is not None:
            start = next(i for i, d in enumerate(ordered) if [d["published"], d["id"], i] == after) + 1
        page = ordered[start : start + body["size"]]
        n = int(body["pit"]["id"].split("-")[1]) + 1
        hits = [
            {"_id": d["id"], "_source": d, "sort": [d["published"], d["id"], start + i]} for i, d in enumerate(page)
        ]
        return {"pit_id": f"pit-{n}", "took": 1, "hits": {"hits": hits}}


def _node_class(cluster: FakeCluster) -> type[BaseNode]:
    class FakeNode(BaseNode):
        _CLIENT_META_HTTP_CLIENT = ("fk", "1")

        def perform_request(
            self,
            method: str,
            target: str,
            body: bytes | None = None,
            headers: HttpHeaders | None = None,
            request_timeout: Any = None,
        ) -> NodeApiResponse:
            url = urlsplit(target)
            text = (body or b"").decode()
            if url.path.endswith("_bulk"):
                parsed: Any = [json.loads(line) for line in text.splitlines() if line.strip()]
            else:
                parsed = json.loads(text) if text else None
            status, reply = cluster.handle(Request(method, unquote(url.path), parse_qs(url.query), parsed))
            meta = ApiResponseMeta(
                status=status,
                http_version="1.1",
                headers=HttpHeaders({"content-type": "application/json", "x-elastic-product": "Elasticsearch"}),
                duration=0.0,
                node=self.config,
            )
            return NodeApiResponse(meta, json.dumps(reply).encode())

    return FakeNode


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster()


def _open(cluster: FakeCluster, tmp_path: Path, space: EmbeddingSpace = EMB.space, **kwargs: Any) -> ElasticsearchIndex:
    """An :class:`ElasticsearchIndex` over ``cluster`` with the client options the service uses."""
    from elasticsearch import Elasticsearch

    settings = ElasticsearchSettings(urls=("http://127.0.0.1:9200",), urls_env=None, index_prefix=PREFIX)
    client = Elasticsearch(**client_options(settings), node_class=_node_class(cluster))
    return ElasticsearchIndex(
        client,
        space,
        prefix=PREFIX,
        urls=settings.resolved_urls(),
        deadletter=tmp_path / "deadletter" / "elasticsearch.jsonl",
        max_retries=settings.max_retries,
        initial_backoff=0.0,  # no sleeping between streaming_bulk retries in tests
        server_version=(9, 1),
        **kwargs,
    )


def _writes(cluster: FakeCluster) -> list[str]:
    return [r.line for r in cluster.requests if r.method in ("PUT", "DELETE") or r.path.endswith("_bulk")]


@pytest.fixture
def docs(test_data: Path) -> Iterator[list[Any]]:
    yield load_documents(test_data, 12)


# -- item 15: read-only use creates nothing -------------------------------------------------------


def test_reads_on_a_cluster_without_our_index_create_nothing(cluster: FakeCluster, tmp_path: Path) -> None:
    index = _open(cluster, tmp_path)
    assert index.index_name is None
    vec = EMB.embed_query("Москва")
    assert index.search(SearchQuery(text="Москва", vector=vec, k=5)) == []
    assert index.count("source") == {}
    assert index.stats().documents == 0
    assert index.get("tg:a/1") is None
    assert index.content_hashes(["tg:a/1"]) == {}
    assert list(index.iter_documents()) == []
    assert len(index.passage_vectors()) == 0
    assert index.delete(["tg:a/1"]) == 0
    assert _writes(cluster) == []  # no template, no index, no alias
    assert not cluster.indices


def test_the_first_write_creates_the_index(cluster: FakeCluster, tmp_path: Path, docs: list[Any]) -> None:
    index = _open(cluster, tmp_path)
    result = index.upsert(indexed(docs[:3]))
    assert len(result.new) == 3 and index.index_name == cluster.alias_target
    puts = [line for line in _writes(cluster) if line.startswith("PUT") and not line.endswith("/_bulk")]
    assert puts == [f"PUT /_index_template/{PREFIX}-docs", f"PUT /{index.index_name}"]


# -- item 15: one layer owns retries ------------------------------------------------------------------


def test_a_whole_request_429_on_bulk_is_tried_max_retries_plus_one_times(
    cluster: FakeCluster, tmp_path: Path, docs: list[Any]
) -> None:
    index = _open(cluster, tmp_path, create=True)
    overloaded = {
        "error": {
            "type": "es_rejected_execution_exception",
            "reason": "rejected execution of coordinating operation [coordinating_and_primary_bytes=0]",
        },
        "status": 429,
    }
    cluster.overrides["POST /_bulk"] = lambda r: (429, overloaded)
    cluster.overrides["PUT /_bulk"] = lambda r: (429, overloaded)
    with pytest.raises(IndexUnavailable, match="overloaded"):
        index.upsert(indexed(docs[:2]))
    bulks = [r for r in cluster.requests if r.path == "/_bulk"]
    # streaming_bulk retries (3) and the transport does not retry statuses: 4 attempts, not 16.
    assert len(bulks) == 1 + index.max_retries


def test_per_item_429_is_retried_then_left_for_the_next_pass(
    cluster: FakeCluster, tmp_path: Path, docs: list[Any]
) -> None:
    index = _open(cluster, tmp_path, create=True)
    busy = docs[1].id
    cluster.bulk_item_errors[busy] = {
        "status": 429,
        "error": {"type": "es_rejected_execution_exception", "reason": "rejected execution of primary operation"},
    }
    result = index.upsert(indexed(docs[:3]))
    assert set(result.new) == {docs[0].id, docs[2].id}
    assert busy not in result.new + result.rejected  # transient: the caller sends it again
    assert index.deadletter.read() == []
    sent = [a["index"]["_id"] for r in cluster.requests if r.path == "/_bulk" for a in r.body[::2]]
    assert sent.count(busy) == 1 + index.max_retries


@pytest.mark.parametrize("status", [429, 500, 503])
def test_whole_request_429_and_5xx_on_reads_are_index_unavailable(
    cluster: FakeCluster, tmp_path: Path, docs: list[Any], status: int
) -> None:
    index = _open(cluster, tmp_path, create=True)
    index.upsert(indexed(docs[:2]))
    error = {"error": {"type": "search_phase_execution_exception", "reason": "all shards failed"}, "status": status}
    cluster.overrides[f"POST /{ALIAS}/_search"] = lambda r: (status, error)
    before = len(cluster.requests)
    with pytest.raises(IndexUnavailable, match=str(status)):
        index.search(SearchQuery(text="Москва", mode="keyword"))
    assert len(cluster.requests) - before == 1  # failed fast; retried by the caller's next pass


# -- item 15: scans read one point in time ------------------------------------------------------------


def test_scans_page_a_point_in_time_and_close_it(cluster: FakeCluster, tmp_path: Path, docs: list[Any]) -> None:
    index = _open(cluster, tmp_path)
    index.upsert(indexed(docs))
    got = [d.id for d in index.iter_documents(batch=5)]
    assert got == [d.id for d in sorted(docs, key=lambda d: (d.published.isoformat(), d.id))]
    lines = [r.line for r in cluster.requests]
    opened = lines.index(f"POST /{ALIAS}/_pit")
    assert cluster.requests[opened].query["keep_alive"] == ["5m"]
    pages = [r for r in cluster.requests if r.line == "POST /_search"]  # no index: the PIT names it
    assert len(pages) == 3  # 5 + 5 + 2
    assert [p.body["pit"]["id"] for p in pages] == ["pit-0", "pit-1", "pit-2"]  # always the newest id
    assert all(p.body["sort"][-1] == {"_shard_doc": "asc"} for p in pages)
    assert pages[0].body.get("search_after") is None and pages[1].body["search_after"][-1] == 4
    closes = [r for r in cluster.requests if r.line == "DELETE /_pit"]
    assert [c.body for c in closes] == [{"id": "pit-3"}]
    assert lines.index("DELETE /_pit") > lines.index("POST /_search")


def test_an_abandoned_scan_still_closes_its_point_in_time(
    cluster: FakeCluster, tmp_path: Path, docs: list[Any]
) -> None:
    index = _open(cluster, tmp_path)
    index.upsert(indexed(docs))
    scan = cast(Generator[Any, None, None], index.iter_documents(SearchFilters(), batch=5))
    next(scan)
    scan.close()
    assert [r.line for r in cluster.requests].count("DELETE /_pit") == 1


# -- item 14: a permanent rejection is recorded once and not resent ---------------------------------


def test_a_permanently_rejected_document_is_reported_once_and_never_resent(
    cluster: FakeCluster, tmp_path: Path, docs: list[Any]
) -> None:
    index = _open(cluster, tmp_path)
    bad = docs[4]
    cluster.bulk_item_errors[bad.id] = {
        "status": 400,
        "error": {
            "type": "document_parsing_exception",
            "reason": "[1:241] failed to parse field [published] of type [date_nanos]",
            "caused_by": {
                "type": "illegal_argument_exception",
                "reason": "date[1969-07-20T20:17:40Z] is before the epoch in 1970 and cannot be stored in nanosecond"
                " resolution",
            },
        },
    }
    items = indexed(docs[:6])
    first = index.upsert(items)
    assert first.rejected == (bad.id,) and bad.id not in first.new
    assert len(first.new) == 5
    for _ in range(2):  # later passes: the same content is refused without a request
        before = len([r for r in cluster.requests if r.path == "/_bulk"])
        again = index.upsert(items)
        assert again.rejected == (bad.id,) and len(again.unchanged) == 5
        assert len([r for r in cluster.requests if r.path == "/_bulk"]) == before
    records = index.deadletter.read()
    assert len(records) == 1 and records[0]["id"] == bad.id and records[0]["source_id"] == bad.source_id
    assert "before the epoch" in records[0]["reason"]
    # A new process (same rejection log) does not resend it either.
    reopened = _open(cluster, tmp_path)
    before = len([r for r in cluster.requests if r.path == "/_bulk"])
    assert reopened.upsert(items).rejected == (bad.id,)
    assert len([r for r in cluster.requests if r.path == "/_bulk"]) == before
