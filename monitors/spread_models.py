"""The records of a spread trace: query, items, groups, edges, timeline and the result.

Frozen dataclasses, each with ``as_dict()`` (JSON-ready). Built by :func:`monitors.spread.trace`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import networkx as nx

from core.documents import SearchFilters
from core.sightings import Sighting
from core.timefmt import iso

__all__ = [
    "CopyGroup",
    "FirstAppearances",
    "Timeline",
    "TraceEdge",
    "TraceItem",
    "TraceQuery",
    "TraceResult",
    "TranslationGroup",
    "platform_of",
]


def platform_of(kind: str) -> str:
    """``telegram`` for Telegram posts, ``site`` for web pages and feed items, else the kind."""
    if kind == "telegram":
        return "telegram"
    if kind in ("site", "feed", "page", ""):
        return "site"
    return kind


@dataclass(frozen=True)
class TraceQuery:
    """What to trace (exactly one of claim, url, document_id, narrative_id) and how.

    ``threshold``/``translation_threshold`` None: the embedding space's defaults
    (:func:`default_thresholds`). ``since``/``until`` are half-open, like :class:`SearchFilters`.
    """

    claim: str = ""
    url: str = ""
    document_id: str = ""
    narrative_id: str = ""
    since: datetime | None = None
    until: datetime | None = None
    languages: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    threshold: float | None = None
    """Cosine a document's best passage must reach to be an item (default: the space's ``claim``
    threshold for claims and narrative exemplars, its ``document`` threshold for documents)."""
    edge_threshold: float | None = None
    """Item-to-item cosine of an inferred edge (default: the space's ``document`` threshold)."""
    max_items: int = 500
    edge_window: timedelta = timedelta(hours=72)
    """Inferred edges only link items published at most this long apart."""
    copy_threshold: float = 0.8
    """Estimated MinHash Jaccard (fraction of equal fingerprint positions) of a copy."""
    translation_threshold: float | None = None
    """Passage cosine at which an item in another language is a translation."""

    def __post_init__(self) -> None:
        given = [n for n in ("claim", "url", "document_id", "narrative_id") if str(getattr(self, n)).strip()]
        if len(given) != 1:
            raise ValueError(f"TraceQuery needs exactly one of claim, url, document_id, narrative_id (got {given})")
        if self.max_items <= 0:
            raise ValueError("max_items must be positive")
        for name in ("languages", "sources", "kinds"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    @property
    def filters(self) -> SearchFilters:
        """The search filters this query implies."""
        return SearchFilters(
            sources=self.sources, languages=self.languages, kinds=self.kinds, since=self.since, until=self.until
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "claim": self.claim,
            "url": self.url,
            "document_id": self.document_id,
            "narrative_id": self.narrative_id,
            "since": iso(self.since),
            "until": iso(self.until),
            "languages": list(self.languages),
            "sources": list(self.sources),
            "kinds": list(self.kinds),
            "threshold": self.threshold,
            "edge_threshold": self.edge_threshold,
            "max_items": self.max_items,
            "edge_window_hours": self.edge_window.total_seconds() / 3600,
            "copy_threshold": self.copy_threshold,
            "translation_threshold": self.translation_threshold,
        }


@dataclass(frozen=True)
class TraceItem:
    """One document the traced content appeared in, with its best matching passage."""

    document_id: str
    url: str
    title: str
    source_id: str
    outlet: str
    platform: str
    kind: str
    language: str
    published: datetime
    similarity: float
    passage_index: int
    passage_text: str
    links: tuple[str, ...] = ()
    forwarded_from: str = ""
    forwarded_from_url: str = ""
    fingerprint: tuple[int, ...] = field(default=(), repr=False)
    carriers: tuple[Sighting, ...] = ()
    """Other sources that carried this document's URL (sightings; they never rewrote the record)."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (without the fingerprint)."""
        return {
            "document_id": self.document_id,
            "url": self.url,
            "title": self.title,
            "source": self.source_id,
            "outlet": self.outlet,
            "platform": self.platform,
            "kind": self.kind,
            "language": self.language,
            "published": self.published.isoformat(),
            "similarity": round(self.similarity, 4),
            "passage_index": self.passage_index,
            "passage_text": self.passage_text,
            "links": list(self.links),
            "forwarded_from": self.forwarded_from,
            "carriers": [c.as_dict() for c in self.carriers],
        }


@dataclass(frozen=True)
class CopyGroup:
    """Items that are one text (near-duplicate fingerprints or forwards): the earliest first."""

    original: str
    copies: tuple[str, ...]

    @property
    def members(self) -> tuple[str, ...]:
        """Document ids, original first."""
        return (self.original, *self.copies)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"original": self.original, "copies": list(self.copies)}


@dataclass(frozen=True)
class TranslationGroup:
    """An item and the later items in other languages close enough to be its translations."""

    original: str
    language: str
    translations: tuple[tuple[str, str, float], ...]
    """``(document id, language, cosine)`` per translation, in time order."""

    @property
    def members(self) -> tuple[str, ...]:
        """Document ids, original first."""
        return (self.original, *(t[0] for t in self.translations))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "original": self.original,
            "language": self.language,
            "translations": [
                {"document_id": d, "language": lang, "similarity": round(s, 4)} for d, lang, s in self.translations
            ],
        }


@dataclass(frozen=True)
class FirstAppearances:
    """Document ids of the earliest items overall and per outlet, language and platform."""

    overall: str | None
    by_outlet: dict[str, str]
    by_language: dict[str, str]
    by_platform: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "overall": self.overall,
            "by_outlet": dict(self.by_outlet),
            "by_language": dict(self.by_language),
            "by_platform": dict(self.by_platform),
        }


@dataclass(frozen=True)
class TraceEdge:
    """``source`` -> ``target``: the target repeated the source's content.

    ``kind`` is ``link`` (target links to the source's URL), ``forward`` (Telegram forward) or
    ``inferred`` (earliest earlier close item in another outlet within the window).
    """

    source: str
    target: str
    kind: str
    inferred: bool
    similarity: float
    lag_seconds: float
    evidence: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "source": self.source,
            "target": self.target,
            "kind": self.kind,
            "inferred": self.inferred,
            "similarity": round(self.similarity, 4),
            "lag_hours": round(self.lag_seconds / 3600, 3),
            "evidence": self.evidence,
        }


@dataclass(frozen=True)
class Timeline:
    """Item counts per time bucket (``day`` or ``hour`` when the span is under 3 days)."""

    bucket: str
    labels: tuple[str, ...]
    total: tuple[int, ...]
    by_outlet: dict[str, tuple[int, ...]]
    by_language: dict[str, tuple[int, ...]]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "bucket": self.bucket,
            "labels": list(self.labels),
            "total": list(self.total),
            "by_outlet": {k: list(v) for k, v in self.by_outlet.items()},
            "by_language": {k: list(v) for k, v in self.by_language.items()},
        }


@dataclass(frozen=True)
class TraceResult:
    """Everything :func:`trace` found; ``graph`` is a networkx DiGraph over item document ids."""

    query: TraceQuery
    model: str
    threshold: float
    edge_threshold: float
    translation_threshold: float
    items: tuple[TraceItem, ...]
    copy_groups: tuple[CopyGroup, ...]
    translation_groups: tuple[TranslationGroup, ...]
    first: FirstAppearances
    edges: tuple[TraceEdge, ...]
    timeline: Timeline
    graph: nx.DiGraph = field(compare=False, repr=False)
    seed_document_id: str | None = None
    truncated: bool = False
    """True when more than ``max_items`` documents passed the threshold (the closest were kept)."""

    def item(self, document_id: str) -> TraceItem:
        """The item of a document id (KeyError when absent)."""
        for it in self.items:
            if it.document_id == document_id:
                return it
        raise KeyError(document_id)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the whole result."""
        return {
            "query": self.query.as_dict(),
            "model": self.model,
            "threshold": self.threshold,
            "edge_threshold": self.edge_threshold,
            "translation_threshold": self.translation_threshold,
            "seed_document_id": self.seed_document_id,
            "truncated": self.truncated,
            "items": [i.as_dict() for i in self.items],
            "copy_groups": [g.as_dict() for g in self.copy_groups],
            "translation_groups": [g.as_dict() for g in self.translation_groups],
            "first_appearances": self.first.as_dict(),
            "edges": [e.as_dict() for e in self.edges],
            "timeline": self.timeline.as_dict(),
        }
