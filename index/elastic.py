"""The Elasticsearch DocumentIndex backend (config name ``elasticsearch``).

One Elasticsearch document per narrawatch :class:`~core.documents.Document`, passages as
``nested`` objects each carrying ``vec_<space slug>`` (``dense_vector``, cosine, ``int8_hnsw``).
Reads and writes go through the alias ``<prefix>-docs``; the concrete index
``<prefix>-docs-<slug>-<n>`` records its embedding space in the mapping ``_meta``.

Request bodies and response parsing live in pure modules (:mod:`index.elastic_mappings`,
:mod:`index.elastic_query`, :mod:`index.elastic_bulk`); this class does the I/O.

Creation: opening never creates anything. Reads on a cluster without our index see an empty
index (``search``, ``count``, ``stats``, ``status`` create nothing); the first write, or
``narrawatch index create``, creates it.

Acknowledgement: :meth:`ElasticsearchIndex.upsert` reports a document as ``new``/``updated`` only
when its bulk item succeeded (bulk runs with ``refresh=wait_for``; the translog is fsynced per
request by default, so an acknowledged write is durable and searchable). A document Elasticsearch
rejects permanently (a mapping error such as a date before 1970 in ``date_nanos``) is recorded
once in the rejection log (``<data_dir>/deadletter/elasticsearch.jsonl``) and reported as
``rejected``; the same content is not sent again. A transient item failure (429, 5xx, version
conflict) is left out of the result, so the caller retries it. Whole-request failures
(unreachable node, 429/5xx after ``max_retries`` with exponential backoff) raise
:class:`~core.errors.IndexUnavailable`; repeating the upsert later is safe (ids are stable,
unchanged content is skipped). Retry ownership: :mod:`index.elastic_client`.

Scans (``iter_documents``, ``passage_vectors``, re-embedding) read one point in time with
``search_after`` and the ``_shard_doc`` tiebreaker, closed when the scan ends.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from elasticsearch import Elasticsearch, NotFoundError
from elasticsearch.helpers import streaming_bulk

from core.documents import (
    Document,
    EmbeddingSpace,
    IndexedDocument,
    IndexStats,
    SearchFilters,
    SearchHit,
    SearchQuery,
    UpsertResult,
)
from core.errors import EmbeddingSpaceMismatch, IndexBackendError, IndexUnavailable
from core.settings import Config, ElasticsearchSettings
from index.base import CountBy, IndexLifecycle, PassageVectors, ReachUpdate
from index.elastic_admin import (
    create_docs_index,
    current_docs_index,
    drop_prefix,
    ensure_docs_index,
    find_docs_index,
    index_space,
    prefix_status,
    switch_alias,
)
from index.elastic_bulk import (
    RETRY_STATUSES,
    BulkOutcome,
    DeadLetterLog,
    bulk_actions,
    count_deleted,
    delete_actions,
    document_from_source,
    record_bulk_outcome,
    upsert_result,
)
from index.elastic_client import connect, guard, parse_version
from index.elastic_mappings import docs_alias, vector_field
from index.elastic_query import (
    EXCLUDE_VECTORS_SINCE,
    Candidate,
    build_count_body,
    build_scan_body,
    build_search_bodies,
    candidates_from_response,
    exact_candidates,
    floor_candidates,
    fuse_hits,
    parse_count_response,
    parse_search_response,
    query_vector,
    vector_from_source,
)
from index.embed import Embedder, embed_each

__all__ = ["ElasticsearchIndex", "ElasticsearchLifecycle", "ReindexResult", "deadletter_path"]

log = logging.getLogger(__name__)

_VECTOR_EXCLUDES = ["passages.vec_*"]
_STREAMING_BULK_PARAMS = set(inspect.signature(streaming_bulk).parameters)
PIT_KEEP_ALIVE = "5m"
"""How long a scan's point in time lives between pages (renewed by every page)."""


_REACH_SCRIPT = (
    "if (ctx._source.source_id != params.source) { ctx.op = 'noop'; return; }"
    " if (params.views != null) { ctx._source.views = params.views; }"
    " if (ctx._source.extra == null) { ctx._source.extra = [:]; }"
    " for (entry in params.counters.entrySet()) { ctx._source.extra[entry.getKey()] = entry.getValue(); }"
)
"""Painless: set views and the given extra keys of one document of the named source (else a noop)."""


def _reach_params(u: ReachUpdate) -> dict[str, Any]:
    return {"source": u.source_id, "views": u.views, "counters": dict(u.counters)}


def deadletter_path(config: Config) -> Path:
    """``<data_dir>/deadletter/elasticsearch.jsonl``."""
    return config.data_dir / "deadletter" / "elasticsearch.jsonl"


@dataclass(frozen=True)
class ReindexResult:
    """What :meth:`ElasticsearchIndex.reindex` did."""

    old_index: str
    new_index: str
    space: EmbeddingSpace
    documents: int
    failed: int


class ElasticsearchIndex:
    """A :class:`~index.base.DocumentIndex` stored in Elasticsearch (8.12+ / 9.x)."""

    def __init__(
        self,
        client: Elasticsearch,
        space: EmbeddingSpace,
        *,
        prefix: str,
        urls: Sequence[str],
        deadletter: Path | None = None,
        bulk_batch: int = 500,
        max_retries: int = 3,
        initial_backoff: float = 1.0,
        server_version: tuple[int, int] = (0, 0),
        create: bool = False,
        owns_client: bool = True,
    ) -> None:
        self._client = client
        self._space = space
        self.prefix = prefix
        self.urls = tuple(urls)
        self.deadletter = DeadLetterLog(deadletter)
        self.bulk_batch = bulk_batch
        self.max_retries = max_retries
        self.initial_backoff = initial_backoff
        self.server_version = server_version
        self._owns_client = owns_client
        self._closed = False
        self.index_name: str | None
        """The concrete index behind the alias; None until one exists (``create=True`` makes it now)."""
        with guard(self.urls):
            if create:
                self.index_name = ensure_docs_index(client, prefix, space, create=True)
            else:
                self.index_name = find_docs_index(client, prefix, space)

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def connect(
        cls,
        settings: ElasticsearchSettings,
        space: EmbeddingSpace,
        *,
        deadletter: Path | None = None,
        create: bool = False,
        **client_overrides: Any,
    ) -> ElasticsearchIndex:
        """Connect with ``settings`` (fails fast with IndexUnavailable) and bind to ``space``;
        ``create=True`` creates the index now instead of on the first write."""
        client, info = connect(settings, **client_overrides)
        try:
            return cls(
                client,
                space,
                prefix=settings.index_prefix,
                urls=settings.resolved_urls(),
                deadletter=deadletter,
                bulk_batch=settings.bulk_batch,
                max_retries=settings.max_retries,
                server_version=parse_version(info),
                create=create,
            )
        except Exception:
            client.close()
            raise

    @classmethod
    def open(cls, config: Config, space: EmbeddingSpace, *, read_only: bool = False) -> ElasticsearchIndex:
        """The backend for ``config.service.index.elasticsearch``; creates nothing until the first write.

        ``read_only`` changes nothing here: opening never creates, and the cluster serves readers
        beside a writer.
        """
        return cls.connect(config.service.index.elasticsearch, space, deadletter=deadletter_path(config))

    @classmethod
    def lifecycle(cls, config: Config) -> IndexLifecycle:
        """See :class:`~index.base.IndexBackend`: :class:`ElasticsearchLifecycle`."""
        return ElasticsearchLifecycle(config)

    @classmethod
    def for_tests(cls, url: str, space: EmbeddingSpace, prefix: str) -> ElasticsearchIndex:
        """An index under ``prefix`` at ``url`` (credentials: ``NARRAWATCH_ES_USERNAME`` default
        ``elastic`` when ``NARRAWATCH_ES_PASSWORD`` is set). Call :meth:`drop` afterwards."""
        username = os.environ.get("NARRAWATCH_ES_USERNAME") or (
            "elastic" if os.environ.get("NARRAWATCH_ES_PASSWORD") else None
        )
        settings = ElasticsearchSettings(
            urls=(url,),
            urls_env=None,
            index_prefix=prefix,
            username=username,
            verify_certs=os.environ.get("NARRAWATCH_ES_VERIFY_CERTS", "1") != "0",
            ca_certs=os.environ.get("NARRAWATCH_ES_CA_CERTS") or None,
            request_timeout=timedelta(seconds=30),
            max_retries=1,
            bulk_batch=200,
        )
        deadletter = Path(tempfile.mkdtemp(prefix=f"{prefix}-")) / "deadletter.jsonl"  # a private 0700 dir
        return cls.connect(settings, space, deadletter=deadletter, create=True)

    # -- DocumentIndex ----------------------------------------------------------------------------

    @property
    def embedding_space(self) -> EmbeddingSpace:
        """See :class:`~index.base.DocumentIndex`."""
        return self._space

    @property
    def alias(self) -> str:
        """``<prefix>-docs``: every read and write goes through it."""
        return docs_alias(self.prefix)

    @property
    def client(self) -> Elasticsearch:
        """The underlying client (for the CLI and tests)."""
        return self._client

    def upsert(self, docs: Sequence[IndexedDocument]) -> UpsertResult:
        """See :class:`~index.base.DocumentIndex`; only acknowledged ids are reported (module doc)."""
        latest = list({d.document.id: d for d in docs}.values())
        for item in latest:  # validate every vector before writing anything
            if item.document.passages and item.vectors.shape[1:] != (self._space.dim,):
                raise EmbeddingSpaceMismatch(
                    f"{item.document.id}: vectors of shape {item.vectors.shape} offered to an index of"
                    f" {self._space.key} ({self._space.dim}-d)"
                )
        known = self.content_hashes([d.document.id for d in latest])
        writes = [d for d in latest if known.get(d.document.id) != d.document.content_hash]
        # Content rejected permanently before is not sent again (recorded once, reported rejected).
        refused = [
            d.document.id for d in writes if self.deadletter.rejected_hash(d.document.id) == d.document.content_hash
        ]
        writes = [d for d in writes if d.document.id not in set(refused)]
        if writes:
            self._writable()
        outcome = self._bulk_index(writes, self.alias, self._space)
        return upsert_result(latest, known, outcome.acked, (*refused, *outcome.rejected))

    def get(self, doc_id: str) -> Document | None:
        """See :class:`~index.base.DocumentIndex`."""
        if not self._readable():
            return None
        with guard(self.urls):
            try:
                resp = self._client.get(index=self.alias, id=doc_id, source_excludes=_VECTOR_EXCLUDES)
            except NotFoundError:
                return None
        if not resp.body.get("found") or "_source" not in resp.body:
            return None
        return document_from_source(resp.body["_source"])

    def content_hashes(self, doc_ids: Sequence[str]) -> dict[str, str]:
        """See :class:`~index.base.DocumentIndex` (``_mget`` in chunks of 1000)."""
        out: dict[str, str] = {}
        ids = list(dict.fromkeys(doc_ids))
        if not ids or not self._readable():
            return out
        for start in range(0, len(ids), 1000):
            with guard(self.urls):
                resp = self._client.mget(
                    index=self.alias, ids=ids[start : start + 1000], source_includes=["content_hash"]
                )
            for d in resp.body["docs"]:
                if d.get("found"):
                    out[d["_id"]] = d["_source"]["content_hash"]
        return out

    def search(self, query: SearchQuery) -> list[SearchHit]:
        """See :class:`~index.base.DocumentIndex`. Hybrid: one ``_msearch``, fused client-side (RRF).

        Semantic scores are exact cosines over the stored float vectors (see
        :func:`index.elastic_query.exact_candidates`), so they mean what the embedded backend's mean.
        """
        if query.k <= 0:
            return []
        bodies = build_search_bodies(query, self._space, server_version=self.server_version)
        if not bodies or not self._readable():
            return []
        if len(bodies) == 1:
            ((mode, body),) = bodies.items()
            with guard(self.urls):
                resp = self._client.search(index=self.alias, body=body)
            if query.mode == "hybrid":  # one side missing: same scores as the embedded backend
                cands = self._candidates(mode, resp.body, query)
                return fuse_hits(
                    cands if mode == "keyword" else [],
                    cands if mode == "semantic" else [],
                    group_by_document=query.group_by_document,
                    k=query.k,
                )
            grouped = self._candidates(mode, resp.body, query, group_by_document=query.group_by_document)
            return parse_search_response(
                resp.body, mode=mode, group_by_document=query.group_by_document, k=query.k, candidates=grouped
            )
        searches: list[dict[str, Any]] = []
        for body in (bodies["keyword"], bodies["semantic"]):
            searches.extend([{}, body])
        with guard(self.urls):
            resp = self._client.msearch(index=self.alias, searches=searches)
        responses = resp.body["responses"]
        for r in responses:
            if "error" in r:
                status = int(r.get("status", 500))
                if status == 429 or status >= 500:
                    raise IndexUnavailable(f"Elasticsearch search failed ({status}), retry later: {r['error']}")
                raise IndexBackendError(f"Elasticsearch search failed: {r['error']}")
        keyword = self._candidates("keyword", responses[0], query)
        semantic = self._candidates("semantic", responses[1], query)
        return fuse_hits(keyword, semantic, group_by_document=query.group_by_document, k=query.k)

    def _candidates(
        self, mode: str, resp: dict[str, Any], query: SearchQuery, *, group_by_document: bool = False
    ) -> list[Candidate]:
        if mode == "semantic":
            vector = query_vector(query, self._space)
            exact = exact_candidates(resp, vector, self._space, group_by_document=group_by_document)
            return floor_candidates(exact, query.min_similarity)
        return candidates_from_response(resp, group_by_document=group_by_document)

    def _scan(self, filters: SearchFilters | None, batch: int, **source: Any) -> Iterator[dict[str, Any]]:
        """Every matching hit, oldest published first, read from one point in time."""
        if not self._readable():
            return
        with guard(self.urls):
            pit: str = self._client.open_point_in_time(index=self.alias, keep_alive=PIT_KEEP_ALIVE).body["id"]
        try:
            after: list[Any] | None = None
            while True:
                body = build_scan_body(
                    filters, size=batch, search_after=after, pit_id=pit, keep_alive=PIT_KEEP_ALIVE, **source
                )
                with guard(self.urls):
                    resp = self._client.search(body=body)
                pit = resp.body.get("pit_id") or pit  # always page on with the newest id
                hits = resp.body["hits"]["hits"]
                yield from hits
                if len(hits) < batch:
                    return
                after = hits[-1]["sort"]
        finally:
            with contextlib.suppress(Exception):  # it expires after keep_alive anyway
                self._client.close_point_in_time(id=pit)

    def iter_documents(self, filters: SearchFilters | None = None, *, batch: int = 500) -> Iterator[Document]:
        """See :class:`~index.base.DocumentIndex` (``search_after`` over ``published``, ``id``)."""
        for hit in self._scan(filters, batch, excludes=_VECTOR_EXCLUDES):
            yield document_from_source(hit["_source"])

    def passage_vectors(self, filters: SearchFilters | None = None) -> PassageVectors:
        """See :class:`~index.base.DocumentIndex`; ordered by (published, document id, passage)."""
        field = vector_field(self._space)
        exclude_vectors = False if self.server_version >= EXCLUDE_VECTORS_SINCE else None
        ids: list[str] = []
        pidx: list[int] = []
        rows: list[np.ndarray] = []
        includes = ["id", "passages.index", f"passages.{field}"]
        for hit in self._scan(filters, 500, includes=includes, exclude_vectors=exclude_vectors):
            src = hit["_source"]
            passages = src.get("passages") or []
            for p in sorted(passages if isinstance(passages, list) else [passages], key=lambda p: p["index"]):
                ids.append(src["id"])
                pidx.append(int(p["index"]))
                if field not in p:
                    raise IndexBackendError(
                        f"{src['id']}: Elasticsearch {self.server_version} returned no passages.{field} in _source"
                        " (vectors excluded from _source?); set index.mapping.exclude_source_vectors: false"
                    )
                rows.append(vector_from_source(p[field]))
        matrix = np.stack(rows).astype(np.float32) if rows else np.zeros((0, self._space.dim), np.float32)
        return PassageVectors(document_ids=tuple(ids), passage_indexes=tuple(pidx), vectors=matrix)

    def count(self, by: CountBy, filters: SearchFilters | None = None) -> dict[str, int]:
        """See :class:`~index.base.DocumentIndex` (terms / date_histogram aggregation)."""
        body = build_count_body(by, filters)
        if not self._readable():
            return {}
        with guard(self.urls):
            resp = self._client.search(index=self.alias, body=body)
        return parse_count_response(resp.body)

    def stats(self) -> IndexStats:
        """See :class:`~index.base.DocumentIndex`; ``size_bytes`` is the primary store size."""
        if not self._readable():
            return IndexStats(
                documents=0, passages=0, by_source={}, by_language={}, size_bytes=0, embedding_space=self._space
            )
        with guard(self.urls):
            docs = int(self._client.count(index=self.alias).body["count"])
            agg = self._client.search(
                index=self.alias, body={"size": 0, "aggs": {"p": {"nested": {"path": "passages"}}}}
            ).body
            store = self._client.indices.stats(index=self.alias, metric="store").body
        return IndexStats(
            documents=docs,
            passages=int(agg["aggregations"]["p"]["doc_count"]),
            by_source=self.count("source"),
            by_language=self.count("language"),
            size_bytes=int(store["_all"]["primaries"]["store"]["size_in_bytes"]),
            embedding_space=self._space,
        )

    def delete(self, doc_ids: Sequence[str]) -> int:
        """See :class:`~index.base.DocumentIndex`."""
        ids = list(dict.fromkeys(doc_ids))
        if not ids or not self._readable():
            return 0
        return count_deleted(self._run_bulk(delete_actions(ids, self.alias)))

    def update_reach(self, updates: Sequence[ReachUpdate]) -> list[str]:
        """See :class:`~index.base.DocumentIndex`: a scripted partial update per document (``views``
        and the given ``extra`` keys); a document of another source is left alone (``noop``)."""
        if not updates or not self._readable():
            return []
        index = self._writable()
        actions = (
            {
                "_op_type": "update",
                "_index": index,
                "_id": u.document_id,
                "script": {"source": _REACH_SCRIPT, "lang": "painless", "params": _reach_params(u)},
            }
            for u in updates
        )
        done = []
        for ok, item in self._run_bulk(actions):
            info = item.get("update", {})
            if ok and info.get("result") == "updated":
                done.append(str(info.get("_id")))
        return done

    def close(self) -> None:
        """See :class:`~index.base.DocumentIndex`."""
        if not self._closed and self._owns_client:
            self._client.close()
        self._closed = True

    # -- index lifecycle (CLI: narrawatch index create | reindex | status) -----------------------

    def status(self) -> dict[str, Any]:
        """Server, alias, every index generation with its space, documents and size."""
        with guard(self.urls):
            return prefix_status(self._client, self.prefix)

    def reindex(self, embedder: Embedder, *, batch: int | None = None) -> ReindexResult:
        """Re-embed every document with ``embedder`` into a new index, then switch the alias atomically.

        The old index is kept (delete it once satisfied). Writes made by other processes during
        the copy go to the old index and are not copied: stop ingest while re-embedding.
        """
        new_space = embedder.space
        with guard(self.urls):
            new_index = create_docs_index(self._client, self.prefix, new_space, with_alias=False)
        done = failed = 0
        pending: list[Document] = []

        def flush() -> None:
            nonlocal done, failed
            items = embed_each(embedder, pending)
            outcome = self._bulk_index(items, new_index, new_space)
            done += len(outcome.acked)
            failed += len(items) - len(outcome.acked)
            pending.clear()

        for doc in self.iter_documents(batch=batch or self.bulk_batch):
            pending.append(doc)
            if len(pending) >= (batch or self.bulk_batch):
                flush()
        if pending:
            flush()
        with guard(self.urls):
            self._client.indices.refresh(index=new_index)
            old = switch_alias(self._client, self.prefix, new_index)
        log.info("re-embedded %d documents (%d failed) into %s", done, failed, new_index)
        return ReindexResult(old or self.index_name or "", new_index, new_space, done, failed)

    def drop(self) -> list[str]:
        """Delete every index and template of this prefix (tests, teardown)."""
        with guard(self.urls):
            return drop_prefix(self._client, self.prefix)

    # -- creation on first write ------------------------------------------------------------------

    def _readable(self) -> bool:
        """True when the index exists (checked again while it does not: another process may create it)."""
        if self.index_name is None:
            with guard(self.urls):
                self.index_name = find_docs_index(self._client, self.prefix, self._space)
        return self.index_name is not None

    def _writable(self) -> str:
        """The concrete index, created for this space on the first write."""
        if self.index_name is None:
            with guard(self.urls):
                self.index_name = ensure_docs_index(self._client, self.prefix, self._space, create=True)
        return self.index_name

    # -- bulk -------------------------------------------------------------------------------------

    def _run_bulk(self, actions: Iterable[dict[str, Any]]) -> list[tuple[bool, dict[str, Any]]]:
        kwargs: dict[str, Any] = {
            "chunk_size": self.bulk_batch,
            "max_chunk_bytes": 50 * 1024 * 1024,
            "raise_on_error": False,
            "raise_on_exception": True,
            "max_retries": self.max_retries,
            "initial_backoff": self.initial_backoff,
            "max_backoff": 60,
            "refresh": "wait_for",
        }
        if "retry_on_status" in _STREAMING_BULK_PARAMS:  # elasticsearch-py >= 8.13
            kwargs["retry_on_status"] = RETRY_STATUSES
        # streaming_bulk owns status retries; the transport must not retry them too (it would
        # multiply attempts: (1 + n) x (1 + n)), whatever client we were given.
        client = self._client.options(retry_on_status=())
        with guard(self.urls):
            return list(streaming_bulk(client, actions, **kwargs))

    def _bulk_index(self, items: Sequence[IndexedDocument], index: str, space: EmbeddingSpace) -> BulkOutcome:
        if not items:
            return BulkOutcome()
        by_id = {d.document.id: d.document for d in items}
        results = self._run_bulk(bulk_actions(items, space, index))
        return record_bulk_outcome(results, by_id, self.deadletter, index)


class ElasticsearchLifecycle:
    """:class:`~index.base.IndexLifecycle` of the configured cluster and index prefix."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.settings = config.service.index.elasticsearch

    def create(self, space: EmbeddingSpace) -> str:
        """Make sure the alias exists for ``space``; returns the concrete index name."""
        index = ElasticsearchIndex.connect(self.settings, space, deadletter=deadletter_path(self.config), create=True)
        try:
            return index._writable()
        finally:
            index.close()

    def status(self) -> dict[str, Any]:
        """Server, alias, every index generation with its space and counts (no space needed)."""
        client, _ = connect(self.settings)
        try:
            with guard(self.settings.resolved_urls()):
                return prefix_status(client, self.settings.index_prefix)
        finally:
            client.close()

    def reindex(self, embedder: Embedder) -> dict[str, Any]:
        """Re-embed the current index (whatever its space) with ``embedder``; switch the alias."""
        settings = self.settings
        client, info = connect(settings)
        try:
            with guard(settings.resolved_urls()):
                current = current_docs_index(client, settings.index_prefix)
                old_space = index_space(client, current) if current else None
            if old_space is None:
                raise IndexBackendError("nothing to re-embed: no narrawatch index behind the alias; run `index create`")
            index = ElasticsearchIndex(
                client,
                old_space,
                prefix=settings.index_prefix,
                urls=settings.resolved_urls(),
                deadletter=deadletter_path(self.config),
                bulk_batch=settings.bulk_batch,
                max_retries=settings.max_retries,
                server_version=parse_version(info),
                create=False,
                owns_client=False,
            )
            res = index.reindex(embedder)
        finally:
            client.close()
        return {
            "old_index": res.old_index,
            "new_index": res.new_index,
            "documents": res.documents,
            "failed": res.failed,
        }
