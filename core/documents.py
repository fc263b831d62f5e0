"""Records that flow between stages, one frozen dataclass per stage.

crawlers -> :class:`Document` (normalised, with :class:`Passage` s)
index    -> :class:`IndexedDocument` (document + one vector per passage), :class:`SearchHit`
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from core.evidence import Capture
from core.query import Node

__all__ = [
    "EARLIEST_STORABLE",
    "FUTURE_TOLERANCE",
    "LATEST_STORABLE",
    "MAX_COUNTER",
    "MAX_SEARCH_K",
    "Document",
    "EmbeddingSpace",
    "IndexStats",
    "IndexedDocument",
    "Passage",
    "SearchFilters",
    "SearchHit",
    "SearchQuery",
    "UpsertResult",
    "Vector",
    "Vectors",
    "clamp_storable",
    "document_id_for_telegram",
    "document_id_for_url",
    "utcnow",
]

Vector = npt.NDArray[np.float32]
"""One L2-normalised embedding, shape (dim,)."""
Vectors = npt.NDArray[np.float32]
"""A matrix of L2-normalised embeddings, shape (n, dim)."""

SourceKind = str  # "feed" | "site" | "telegram" | "youtube" | "vk" | "rutube" | plugin kinds
ExtractionMethod = Literal["page", "feed_content", "feed_summary", "telegram", "transcript", "api"]
"""``transcript``: a YouTube caption track; ``api``: a platform API's own text (VK posts, RuTube descriptions)."""


def document_id_for_url(canonical_url: str) -> str:
    """Stable document id of a web page: ``u:`` + first 32 hex digits of sha256(canonical URL)."""
    return "u:" + hashlib.sha256(canonical_url.encode("utf-8")).hexdigest()[:32]


def document_id_for_telegram(channel: str, message_id: int) -> str:
    """Stable document id of a Telegram post: ``tg:<channel lower-case>/<message id>``."""
    return f"tg:{channel.lower()}/{message_id}"


@dataclass(frozen=True)
class Passage:
    """A paragraph-aware chunk of a document's text, the unit that is embedded and matched."""

    index: int
    text: str
    start: int = 0
    """Character offset of the passage in :attr:`Document.text`."""


@dataclass(frozen=True)
class Document:
    """A normalised article or post, ready to embed and index.

    ``published`` and ``fetched`` are timezone-aware UTC datetimes.
    """

    id: str
    source_id: str
    kind: SourceKind
    url: str
    title: str
    text: str
    language: str
    """ISO 639-1 code (``ru``, ``uk``, ``kk`` ...) or ``und`` when unknown."""
    published: datetime
    fetched: datetime
    passages: tuple[Passage, ...]
    content_hash: str
    """sha256 hex of the normalised title + text; a change means the document was updated."""
    fingerprint: tuple[int, ...] = ()
    """MinHash signature (datasketch, see crawlers.normalize) for near-duplicate grouping."""
    author: str = ""
    extraction: ExtractionMethod = "page"
    outlet: str = ""
    """Who published it: the host name of a site or ``t.me/<channel>``."""
    links: tuple[str, ...] = ()
    """Outgoing links found in the text (spread edges)."""
    forwarded_from: str = ""
    """Telegram: the channel or name a post was forwarded from (a spread edge)."""
    views: int | None = None
    media: tuple[str, ...] = ()
    """Media markers: ``photo``, ``video``, ``audio``, ``document``, ``poll`` ..."""
    capture: Capture | None = None
    """The response the document arrived in: SHA-256 of the raw body, WARC file/offset (core.evidence)."""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        for name in ("published", "fetched"):
            value: datetime = getattr(self, name)
            if value.tzinfo is None:
                raise ValueError(f"Document.{name} must be timezone-aware (UTC), got {value!r}")
            if value.utcoffset() != UTC.utcoffset(value):
                object.__setattr__(self, name, value.astimezone(UTC))


EARLIEST_STORABLE = datetime(1970, 1, 1, tzinfo=UTC)
"""Earliest date a backend stores (Elasticsearch ``date_nanos`` rejects earlier ones)."""
LATEST_STORABLE = datetime(2262, 4, 11, tzinfo=UTC)
"""Latest date a backend stores (``date_nanos`` ends on 2262-04-11T23:47:16Z)."""
FUTURE_TOLERANCE = timedelta(minutes=5)
"""Clock skew allowed between a publisher and us before ``published`` counts as in the future."""
MAX_COUNTER = 2**63 - 1
"""Largest integer counter (``views``) a backend stores (a signed 64-bit ``long``)."""


def clamp_storable(doc: Document, now: datetime | None = None) -> Document:
    """``doc`` with values a backend would reject for good replaced (the same object if none are).

    * ``published`` before 1970-01-01 or after 2262-04-10 becomes ``fetched``;
    * with ``now`` (the caller's clock): ``published`` more than :data:`FUTURE_TOLERANCE` after
      ``now`` becomes ``fetched``, and a ``fetched`` outside the storable range or in the
      future becomes ``now``;
    * ``views`` below 0 or above :data:`MAX_COUNTER` becomes None.

    What was replaced is recorded in ``extra["clamped"]``: field -> ``{"reason", "claimed"}``
    (the claimed value as a string), so nothing the source said is lost.
    """
    clamped: dict[str, dict[str, str]] = {}
    fetched = doc.fetched
    latest = LATEST_STORABLE - timedelta(days=1)
    if now is not None and not EARLIEST_STORABLE <= fetched <= now + FUTURE_TOLERANCE:
        clamped["fetched"] = {"reason": "fetched_out_of_range", "claimed": fetched.isoformat()}
        fetched = now
    elif not EARLIEST_STORABLE <= fetched <= latest:
        clamped["fetched"] = {"reason": "fetched_out_of_range", "claimed": fetched.isoformat()}
        fetched = min(max(fetched, EARLIEST_STORABLE), latest)
    published = doc.published
    if published < EARLIEST_STORABLE:
        clamped["published"] = {"reason": "published_before_1970", "claimed": published.isoformat()}
        published = fetched
    elif published > latest or (now is not None and published > now + FUTURE_TOLERANCE):
        clamped["published"] = {"reason": "published_in_future", "claimed": published.isoformat()}
        published = fetched
    views = doc.views
    if views is not None and not 0 <= views <= MAX_COUNTER:
        clamped["views"] = {"reason": "views_out_of_range", "claimed": str(views)}
        views = None
    if not clamped:
        return doc
    extra = dict(doc.extra)
    extra["clamped"] = {**dict(extra.get("clamped") or {}), **clamped}
    return replace(doc, published=published, fetched=fetched, views=views, extra=extra)


@dataclass(frozen=True)
class EmbeddingSpace:
    """Everything that makes two vectors comparable.

    Two spaces with the same dimension but another model, revision, weights, precision,
    pooling or prefix are different spaces; the index refuses to mix them.
    """

    model: str
    dim: int
    backend: str = "sentence-transformers"
    revision: str = ""
    weights_hash: str = ""
    precision: str = "fp32"
    pooling: str = "mean"
    query_prefix: str = ""
    document_prefix: str = ""

    @property
    def key(self) -> str:
        """A stable, human-readable identity string for this space."""
        parts = [
            self.backend,
            self.model,
            self.revision or "-",
            self.weights_hash[:16] or "-",
            self.precision,
            self.pooling,
            f"q={self.query_prefix}",
            f"d={self.document_prefix}",
            str(self.dim),
        ]
        return "|".join(parts)

    @property
    def slug(self) -> str:
        """A short identifier usable as a field or index name: model name + hash of :attr:`key`."""
        name = "".join(c if c.isalnum() else "_" for c in self.model.rsplit("/", 1)[-1].lower())
        digest = hashlib.sha256(self.key.encode("utf-8")).hexdigest()[:8]
        return f"{name[:40]}_{self.dim}_{digest}"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for storage."""
        return {
            "model": self.model,
            "dim": self.dim,
            "backend": self.backend,
            "revision": self.revision,
            "weights_hash": self.weights_hash,
            "precision": self.precision,
            "pooling": self.pooling,
            "query_prefix": self.query_prefix,
            "document_prefix": self.document_prefix,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EmbeddingSpace:
        """Inverse of :meth:`to_dict`."""
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass(frozen=True)
class IndexedDocument:
    """A document with one embedding per passage (row i embeds ``document.passages[i]``)."""

    document: Document
    vectors: Vectors

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2 or self.vectors.shape[0] != len(self.document.passages):
            raise ValueError(
                f"{self.document.id}: {self.vectors.shape[0] if self.vectors.ndim == 2 else '?'} vectors"
                f" for {len(self.document.passages)} passages"
            )


@dataclass(frozen=True)
class UpsertResult:
    """What an upsert did, per document id."""

    new: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    rejected: tuple[str, ...] = ()
    """Refused permanently by the backend (e.g. a value its mapping cannot hold): not stored,
    recorded once by the backend with the reason, and not worth sending again unchanged."""
    carried: tuple[str, ...] = ()
    """Ids another source owns: recorded as sightings, the stored record left as it was."""


@dataclass(frozen=True)
class SearchFilters:
    """Filters every backend applies before ranking. Empty tuples mean "any"."""

    sources: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    """Half-open: ``since <= published < until``."""
    document_ids: tuple[str, ...] = ()


MAX_SEARCH_K = 10_000
"""The most hits one search may ask a backend for."""


@dataclass(frozen=True)
class SearchQuery:
    """A search request. ``mode`` picks keyword (BM25), semantic (kNN) or hybrid (RRF of both).

    Semantic and hybrid need ``vector`` (the query embedded with ``Embedder.embed_query``).
    """

    text: str = ""
    vector: Vector | None = None
    k: int = 10
    mode: Literal["keyword", "semantic", "hybrid"] = "hybrid"
    filters: SearchFilters = field(default_factory=SearchFilters)
    group_by_document: bool = True
    """True: one hit per document (its best passage). False: one hit per passage."""
    expr: Node | None = None
    """The parsed keyword expression (:mod:`core.query`: phrases, AND/OR/NOT). When set, the
    keyword side matches it (each backend translates it) instead of any word of ``text``;
    ``text`` then holds the positive words (highlights, backends that log it)."""
    min_similarity: float | None = None
    """Semantic floor: passages whose cosine to ``vector`` is below it are not semantic hits
    (the read model sets it per embedding space)."""

    def __post_init__(self) -> None:
        # Every backend is asked for k hits; tantivy aborts the process on a k of 3e9, so the
        # ceiling is checked here once for all of them (front-ends bound k lower still).
        if not 1 <= self.k <= MAX_SEARCH_K:
            raise ValueError(f"k must be 1..{MAX_SEARCH_K}, got {self.k}")


@dataclass(frozen=True)
class SearchHit:
    """One ranked result."""

    document_id: str
    passage_index: int
    score: float
    url: str
    title: str
    source_id: str
    language: str
    published: datetime
    snippet: str
    """The best passage's text (plain text; callers escape it before rendering)."""
    keyword_rank: int | None = None
    semantic_rank: int | None = None
    semantic_score: float | None = None


@dataclass(frozen=True)
class IndexStats:
    """Counts and sizes an index reports."""

    documents: int
    passages: int
    by_source: dict[str, int]
    by_language: dict[str, int]
    size_bytes: int
    embedding_space: EmbeddingSpace | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "documents": self.documents,
            "passages": self.passages,
            "by_source": dict(self.by_source),
            "by_language": dict(self.by_language),
            "index_size_bytes": self.size_bytes,
            "embedding_model": self.embedding_space.to_dict() if self.embedding_space else None,
        }


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)
