"""The DocumentIndex seam: one protocol, an embedded backend and an Elasticsearch backend.

Every implementation passes the same contract suite (``tests/contract/test_document_index.py``).

Rules every backend keeps:

* ``upsert`` is idempotent by document id: the same document twice is ``unchanged``; a document
  whose ``content_hash`` changed is ``updated`` (its passages and vectors replaced).
* Once ``upsert`` returns, the write is durable (survives ``kill -9``) and visible to searches.
* A document the backend refuses permanently (a value its storage cannot hold) is listed in
  ``UpsertResult.rejected``, recorded durably by the backend with the reason, and not stored;
  callers must not resend it unchanged. A document missing from every list failed transiently:
  send it again later.
* An index is bound to one :class:`~core.documents.EmbeddingSpace`; vectors or query vectors from
  another space raise :class:`~core.errors.EmbeddingSpaceMismatch`.
* ``search`` applies filters before ranking; hybrid ranking is reciprocal rank fusion (k=60)
  of BM25 over passages and cosine kNN over passage vectors.
* ``SearchQuery.expr`` (a :mod:`core.query` AST) is matched per passage (title included): a
  Term or Phrase in any body analyser (stemmed where the passage's language has a stemmer),
  And/Or/Not as boolean clauses; ``SearchQuery.min_similarity`` drops semantic candidates below
  it before fusion (:func:`above_floor`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from core.documents import (
    Document,
    EmbeddingSpace,
    IndexedDocument,
    IndexStats,
    SearchFilters,
    SearchHit,
    SearchQuery,
    UpsertResult,
    Vectors,
)
from core.registry import Registry

if TYPE_CHECKING:
    from core.settings import Config
    from index.embed import Embedder

__all__ = [
    "INDEX_BACKENDS",
    "RRF_K",
    "CountBy",
    "DocumentIndex",
    "IndexBackend",
    "IndexLifecycle",
    "PassageVectors",
    "ReachUpdate",
    "above_floor",
    "fuse_passages",
    "in_filters",
    "reach_props",
    "rrf_fuse",
]

RRF_K = 60
"""The reciprocal-rank-fusion constant (Cormack et al. 2009; also Elasticsearch's default)."""

CountBy = Literal["source", "language", "day", "kind"]


@dataclass(frozen=True)
class PassageVectors:
    """Passages with their vectors, as returned by :meth:`DocumentIndex.passage_vectors`.

    Row ``i`` of ``vectors`` embeds passage ``passage_indexes[i]`` of ``document_ids[i]``.
    """

    document_ids: tuple[str, ...]
    passage_indexes: tuple[int, ...]
    vectors: Vectors

    def __len__(self) -> int:
        return len(self.document_ids)


@dataclass(frozen=True)
class ReachUpdate:
    """Fresh reach counters of a stored document (:meth:`DocumentIndex.update_reach`).

    Only a document stored under ``source_id`` is touched. ``views`` None keeps the stored
    views; ``counters`` are keys set in :attr:`Document.extra` (``reactions``: emoji -> count,
    ``forwards``, ``reach_at``: when they were read), other extra keys are kept.
    """

    document_id: str
    source_id: str
    views: int | None = None
    counters: Mapping[str, Any] = field(default_factory=dict)


def reach_props(props: Mapping[str, Any], update: ReachUpdate) -> dict[str, Any]:
    """Stored optional fields (:func:`core.serialize.optional_fields_of` form) with ``update`` applied."""
    out = dict(props)
    if update.views is not None:
        out["views"] = int(update.views)
    out["extra"] = {**dict(out.get("extra") or {}), **dict(update.counters)}
    return out


@runtime_checkable
class DocumentIndex(Protocol):
    """Storage and retrieval of documents, passages and passage vectors."""

    @property
    def embedding_space(self) -> EmbeddingSpace:
        """The space this index's vectors live in."""
        ...

    def upsert(self, docs: Sequence[IndexedDocument]) -> UpsertResult:
        """Insert or replace documents (idempotent by id); durable once it returns."""
        ...

    def get(self, doc_id: str) -> Document | None:
        """One document by id, or None."""
        ...

    def content_hashes(self, doc_ids: Sequence[str]) -> dict[str, str]:
        """``{id: content_hash}`` for the ids that exist (lets callers skip unchanged work)."""
        ...

    def search(self, query: SearchQuery) -> list[SearchHit]:
        """Keyword, semantic or hybrid search with filters; best first."""
        ...

    def iter_documents(self, filters: SearchFilters | None = None, *, batch: int = 500) -> Iterator[Document]:
        """Every document matching ``filters``, oldest published first."""
        ...

    def passage_vectors(self, filters: SearchFilters | None = None) -> PassageVectors:
        """Passage vectors of the documents matching ``filters`` (for matching, themes, trace)."""
        ...

    def count(self, by: CountBy, filters: SearchFilters | None = None) -> dict[str, int]:
        """Document counts grouped by source, language, kind or UTC day (``YYYY-MM-DD``)."""
        ...

    def stats(self) -> IndexStats:
        """Totals, counts and size on disk."""
        ...

    def delete(self, doc_ids: Sequence[str]) -> int:
        """Delete documents; returns how many existed."""
        ...

    def update_reach(self, updates: Sequence[ReachUpdate]) -> list[str]:
        """Set views and reach counters of stored documents, durably; text, passages, vectors and
        ``content_hash`` stay as they are (nothing is re-embedded or re-matched). Returns the ids
        updated; an id absent or stored under another source is skipped."""
        ...

    def close(self) -> None:
        """Release files, connections and locks."""
        ...


class IndexLifecycle(Protocol):
    """Create, inspect and re-embed the configured index (``narrawatch index create|status|reindex``).

    Each backend implements it; the CLI calls it without knowing which backend it talks to.
    """

    def create(self, space: EmbeddingSpace) -> str:
        """Create the index for ``space`` unless it exists; returns where it is (path or index name)."""
        ...

    def status(self) -> dict[str, Any]:
        """A JSON-ready description: backend, location, embedding space, counts; creates nothing."""
        ...

    def reindex(self, embedder: Embedder) -> dict[str, Any]:
        """Re-embed every document with ``embedder`` into a new index, switch to it, keep the old
        one; returns a JSON-ready summary. Stop ingest first: concurrent writes are not copied."""
        ...


class IndexBackend(Protocol):
    """What a registered backend class offers besides :class:`DocumentIndex` itself."""

    @classmethod
    def open(cls, config: Config, space: EmbeddingSpace, *, read_only: bool = False) -> DocumentIndex:
        """The configured index bound to ``space`` (``read_only``: for readers beside a writer)."""
        ...

    @classmethod
    def lifecycle(cls, config: Config) -> IndexLifecycle:
        """Lifecycle operations on the configured index."""
        ...


INDEX_BACKENDS: Registry[type[IndexBackend]] = Registry("index backend")
"""Backend classes by config name (``embedded``, ``elasticsearch``), registered by
:func:`index.backends.register_builtins` (Elasticsearch lazily: its client is imported only when
that backend is looked up)."""


def rrf_fuse(
    rankings: Sequence[Sequence[str]], k: int = RRF_K, weights: Sequence[float] | None = None
) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: ``score(d) = sum_i w_i / (k + rank_i(d))`` with 1-based ranks."""
    scores: dict[str, float] = {}
    for i, ranking in enumerate(rankings):
        w = 1.0 if weights is None else weights[i]
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + w / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def fuse_passages(
    mode: str, keyword: list[tuple[int, float]], semantic: list[tuple[int, float]]
) -> list[tuple[int, float]]:
    """The ranked passage ids a search returns: one list alone (its mode asked for it, or the
    other list is empty), else their :func:`rrf_fuse` (ids are integers, as both SQL stores keep them)."""
    if mode == "keyword" or not semantic:
        return keyword
    if mode == "semantic" or not keyword:
        return semantic
    return [(int(p), s) for p, s in rrf_fuse([[str(p) for p, _ in keyword], [str(p) for p, _ in semantic]])]


def above_floor(semantic: list[tuple[int, float]], floor: float) -> list[tuple[int, float]]:
    """The ``(id, cosine)`` pairs at or above the semantic floor (``SearchQuery.min_similarity``),
    order kept; every backend applies it before fusion, so a floored passage is no semantic hit."""
    return [(p, s) for p, s in semantic if s >= floor]


def in_filters(doc: Document, filters: SearchFilters | None, *, published: datetime | None = None) -> bool:
    """True when ``doc`` passes ``filters`` (reference semantics for every backend)."""
    if filters is None:
        return True
    when = published or doc.published
    return (
        (not filters.sources or doc.source_id in filters.sources)
        and (not filters.languages or doc.language in filters.languages)
        and (not filters.kinds or doc.kind in filters.kinds)
        and (filters.since is None or when >= filters.since)
        and (filters.until is None or when < filters.until)
        and (not filters.document_ids or doc.id in filters.document_ids)
    )
