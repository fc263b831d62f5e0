"""Search: the ONE place that decides how search ranks and what a hit looks like, for the CLI,
the API and the web pages alike.

Ranking is the index's hybrid/keyword/semantic search (:meth:`index.base.DocumentIndex.search`,
one hit per document with its best passage); this module builds the query from
:class:`~narrawatch.read.params.SearchParams`, adds highlight offsets and turns hits into
:class:`SearchResult` records whose :meth:`SearchResult.as_dict` is the one JSON shape.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from core.documents import SearchFilters, SearchHit, SearchQuery
from core.markup import strip_markup_row
from core.safe_text import csv_cell, escape_bidi
from core.timefmt import iso_utc
from narrawatch.app import App
from narrawatch.read.history import NO_HISTORY, History, histories
from narrawatch.read.params import EXPORT_MAX, SearchParams

__all__ = [
    "EXPORT_FIELDS",
    "SearchPage",
    "SearchResult",
    "export_rows",
    "highlight_spans",
    "ranked",
    "rows_to_csv",
    "rows_to_jsonl",
    "search",
]

_WORD = re.compile(r"\w{2,}", re.UNICODE)

EXPORT_FIELDS = (
    "rank",
    "document_id",
    "published",
    "source_id",
    "language",
    "title",
    "url",
    "score",
    "passage_index",
    "passage",
)
"""Columns of a search export (CSV header, JSONL keys)."""


def highlight_spans(text: str, query: str, *, stem: int = 5) -> list[list[int]]:
    """``[start, end]`` offsets in ``text`` of words sharing a prefix with a query word.

    Words are compared lower-cased on their first ``stem`` letters, which catches most Russian
    and Ukrainian inflections (``выборы`` / ``выборов``) without a stemmer.
    """
    keys = {w.lower()[:stem] for w in _WORD.findall(query)}
    if not keys:
        return []
    spans: list[list[int]] = []
    for m in _WORD.finditer(text):
        w = m.group(0).lower()
        if w[:stem] in keys and (len(w) >= stem or w in keys):
            spans.append([m.start(), m.end()])
    return spans


@dataclass(frozen=True)
class SearchResult:
    """One ranked document: its best passage, scores and where the query words are in it."""

    rank: int
    hit: SearchHit
    highlights: tuple[tuple[int, int], ...]
    history: History = NO_HISTORY
    """Versions kept and deletion found by re-checks (:mod:`narrawatch.read.history`)."""

    def as_dict(self) -> dict[str, Any]:
        """The one JSON shape of a search hit (API, web, ``narrawatch search --json``)."""
        h = self.hit
        return {
            "rank": self.rank,
            "document_id": h.document_id,
            "title": h.title,
            "url": h.url,
            "source_id": h.source_id,
            "language": h.language,
            "published": iso_utc(h.published),
            "score": round(float(h.score), 6),
            "keyword_rank": h.keyword_rank,
            "semantic_rank": h.semantic_rank,
            "semantic_score": None if h.semantic_score is None else round(float(h.semantic_score), 4),
            "passage": {"index": h.passage_index, "text": h.snippet, "highlights": [list(s) for s in self.highlights]},
            **self.history.as_dict(),
        }

    def export_row(self) -> dict[str, Any]:
        """The hit as one flat export row (:data:`EXPORT_FIELDS`)."""
        h = self.hit
        return {
            "rank": self.rank,
            "document_id": h.document_id,
            "published": iso_utc(h.published),
            "source_id": h.source_id,
            "language": h.language,
            "title": h.title,
            "url": h.url,
            "score": round(float(h.score), 6),
            "passage_index": h.passage_index,
            "passage": h.snippet,
        }


@dataclass(frozen=True)
class SearchPage:
    """One page of ranked results."""

    query: str
    mode: str
    page: int
    page_size: int
    has_more: bool
    results: tuple[SearchResult, ...]

    def as_dict(self) -> dict[str, Any]:
        """``{query, mode, page, page_size, has_more, results: [...]}``."""
        return {
            "query": self.query,
            "mode": self.mode,
            "page": self.page,
            "page_size": self.page_size,
            "has_more": self.has_more,
            "results": [r.as_dict() for r in self.results],
        }


def _hits(app: App, p: SearchParams, k: int) -> list[SearchHit]:
    vector = app.embedder.embed_query(p.q) if p.mode != "keyword" else None
    filters = SearchFilters(
        sources=tuple(p.sources), languages=tuple(p.languages), kinds=tuple(p.kinds), since=p.since, until=p.until
    )
    return app.index.search(SearchQuery(text=p.q, vector=vector, k=k, mode=p.mode, filters=filters))


def _result(hit: SearchHit, rank: int, query: str) -> SearchResult:
    spans = tuple((s, e) for s, e in highlight_spans(hit.snippet, query))
    return SearchResult(rank=rank, hit=hit, highlights=spans)


def ranked(app: App, p: SearchParams, k: int) -> list[SearchResult]:
    """The top ``k`` (at most :data:`EXPORT_MAX`) results, ignoring ``p.page``/``p.page_size``
    (``narrawatch search -k``, exports)."""
    return _with_history(app, [_result(h, i, p.q) for i, h in enumerate(_hits(app, p, min(k, EXPORT_MAX)), start=1)])


def _with_history(app: App, results: list[SearchResult]) -> list[SearchResult]:
    found = histories(app, [r.hit.document_id for r in results])
    return [replace(r, history=found[r.hit.document_id]) for r in results]


def search(app: App, p: SearchParams) -> SearchPage:
    """Page ``p.page`` of ranked results (one per document, its best passage) with highlight offsets."""
    start = (p.page - 1) * p.page_size
    hits = _hits(app, p, start + p.page_size + 1)
    page = hits[start : start + p.page_size]
    return SearchPage(
        query=p.q,
        mode=p.mode,
        page=p.page,
        page_size=p.page_size,
        has_more=len(hits) > start + p.page_size,
        results=tuple(_with_history(app, [_result(h, start + i + 1, p.q) for i, h in enumerate(page)])),
    )


def export_rows(app: App, p: SearchParams, limit: int = EXPORT_MAX) -> list[dict[str, Any]]:
    """Up to ``limit`` ranked hits as flat rows for CSV/JSONL export."""
    return [r.export_row() for r in ranked(app, p, limit)]


def rows_to_csv(rows: Iterable[dict[str, Any]], fields: Sequence[str]) -> str:
    """CSV text with a header; cells go through :func:`core.safe_text.csv_cell` (formulas quoted, bidi dropped)
    and text columns lose Telegram markup (:func:`core.markup.strip_markup_row`; JSONL keeps it)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: csv_cell(v) for k, v in strip_markup_row(row).items()})
    return buf.getvalue()


def rows_to_jsonl(rows: Iterable[dict[str, Any]]) -> str:
    """One JSON object a line (UTF-8, not ASCII-escaped except bidi controls: ``\\u202e``)."""
    return "".join(escape_bidi(json.dumps(r, ensure_ascii=False)) + "\n" for r in rows)
