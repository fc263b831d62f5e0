"""The ``query`` detector: a saved search that alerts on new matching items.

A rule with ``detector: query`` holds a query in the search syntax (passed as it is to the
index's :meth:`~index.base.DocumentIndex.search`, so every backend answers it the way search
does), filters (languages, kinds; sources, actor types and countries come from the rule's
scope) and a minimum score. Each pass it asks the view the composition root hands it
(:class:`QueryView`, one per rule) for the documents indexed since the rule's last pass and
searches only those, so a new rule never alerts on the back catalogue.

Events. ``group: item`` (default): one event per matching document, keyed by the document, so
re-alert and "same evidence never twice" work per item and ``digest:`` bundles them.
``group: pass``: one event per pass with every new hit as evidence (a Kibana-style query rule),
keyed by the rule's query, so ``realert`` suppresses repeats of the whole search. The evidence
explains itself: the query (``Match.exemplar``), the matched passage, the score, the words
of the query found in the passage (``Match.keywords``).

Score. ``min_score`` compares the hit's semantic similarity (cosine of the query and its best
passage, per embedding space) in ``semantic`` and ``hybrid`` modes, and the backend's keyword
score in ``keyword`` mode (BM25: its scale differs between backends; 0 keeps every hit).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, Protocol

from pydantic import Field, field_validator

from core.documents import MAX_SEARCH_K, SearchFilters, SearchHit, SearchQuery, Vector
from core.events import DetectorEvent, SourceHealth
from core.matches import Match
from core.settings import StrictModel
from monitors.detectors import DetectorBase

__all__ = ["QUERY_NARRATIVE", "QueryDetector", "QueryOptions", "QueryView", "query_words"]

QUERY_NARRATIVE = "query"
"""``Match.narrative_id`` of a query rule's evidence (it matched a search, not a narrative)."""

_BATCH = 1000
_WORD = re.compile(r"\w{2,}", re.UNICODE)
_OPERATORS = {"and", "or", "not"}


class QueryOptions(StrictModel):
    """Options of a ``query`` rule."""

    query: Annotated[str, Field(min_length=1, max_length=500)]
    """The search, in the search syntax (phrases, AND/OR/NOT, -word, field filters)."""
    mode: Literal["keyword", "hybrid", "semantic"] = "keyword"
    """How the index ranks: keyword (BM25) by default, as a saved search is read literally."""
    min_score: Annotated[float, Field(ge=0.0, le=1_000.0)] = 0.0
    languages: tuple[Annotated[str, Field(max_length=16)], ...] = ()
    kinds: tuple[Annotated[str, Field(max_length=32)], ...] = ()
    group: Literal["item", "pass"] = "item"
    max_evidence: Annotated[int, Field(ge=1, le=100)] = 10

    @field_validator("query")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("the query is empty")
        return v.strip()


class QueryView(Protocol):
    """What a query rule reads (the composition root builds one per rule and pass)."""

    def new_document_ids(self) -> Sequence[str] | None:
        """Ids of documents indexed since the rule's last pass; None: no restriction (a dry run
        over stored documents, bounded by :meth:`published_since`)."""
        ...

    def published_since(self, now: datetime) -> datetime | None:
        """Lower bound on publication time (dry runs), else None."""
        ...

    def scope_sources(self) -> frozenset[str] | None:
        """The rule's source scope (ids; None: every source)."""
        ...

    def search(self, query: SearchQuery) -> list[SearchHit]:
        """The index's search."""
        ...

    def embed_query(self, text: str) -> Vector:
        """The query embedded in the index's space (semantic and hybrid modes)."""
        ...

    def outlet(self, source_id: str) -> str:
        """The outlet label shown for a source."""
        ...


def query_words(query: str) -> list[str]:
    """The plain words of a query (operators, field prefixes and excluded words dropped)."""
    words: list[str] = []
    negate = False
    for token in re.findall(r'-?"[^"]*"|\S+', query):
        if token.upper() == "NOT":
            negate = True
            continue
        if negate or token.startswith("-") or token.lower() in _OPERATORS:
            negate = False
            continue
        if ":" in token and not token.startswith('"'):
            continue  # a field filter (source:, lang: ...)
        words.extend(w.lower() for w in _WORD.findall(token))
    return list(dict.fromkeys(words))


def _found(text: str, words: Sequence[str], stem: int = 5) -> tuple[str, ...]:
    keys = {w[:stem] for w in words}
    hits = [w for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w[:stem] in keys]
    return tuple(dict.fromkeys(hits))


class QueryDetector(DetectorBase):
    """A saved search: new items matching a query (in the search syntax), its filters and a minimum score."""

    name: ClassVar[str] = "query"
    Options: ClassVar[type[StrictModel]] = QueryOptions
    options: QueryOptions

    def hits(self, view: QueryView, now: datetime) -> list[SearchHit]:
        """The new documents' hits at or above ``min_score``, best first (one per document;
        verbatim copies in one outlet count once: the first published stands for them)."""
        o = self.options
        ids = view.new_document_ids()
        if ids is not None and not ids:
            return []
        scope = view.scope_sources()
        if scope is not None and not scope:
            return []
        vector = view.embed_query(o.query) if o.mode != "keyword" else None
        base = SearchFilters(
            sources=tuple(sorted(scope)) if scope is not None else (),
            languages=o.languages,
            kinds=o.kinds,
            since=view.published_since(now),
            until=now if ids is None else None,  # a dry run sees what was published by then
        )
        batches: list[tuple[str, ...]] = (
            [tuple(ids[i : i + _BATCH]) for i in range(0, len(ids), _BATCH)] if ids is not None else [()]
        )
        out: dict[str, SearchHit] = {}
        for batch in batches:
            filters = SearchFilters(**{**base.__dict__, "document_ids": batch})
            k = min(max(len(batch), 1), MAX_SEARCH_K) if batch else MAX_SEARCH_K
            query = SearchQuery(text=o.query, vector=vector, k=k, mode=o.mode, filters=filters)
            for hit in view.search(query):
                if self.score(hit) >= o.min_score and hit.document_id not in out:
                    out[hit.document_id] = hit
        first: dict[tuple[str, str], SearchHit] = {}
        for hit in sorted(out.values(), key=lambda h: (h.published, h.document_id)):
            first.setdefault((view.outlet(hit.source_id), " ".join(hit.snippet.split()).lower()), hit)
        return sorted(first.values(), key=lambda h: (-self.score(h), h.published, h.document_id))

    def score(self, hit: SearchHit) -> float:
        """The score ``min_score`` is compared with (see the module docstring)."""
        if self.options.mode == "keyword":
            return float(hit.score)
        return float(hit.semantic_score) if hit.semantic_score is not None else 0.0

    def evidence(self, hit: SearchHit, view: QueryView) -> Match:
        """A hit as evidence: the passage, the query it matched (``exemplar``), the score."""
        words = query_words(self.options.query)
        return Match(
            document_id=hit.document_id,
            narrative_id=QUERY_NARRATIVE,
            score=round(self.score(hit), 6),
            tier="alert",
            passage_index=hit.passage_index,
            passage_text=hit.snippet,
            exemplar=self.options.query,
            exemplar_language="query",  # render.py shows "closest exemplar (query): <the query>"
            model=f"search:{self.options.mode}",
            source_id=hit.source_id,
            outlet=view.outlet(hit.source_id),
            language=hit.language,
            published=hit.published,
            url=hit.url,
            title=hit.title,
            similarity=float(hit.semantic_score or 0.0),
            keywords=_found(f"{hit.title} {hit.snippet}", words),
        )

    def detect(  # reads a QueryView (the composition root binds one per rule), not a match store
        self, store: Any, health: Sequence[SourceHealth], now: datetime, narratives: Mapping[str, str]
    ) -> list[DetectorEvent]:
        """One event per new matching item (``group: item``) or one for the pass (``group: pass``)."""
        view: QueryView = store
        hits = self.hits(view, now)
        if not hits:
            return []
        o = self.options
        matches = [self.evidence(h, view) for h in hits]
        if o.group == "pass":
            ev = tuple(matches[: o.max_evidence])
            best = ev[0]
            return [
                DetectorEvent(
                    detector=self.name,
                    key=f"query|{o.query}",
                    narrative_id=None,
                    source_id=None,
                    title=f"Saved search {o.query!r}: {len(matches)} new item(s)",
                    summary=f"best ({best.score:.3f}) in {best.outlet}: {best.passage_text[:200]}",
                    window_start=min(m.published for m in matches),
                    window_end=max(m.published for m in matches),
                    counts={"items": len(matches), "outlets": len({m.outlet for m in matches})},
                    outlets=tuple(sorted({m.outlet for m in matches})),
                    languages=tuple(sorted({m.language for m in matches})),
                    evidence=ev,
                    score=best.score,
                    created=now,
                )
            ]
        return [
            DetectorEvent(
                detector=self.name,
                key=f"query|{m.document_id}",
                narrative_id=None,
                source_id=m.source_id,
                title=f"Saved search {o.query!r} matched in {m.outlet}",
                summary=f"score {m.score:.3f}: {m.passage_text[:300]}",
                window_start=m.published,
                window_end=m.published,
                counts={"items": 1},
                outlets=(m.outlet,),
                languages=(m.language,),
                evidence=(m,),
                score=m.score,
                created=now,
            )
            for m in matches
        ]
