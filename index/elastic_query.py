"""Search, count and scan request bodies and response parsers (pure functions).

Shapes follow Elastic's Query DSL reference:

* nested query + ``inner_hits``: https://www.elastic.co/guide/en/elasticsearch/reference/current/inner-hits.html
* top-level ``knn`` on a nested vector field with ``filter`` and ``inner_hits``:
  https://www.elastic.co/guide/en/elasticsearch/reference/current/knn-search.html#nested-knn-search
* aggregations: terms / date_histogram (``calendar_interval``, ``format``, ``min_doc_count``);
* point in time + ``search_after`` with the ``_shard_doc`` tiebreaker:
  https://www.elastic.co/guide/en/elasticsearch/reference/current/paginate-search-results.html#search-after

Semantic scores are exact: the kNN request returns the candidates' float passage vectors and
:func:`exact_candidates` computes the cosine client-side, because nested ``inner_hits`` are
scored on the int8-quantised vectors unless the query phase rescores (elasticsearch#156332, and
only on servers with that fix), so their scores differ from the embedded backend's by ~1e-2.

Hybrid search is fused here, client-side, with :func:`index.base.rrf_fuse` (see docs/elasticsearch.md
for why the server-side ``rrf`` retriever is not used).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np

from core.documents import EmbeddingSpace, SearchFilters, SearchHit, SearchQuery
from core.errors import EmbeddingSpaceMismatch
from core.query import And, Node, Not, Phrase, Term
from core.timefmt import iso
from index.base import CountBy, rrf_fuse
from index.elastic_mappings import vector_field

__all__ = [
    "COUNT_FIELDS",
    "HIT_SOURCE_FIELDS",
    "HYBRID_WINDOW_MIN",
    "KEYWORD_FIELDS",
    "Candidate",
    "build_count_body",
    "build_keyword_body",
    "build_knn_body",
    "build_scan_body",
    "build_search_bodies",
    "candidates_from_response",
    "cosine_from_knn_score",
    "exact_candidates",
    "expr_clause",
    "filter_clauses",
    "floor_candidates",
    "fuse_hits",
    "keyword_clause",
    "knn_score_from_cosine",
    "parse_count_response",
    "parse_search_response",
    "query_vector",
    "vector_from_source",
]

log = logging.getLogger(__name__)

HIT_SOURCE_FIELDS = (
    "id",
    "source_id",
    "kind",
    "url",
    "title",
    "language",
    "published",
    "passages.index",
    "passages.text",
    "passages.start",
)
"""Parent ``_source`` fields a search needs; passages are matched to inner hits by ``_nested.offset``."""

KEYWORD_FIELDS = ("passages.text", "passages.text.stem", "passages.title", "passages.title.stem")
"""BM25 fields: passage text and the document title repeated on each passage, folded and stemmed."""
COUNT_FIELDS: dict[str, str] = {"source": "source_id", "language": "language", "kind": "kind"}
HYBRID_WINDOW_MIN = 50
"""Each list fused by RRF is ``max(5 k, 50)`` documents deep (like the embedded backend's window)."""
RESCORE_SINCE = (9, 0)  # knn.rescore_vector: experimental in 8.18, used from 9.0 on
EXCLUDE_VECTORS_SINCE = (9, 2)  # vectors left out of _source by default; _source.exclude_vectors: false
RESCORE_OVERSAMPLE = 2.0
MAX_INNER_HITS = 100  # index.max_inner_result_window default
MAX_KNN = 10_000  # k and num_candidates upper bound
TERMS_SIZE = 10_000


def filter_clauses(filters: SearchFilters | None) -> list[dict[str, Any]]:
    """``bool.filter`` clauses equivalent to :func:`index.base.in_filters` (on document fields)."""
    if filters is None:
        return []
    out: list[dict[str, Any]] = []
    for values, field in (
        (filters.sources, "source_id"),
        (filters.languages, "language"),
        (filters.kinds, "kind"),
        (filters.document_ids, "id"),
    ):
        if values:
            out.append({"terms": {field: list(values)}})
    rng: dict[str, str] = {}
    if filters.since is not None:
        rng["gte"] = iso(filters.since)
    if filters.until is not None:
        rng["lt"] = iso(filters.until)
    if rng:
        out.append({"range": {"published": rng}})
    return out


def _bool_filter(filters: SearchFilters | None) -> dict[str, Any]:
    clauses = filter_clauses(filters)
    return {"bool": {"filter": clauses}} if clauses else {"match_all": {}}


def query_vector(query: SearchQuery, space: EmbeddingSpace) -> list[float]:
    """The query vector as a JSON list, checked against the index's space dimension."""
    if query.vector is None:
        raise ValueError(f"{query.mode} search needs query.vector (Embedder.embed_query)")
    vec = np.asarray(query.vector, dtype=np.float32)
    if vec.shape != (space.dim,):
        raise EmbeddingSpaceMismatch(f"query vector has shape {vec.shape}; this index holds {space.dim}-d {space.key}")
    out: list[float] = vec.astype(np.float64).round(7).tolist()
    return out


def _inner_size(query: SearchQuery, size: int) -> int:
    # Hybrid fuses passage rankings (then groups), so it always asks for several passages per document.
    grouped = query.group_by_document and query.mode != "hybrid"
    return 1 if grouped else max(1, min(size, MAX_INNER_HITS))


def expr_clause(node: Node) -> dict[str, Any]:
    """A :mod:`core.query` expression as a query on passage fields (inside the ``nested`` query,
    so it is matched per passage like the other backends): a Term is a ``multi_match`` over
    :data:`KEYWORD_FIELDS` (folded and stemmed), a Phrase the same with ``type: phrase``;
    And/Or/Not are ``bool`` ``must``/``should``/``must_not``."""
    if isinstance(node, Term):
        return {"multi_match": {"query": node.word, "fields": list(KEYWORD_FIELDS), "type": "most_fields"}}
    if isinstance(node, Phrase):
        return {"multi_match": {"query": " ".join(node.words), "fields": list(KEYWORD_FIELDS), "type": "phrase"}}
    if isinstance(node, Not):
        return {"bool": {"must": [{"match_all": {}}], "must_not": [expr_clause(node.child)]}}
    if isinstance(node, And):
        must = [expr_clause(c) for c in node.children if not isinstance(c, Not)]
        must_not = [expr_clause(c.child) for c in node.children if isinstance(c, Not)]
        out: dict[str, Any] = {"must": must}
        if must_not:
            out["must_not"] = must_not
        return {"bool": out}
    return {"bool": {"should": [expr_clause(c) for c in node.children], "minimum_should_match": 1}}


def keyword_clause(query: SearchQuery) -> dict[str, Any]:
    """The passage query of the keyword side: ``query.expr`` translated, else any word of ``query.text``."""
    if query.expr is not None:
        return expr_clause(query.expr)
    return {"multi_match": {"query": query.text, "fields": list(KEYWORD_FIELDS), "type": "most_fields"}}


def floor_candidates(candidates: list[Candidate], floor: float | None) -> list[Candidate]:
    """Semantic candidates whose cosine reaches ``floor`` (``SearchQuery.min_similarity``; scores
    are ``(1 + cos) / 2``), order kept."""
    if floor is None:
        return candidates
    return [c for c in candidates if cosine_from_knn_score(c.score) >= floor]


def build_keyword_body(query: SearchQuery, *, size: int | None = None) -> dict[str, Any]:
    """BM25 over passage text (folded + stemmed sub-field), filters in ``bool.filter``.

    Documents are ranked by their best passage (``score_mode: max``); ``inner_hits`` name the
    passages (up to ``size`` each when not grouping, so the global top-``size`` passages are exact).
    """
    size = size or query.k
    return {
        "size": size,
        "track_total_hits": False,
        "_source": {"includes": list(HIT_SOURCE_FIELDS)},
        "query": {
            "bool": {
                "filter": filter_clauses(query.filters),
                "must": [
                    {
                        "nested": {
                            "path": "passages",
                            "score_mode": "max",
                            "query": keyword_clause(query),
                            "inner_hits": {
                                "size": _inner_size(query, size),
                                "_source": False,
                                "highlight": {
                                    "fields": {"passages.text": {"number_of_fragments": 1, "fragment_size": 200}}
                                },
                            },
                        }
                    }
                ],
            }
        },
    }


def build_knn_body(
    query: SearchQuery,
    space: EmbeddingSpace,
    *,
    size: int | None = None,
    server_version: tuple[int, int] = (0, 0),
) -> dict[str, Any]:
    """Approximate kNN over nested passage vectors; filters go inside ``knn.filter`` (pre-filtering).

    The int8 HNSW graph only picks the candidate documents (on servers >= 9.0 re-scored with the
    float vectors, ``rescore_vector.oversample``); ``_source`` carries every candidate passage's
    float vector so :func:`exact_candidates` can score them exactly (module doc). ``inner_hits``
    remain as a fallback for a server that returns no vectors.
    """
    size = size or query.k
    field = f"passages.{vector_field(space)}"
    knn: dict[str, Any] = {
        "field": field,
        "query_vector": query_vector(query, space),
        "k": min(size, MAX_KNN),
        "num_candidates": min(MAX_KNN, max(100, 10 * size)),
        "inner_hits": {"size": _inner_size(query, size), "_source": False},
    }
    if server_version >= RESCORE_SINCE:
        knn["rescore_vector"] = {"oversample": RESCORE_OVERSAMPLE}
    clauses = filter_clauses(query.filters)
    if clauses:
        knn["filter"] = {"bool": {"filter": clauses}}
    source: dict[str, Any] = {"includes": [*HIT_SOURCE_FIELDS, field]}
    if server_version >= EXCLUDE_VECTORS_SINCE:
        source["exclude_vectors"] = False
    return {"size": size, "track_total_hits": False, "_source": source, "knn": knn}


def build_search_bodies(
    query: SearchQuery, space: EmbeddingSpace, *, server_version: tuple[int, int] = (0, 0)
) -> dict[Literal["keyword", "semantic"], dict[str, Any]]:
    """The request bodies a query needs: one per ranking (two for hybrid, sent with ``_msearch``).

    Hybrid without query text degrades to semantic, without a vector to keyword; keyword with
    empty text needs no request; semantic without a vector raises ``ValueError``.
    """
    out: dict[Literal["keyword", "semantic"], dict[str, Any]] = {}
    window = max(query.k * 5, HYBRID_WINDOW_MIN) if query.mode == "hybrid" else query.k
    if query.mode in ("keyword", "hybrid") and (query.expr is not None or query.text.strip()):
        out["keyword"] = build_keyword_body(query, size=window)
    if query.mode == "semantic" or (query.mode == "hybrid" and query.vector is not None):
        out["semantic"] = build_knn_body(query, space, size=window, server_version=server_version)
    return out


def cosine_from_knn_score(score: float) -> float:
    """Invert Elasticsearch's cosine kNN score ``_score = (1 + cosine) / 2``."""
    return 2.0 * score - 1.0


def knn_score_from_cosine(cosine: float) -> float:
    """Elasticsearch's cosine kNN score ``(1 + cosine) / 2`` (so exact and server scores mix)."""
    return (1.0 + cosine) / 2.0


def vector_from_source(value: Any) -> np.ndarray:
    """A stored vector: a JSON float list, or base64 big-endian float32 (ES 9 vector rehydration)."""
    if isinstance(value, str):
        return np.frombuffer(base64.b64decode(value), dtype=">f4").astype(np.float32)
    return np.asarray(value, dtype=np.float32)


@dataclass(frozen=True)
class Candidate:
    """One ranked unit (a document's best passage, or one passage) parsed from a response."""

    document_id: str
    passage_index: int
    score: float
    url: str
    title: str
    source_id: str
    language: str
    published: datetime
    snippet: str
    highlight: str = ""

    def key(self, group_by_document: bool) -> str:
        """Fusion key: the document id, or ``<id>#<passage index>`` per passage."""
        return self.document_id if group_by_document else f"{self.document_id}#{self.passage_index}"


def _inner_hits(hit: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    inner = hit.get("inner_hits") or {}
    for value in inner.values():  # one entry, named after the nested path ("passages")
        hits: list[Mapping[str, Any]] = value.get("hits", {}).get("hits", [])
        return hits
    return []


def candidates_from_response(resp: Mapping[str, Any], *, group_by_document: bool) -> list[Candidate]:
    """Parse a search response whose hits carry passage ``inner_hits``; best first.

    Grouped: one candidate per document (its best inner hit); ungrouped: every inner hit. Both are
    ordered by the inner-hit score (ties: response order, then passage position), so a document's
    grouped score equals its best passage's score (nested kNN inner hits are scored exactly, the
    top-level score may be int8-approximate).
    """
    rows: list[tuple[float, int, int, Candidate]] = []
    for doc_rank, hit in enumerate(resp.get("hits", {}).get("hits", [])):
        src = hit.get("_source") or {}
        passages = src.get("passages") or []
        if isinstance(passages, dict):  # a single nested object may come back unwrapped
            passages = [passages]
        inner = _inner_hits(hit) or [{"_nested": {"offset": 0}, "_score": hit.get("_score")}]
        for inner_hit in inner[:1] if group_by_document else inner:
            offset = int((inner_hit.get("_nested") or {}).get("offset", 0))
            passage = passages[offset] if offset < len(passages) else {}
            score = inner_hit.get("_score")
            if score is None:
                score = hit.get("_score")
            frags = (inner_hit.get("highlight") or {}).get("passages.text") or []
            cand = Candidate(
                document_id=str(src.get("id", hit.get("_id"))),
                passage_index=int(passage.get("index", offset)),
                score=float(score or 0.0),
                url=str(src.get("url", "")),
                title=str(src.get("title", "")),
                source_id=str(src.get("source_id", "")),
                language=str(src.get("language", "")),
                published=datetime.fromisoformat(str(src["published"])),
                snippet=str(passage.get("text", "")),
                highlight=str(frags[0]) if frags else "",
            )
            rows.append((cand.score, doc_rank, offset, cand))
    rows.sort(key=lambda r: (-r[0], r[1], r[2]))
    return [r[3] for r in rows]


def _passages_of(src: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    passages = src.get("passages") or []
    return [passages] if isinstance(passages, dict) else list(passages)


def exact_candidates(
    resp: Mapping[str, Any],
    query: Sequence[float] | np.ndarray,
    space: EmbeddingSpace,
    *,
    group_by_document: bool,
) -> list[Candidate]:
    """Semantic candidates scored exactly: cosine of ``query`` and each passage's stored float vector.

    Every passage of every returned document is scored (not only the inner hits, whose scores
    are int8-approximate), ``score`` is ``(1 + cos) / 2`` like the server's, and candidates are
    ordered by it (ties: document rank, passage position): the same ranking and scores the
    embedded backend computes over the same documents. Grouped: each document's best passage.
    A hit whose ``_source`` lacks vectors keeps its inner-hit scores (logged).
    """
    field = vector_field(space)
    q = np.asarray(query, dtype=np.float64)
    qn = float(np.linalg.norm(q))
    rows: list[tuple[float, int, int, Candidate]] = []
    for doc_rank, hit in enumerate(resp.get("hits", {}).get("hits", [])):
        src = hit.get("_source") or {}
        passages = _passages_of(src)
        if not passages or any(field not in p for p in passages):
            log.warning("kNN hit %s has no %s in _source: its scores are approximate", hit.get("_id"), field)
            single = {"hits": {"hits": [hit]}}
            rows.extend(
                (c.score, doc_rank, c.passage_index, c)
                for c in candidates_from_response(single, group_by_document=group_by_document)
            )
            continue
        best: tuple[float, int, int, Candidate] | None = None
        for offset, passage in enumerate(passages):
            vec = vector_from_source(passage[field]).astype(np.float64)
            norm = float(np.linalg.norm(vec)) * qn
            cos = float(vec @ q) / norm if norm > 0 else 0.0
            cand = Candidate(
                document_id=str(src.get("id", hit.get("_id"))),
                passage_index=int(passage.get("index", offset)),
                score=knn_score_from_cosine(cos),
                url=str(src.get("url", "")),
                title=str(src.get("title", "")),
                source_id=str(src.get("source_id", "")),
                language=str(src.get("language", "")),
                published=datetime.fromisoformat(str(src["published"])),
                snippet=str(passage.get("text", "")),
            )
            row = (cand.score, doc_rank, cand.passage_index, cand)
            if not group_by_document:
                rows.append(row)
            elif best is None or (-row[0], row[2]) < (-best[0], best[2]):
                best = row
        if best is not None:
            rows.append(best)
    rows.sort(key=lambda r: (-r[0], r[1], r[2]))
    return [r[3] for r in rows]


def _hit(c: Candidate, score: float, **ranks: Any) -> SearchHit:
    return SearchHit(
        document_id=c.document_id,
        passage_index=c.passage_index,
        score=score,
        url=c.url,
        title=c.title,
        source_id=c.source_id,
        language=c.language,
        published=c.published,
        snippet=c.snippet,
        **ranks,
    )


def parse_search_response(
    resp: Mapping[str, Any],
    *,
    mode: Literal["keyword", "semantic"],
    group_by_document: bool,
    k: int,
    candidates: Sequence[Candidate] | None = None,
) -> list[SearchHit]:
    """Hits of a single-ranking (keyword or semantic) response, best first, at most ``k``.

    ``candidates`` (e.g. from :func:`exact_candidates`) replace the ones parsed from inner hits.
    """
    out: list[SearchHit] = []
    if candidates is None:
        candidates = candidates_from_response(resp, group_by_document=group_by_document)
    for rank, c in enumerate(candidates[:k], start=1):
        if mode == "keyword":
            out.append(_hit(c, c.score, keyword_rank=rank))
        else:
            cos = cosine_from_knn_score(c.score)
            out.append(_hit(c, cos, semantic_rank=rank, semantic_score=cos))
    return out


def _ranks(keys: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for key in keys:
        if key not in out:
            out[key] = len(out) + 1
    return out


def fuse_hits(
    keyword: Sequence[Candidate], semantic: Sequence[Candidate], *, group_by_document: bool, k: int
) -> list[SearchHit]:
    """Hybrid hits: reciprocal rank fusion (``index.base.rrf_fuse``, k=60) of passage rankings.

    Same semantics as the embedded backend: passages (ungrouped candidates, best first) are fused,
    then, when grouping, each document keeps its best fused passage. ``keyword_rank`` and
    ``semantic_rank`` are the unit's rank in each list (documents or passages). When one list is
    empty the other's own scores are kept (as a single-mode search would report them).
    """
    by_key: dict[str, Candidate] = {}
    for c in [*keyword, *semantic]:
        by_key.setdefault(c.key(False), c)
    cos = {c.key(False): cosine_from_knn_score(c.score) for c in semantic}
    if keyword and semantic:
        fused = rrf_fuse([[c.key(False) for c in keyword], [c.key(False) for c in semantic]])
    elif keyword:
        fused = [(c.key(False), c.score) for c in keyword]
    else:
        fused = [(c.key(False), cosine_from_knn_score(c.score)) for c in semantic]
    kw_rank = _ranks([c.key(group_by_document) for c in keyword])
    sem_rank = _ranks([c.key(group_by_document) for c in semantic])
    out: list[SearchHit] = []
    seen: set[str] = set()
    for pkey, score in fused:
        c = by_key[pkey]
        unit = c.key(group_by_document)
        if unit in seen:
            continue
        seen.add(unit)
        out.append(
            _hit(
                c, score, keyword_rank=kw_rank.get(unit), semantic_rank=sem_rank.get(unit), semantic_score=cos.get(pkey)
            )
        )
        if len(out) >= k:
            break
    return out


def build_count_body(by: CountBy, filters: SearchFilters | None) -> dict[str, Any]:
    """``size: 0`` search with a terms (source/language/kind) or daily date_histogram aggregation."""
    if by == "day":
        agg: dict[str, Any] = {
            "date_histogram": {
                "field": "published",
                "calendar_interval": "day",
                "format": "yyyy-MM-dd",
                "time_zone": "UTC",
                "min_doc_count": 1,
            }
        }
    elif by in COUNT_FIELDS:
        agg = {"terms": {"field": COUNT_FIELDS[by], "size": TERMS_SIZE}}
    else:
        raise ValueError(f"count by must be one of source, language, kind, day; got {by!r}")
    return {"size": 0, "track_total_hits": False, "query": _bool_filter(filters), "aggs": {"by": agg}}


def parse_count_response(resp: Mapping[str, Any]) -> dict[str, int]:
    """``{bucket key: doc_count}`` from the ``by`` aggregation (dates via ``key_as_string``)."""
    buckets = resp.get("aggregations", {}).get("by", {}).get("buckets", [])
    out: dict[str, int] = {}
    for b in buckets:
        key = b.get("key_as_string", b.get("key"))
        if b.get("doc_count", 0) > 0:
            out[str(key)] = int(b["doc_count"])
    return out


def build_scan_body(
    filters: SearchFilters | None,
    *,
    size: int,
    includes: Sequence[str] | None = None,
    excludes: Sequence[str] = (),
    search_after: Sequence[Any] | None = None,
    exclude_vectors: bool | None = None,
    pit_id: str | None = None,
    keep_alive: str = "5m",
) -> dict[str, Any]:
    """One page of a full scan, oldest published first (``sort`` + ``search_after``).

    With ``pit_id`` the page reads a point in time (the request then names no index) and the
    sort ends with the ``_shard_doc`` tiebreaker, so pages neither skip nor repeat documents
    when writes and refreshes happen between them. ``exclude_vectors=False`` asks
    Elasticsearch >= 9.2 to return vectors it keeps out of ``_source`` by default; leave it
    ``None`` for older servers, which reject the key.
    """
    source: dict[str, Any] = {}
    if includes is not None:
        source["includes"] = list(includes)
    if excludes:
        source["excludes"] = list(excludes)
    if exclude_vectors is not None:
        source["exclude_vectors"] = exclude_vectors
    body: dict[str, Any] = {
        "size": size,
        "track_total_hits": False,
        "query": _bool_filter(filters),
        "sort": [{"published": "asc"}, {"id": "asc"}],
        "_source": source or True,
    }
    if pit_id is not None:
        body["pit"] = {"id": pit_id, "keep_alive": keep_alive}
        body["sort"].append({"_shard_doc": "asc"})
    if search_after is not None:
        body["search_after"] = list(search_after)
    return body
