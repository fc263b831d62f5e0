"""Search: the ONE place that decides how search ranks and what a hit looks like, for the CLI,
the API and the web pages alike.

A search is answered in five steps, the same on every backend:

1. the query is parsed once (:func:`core.query.parse_query`: phrases, AND/OR/NOT, ``-word``,
   field filters) and its filters checked and resolved (:mod:`narrawatch.read.search_filters`);
2. the index ranks up to :data:`HIT_CAP` documents (:meth:`index.base.DocumentIndex.search`:
   the backend translates the expression; the semantic side embeds the query's positive words
   and keeps passages at or above the embedding space's floor, :data:`SEMANTIC_FLOORS`);
3. keyword matches in another script than the query (English words inside Russian posts) are
   down-weighted (:data:`LANGUAGE_MISMATCH_WEIGHT`), and semantic-only hits that contain an
   excluded word are dropped;
4. copies (near-duplicate fingerprints, :func:`monitors.copies.collapse_copies`) are grouped
   under their first appearance; facets count the hits by source, outlet, language and day;
5. the groups are sorted (relevance, newest, oldest, views) and cut into pages; ``total``
   is exact unless ``total_is_lower_bound`` (the index had more than :data:`HIT_CAP` hits).

Exports (:func:`export_rows`) run the same steps with :data:`EXPORT_CAP` hits, or, for a query of
field filters only, stream every matching document from ``iter_documents`` (no cap, flat memory).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from core.documents import MAX_SEARCH_K, Document, EmbeddingSpace, SearchFilters, SearchHit, SearchQuery
from core.markup import strip_markup_row
from core.matches import Match
from core.query import ParsedQuery, parse_query
from core.safe_text import csv_cell, escape_bidi
from core.timefmt import iso_utc
from index.base import RRF_K
from monitors.copies import collapse_copies, normalize_outlet
from narrawatch.app import App
from narrawatch.read.history import NO_HISTORY, History, histories
from narrawatch.read.params import SearchParams
from narrawatch.read.search_filters import ResolvedFilters, resolve_filters

__all__ = [
    "EXPORT_CAP",
    "EXPORT_FIELDS",
    "HIT_CAP",
    "LANGUAGE_MISMATCH_WEIGHT",
    "SEMANTIC_FALLBACK_DEPTH",
    "SEMANTIC_FLOORS",
    "SORTS",
    "CopyRef",
    "SearchPage",
    "SearchResult",
    "export_rows",
    "highlight_spans",
    "iter_csv",
    "iter_jsonl",
    "ranked",
    "rows_to_csv",
    "rows_to_jsonl",
    "search",
    "semantic_floor",
]

log = logging.getLogger(__name__)

_WORD = re.compile(r"\w{2,}", re.UNICODE)

HIT_CAP = 5000
"""Documents one search gathers from the index to count, group, facet and sort (pages and
``total`` come from them; beyond it ``total_is_lower_bound`` is set)."""
EXPORT_CAP = MAX_SEARCH_K
"""Ranked documents one text-query export gathers (a field-filter-only export has no cap)."""

SEMANTIC_FLOORS: dict[str, float] = {
    # Measured on the demo corpus (2,213 passages of 1,909 Russian Telegram posts): 22 English
    # topic queries, a passage labelled on-topic when it contains the topic's Russian stem;
    # fitted on 11 queries (lowest cosine with precision >= 0.5: 0.26), held out on the other
    # 11: precision 0.77, 13 passages a query (0.6% of the corpus; without a floor: all of it,
    # precision 0.02). Script: README "Search" / notes search_floor_measure.py.
    "google/universal-sentence-encoder-multilingual/3": 0.26,
    # The deterministic test embedder (hashed words and bigrams): one shared feature of a short
    # query scores ~0.17, and so does one hash collision (256 dimensions); 0.3 needs two.
    "hashing": 0.3,
}
"""Cosine below which a passage is no semantic hit, per embedding model (thresholds belong to one
embedding space: mE5 scores unrelated text ~0.78, USE-m3 ~0.04)."""
SEMANTIC_FALLBACK_DEPTH = 100
"""For a model without a measured floor: semantic-only hits beyond this semantic rank are dropped
(so semantic search never returns the whole corpus)."""
LANGUAGE_MISMATCH_WEIGHT = 0.25
"""Weight of a keyword match whose query words are in another script than the passage's language
(Latin query words inside a Russian post: "Make Russia Great Again" quoted in a Russian text)."""

_CYRILLIC_LANGS = frozenset({"ru", "uk", "be", "bg", "kk", "ky", "mk", "sr", "tg", "mn", "ba", "tt", "cv"})
_LATIN_LANGS = frozenset(
    {
        "en",
        "de",
        "fr",
        "es",
        "it",
        "pt",
        "pl",
        "cs",
        "sk",
        "ro",
        "nl",
        "lt",
        "lv",
        "et",
        "tr",
        "az",
        "uz",
        "fi",
        "sv",
        "da",
        "no",
        "hu",
        "hr",
        "sl",
        "sq",
        "ca",
        "id",
        "vi",
    }
)
SORTS = ("relevance", "newest", "oldest", "views")

EXPORT_FIELDS = (
    "rank",
    "document_id",
    "published",
    "source_id",
    "outlet",
    "language",
    "kind",
    "views",
    "title",
    "url",
    "score",
    "passage_index",
    "passage",
    "copy_of",
    "copies",
)
"""Columns of a search export (CSV header, JSONL keys). ``copy_of``: the first appearance's
document id for a copy (empty for an original); ``copies``: copies of an original."""


def semantic_floor(space: EmbeddingSpace) -> float | None:
    """The measured semantic floor of ``space``'s model, or None (see :data:`SEMANTIC_FLOORS`)."""
    return SEMANTIC_FLOORS.get(space.model)


def highlight_spans(text: str, query: str, *, stem: int = 5) -> list[list[int]]:
    """``[start, end]`` offsets in ``text`` of words sharing a prefix with a query word.

    Words are compared lower-cased on their first ``stem`` letters, which catches most Russian
    and Ukrainian inflections (``выборы`` / ``выборов``) without a stemmer.
    """
    keys = {w.lower().replace("ё", "е")[:stem] for w in _WORD.findall(query)}
    if not keys:
        return []
    spans: list[list[int]] = []
    for m in _WORD.finditer(text):
        w = m.group(0).lower().replace("ё", "е")
        if w[:stem] in keys and (len(w) >= stem or w in keys):
            spans.append([m.start(), m.end()])
    return spans


@dataclass(frozen=True)
class CopyRef:
    """A copy of a result's document (a repost, light edit or verbatim forward)."""

    document_id: str
    source_id: str
    outlet: str
    published: Any
    url: str

    def as_dict(self) -> dict[str, Any]:
        """JSON shape."""
        return {
            "document_id": self.document_id,
            "source_id": self.source_id,
            "outlet": self.outlet,
            "published": iso_utc(self.published),
            "url": self.url,
        }


@dataclass(frozen=True)
class SearchResult:
    """One ranked document (the first appearance of its text): its best passage, scores, where
    the query words are in it, and the copies grouped under it."""

    rank: int
    hit: SearchHit
    highlights: tuple[tuple[int, int], ...]
    history: History = NO_HISTORY
    """Versions kept and deletion found by re-checks (:mod:`narrawatch.read.history`)."""
    outlet: str = ""
    kind: str = ""
    views: int | None = None
    copies: tuple[CopyRef, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The one JSON shape of a search hit (API, web, ``narrawatch search --json``)."""
        h = self.hit
        return {
            "rank": self.rank,
            "document_id": h.document_id,
            "title": h.title,
            "url": h.url,
            "source_id": h.source_id,
            "outlet": self.outlet,
            "kind": self.kind,
            "language": h.language,
            "published": iso_utc(h.published),
            "views": self.views,
            "score": round(float(h.score), 6),
            "keyword_rank": h.keyword_rank,
            "semantic_rank": h.semantic_rank,
            "semantic_score": None if h.semantic_score is None else round(float(h.semantic_score), 4),
            "passage": {"index": h.passage_index, "text": h.snippet, "highlights": [list(s) for s in self.highlights]},
            "copies": {"count": len(self.copies), "items": [c.as_dict() for c in self.copies]},
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
            "outlet": self.outlet,
            "language": h.language,
            "kind": self.kind,
            "views": self.views,
            "title": h.title,
            "url": h.url,
            "score": round(float(h.score), 6),
            "passage_index": h.passage_index,
            "passage": h.snippet,
            "copy_of": "",
            "copies": len(self.copies),
        }


@dataclass(frozen=True)
class SearchPage:
    """One page of ranked results with the whole answer's total and facets."""

    query: str
    mode: str
    sort: str
    page: int
    page_size: int
    total: int
    """Results (copies grouped) the query has; a lower bound when ``total_is_lower_bound``."""
    total_documents: int
    """Documents among them, copies included (what the facets count)."""
    total_is_lower_bound: bool
    has_more: bool
    results: tuple[SearchResult, ...]
    facets: dict[str, tuple[tuple[str, int], ...]] = field(default_factory=dict)
    semantic_floor: float | None = None

    @property
    def pages(self) -> int:
        """The last page number that has results (0 when nothing was found)."""
        return -(-self.total // self.page_size)

    def as_dict(self) -> dict[str, Any]:
        """``{query, mode, sort, page, page_size, pages, total, total_documents, total_is_lower_bound,
        has_more, semantic_floor, facets: {source|outlet|language|day: [{value, count}]}, results}``."""
        return {
            "query": self.query,
            "mode": self.mode,
            "sort": self.sort,
            "page": self.page,
            "page_size": self.page_size,
            "pages": self.pages,
            "total": self.total,
            "total_documents": self.total_documents,
            "total_is_lower_bound": self.total_is_lower_bound,
            "has_more": self.has_more,
            "semantic_floor": self.semantic_floor,
            "facets": {k: [{"value": v, "count": n} for v, n in items] for k, items in self.facets.items()},
            "results": [r.as_dict() for r in self.results],
        }


# -- gathering -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Item:
    hit: SearchHit
    doc: Document | None


@dataclass(frozen=True)
class _Group:
    shown: _Item
    copies: tuple[_Item, ...]
    score: float


@dataclass(frozen=True)
class _Gathered:
    groups: list[_Group]
    documents: int
    lower_bound: bool
    highlight: str
    floor: float | None
    facets: dict[str, tuple[tuple[str, int], ...]]


def _script(words: Sequence[str]) -> str:
    """``latin``, ``cyrillic`` or "" (mixed, digits only, other scripts)."""
    letters = "".join(c for w in words for c in w if c.isalpha())
    if not letters:
        return ""
    if all("a" <= c <= "z" for c in letters):
        return "latin"
    if all("\u0400" <= c <= "\u04ff" for c in letters):
        return "cyrillic"
    return ""


def _mismatch(script: str, language: str) -> bool:
    return (script == "latin" and language in _CYRILLIC_LANGS) or (script == "cyrillic" and language in _LATIN_LANGS)


def _reweight(hit: SearchHit, mode: str, script: str) -> SearchHit:
    """Down-weight the keyword part of a hit whose language's script differs from the query's."""
    if not script or hit.keyword_rank is None or not _mismatch(script, hit.language):
        return hit
    if mode == "keyword" or hit.semantic_rank is None:
        return replace(hit, score=hit.score * LANGUAGE_MISMATCH_WEIGHT)
    # hybrid, found by both lists: the keyword list's reciprocal-rank share is down-weighted
    share = (1.0 - LANGUAGE_MISMATCH_WEIGHT) / (RRF_K + hit.keyword_rank)
    return replace(hit, score=max(hit.score - share, 0.0))


def _has_excluded(hit: SearchHit, negative: Sequence[str]) -> bool:
    if not negative:
        return False
    return bool(highlight_spans(f"{hit.title}\n{hit.snippet}", " ".join(negative)))


def _documents(app: App, ids: Sequence[str]) -> dict[str, Document]:
    out: dict[str, Document] = {}
    for start in range(0, len(ids), 1000):
        chunk = tuple(ids[start : start + 1000])
        for doc in app.index.iter_documents(SearchFilters(document_ids=chunk), batch=1000):
            out[doc.id] = doc
    return out


def _outlet_of(item: _Item) -> str:
    return item.doc.outlet if item.doc is not None and item.doc.outlet else item.hit.source_id


def _as_match(item: _Item) -> Match:
    """The adapter :func:`monitors.copies.collapse_copies` groups (it needs ids, dates, fingerprints)."""
    doc = item.doc
    return Match(
        document_id=item.hit.document_id,
        narrative_id="",
        score=item.hit.score,
        tier="suggest",
        passage_index=item.hit.passage_index,
        passage_text="",
        exemplar="",
        exemplar_language="",
        model="",
        source_id=item.hit.source_id,
        outlet=_outlet_of(item),
        language=item.hit.language,
        published=item.hit.published,
        url=item.hit.url,
        title=item.hit.title,
        fingerprint=doc.fingerprint if doc is not None else (),
        forwarded_from=doc.forwarded_from if doc is not None else "",
    )


def _group(items: list[_Item]) -> list[_Group]:
    by_id = {i.hit.document_id: i for i in items}
    groups: list[_Group] = []
    for g in collapse_copies([_as_match(i) for i in items], forwards=False):
        members = [by_id[m.document_id] for m in g.members]
        groups.append(_Group(shown=members[0], copies=tuple(members[1:]), score=max(m.hit.score for m in members)))
    return groups


def _facets(items: Iterable[_Item]) -> dict[str, tuple[tuple[str, int], ...]]:
    counts: dict[str, dict[str, int]] = {"source": {}, "outlet": {}, "language": {}, "day": {}}
    for i in items:
        for name, value in (
            ("source", i.hit.source_id),
            ("outlet", _outlet_of(i)),
            ("language", i.hit.language),
            ("day", i.hit.published.date().isoformat()),
        ):
            counts[name][value] = counts[name].get(value, 0) + 1
    out: dict[str, tuple[tuple[str, int], ...]] = {}
    for name, c in counts.items():
        if name == "day":
            out[name] = tuple(sorted(c.items()))
        else:
            out[name] = tuple(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))
    return out


def _keep_outlet(item: _Item, rf: ResolvedFilters) -> bool:
    if not rf.outlets and not rf.exclude_outlets:
        return True
    outlet = normalize_outlet(_outlet_of(item))
    return (not rf.outlets or outlet in rf.outlets) and outlet not in rf.exclude_outlets


def _browse_hit(doc: Document) -> SearchHit:
    p = doc.passages[0] if doc.passages else None
    return SearchHit(
        document_id=doc.id,
        passage_index=p.index if p else 0,
        score=0.0,
        url=doc.url,
        title=doc.title,
        source_id=doc.source_id,
        language=doc.language,
        published=doc.published,
        snippet=p.text if p else doc.text[:500],
    )


def _parse(app: App, p: SearchParams) -> tuple[ParsedQuery, ResolvedFilters]:
    parsed = parse_query(p.q)
    rf = resolve_filters(
        app,
        parsed,
        sources=p.sources,
        languages=p.languages,
        kinds=p.kinds,
        outlets=p.outlets,
        since=p.since,
        until=p.until,
    )
    return parsed, rf


def _gather(app: App, p: SearchParams, cap: int) -> _Gathered:
    parsed, rf = _parse(app, p)
    floor = semantic_floor(app.index.embedding_space) if p.mode != "keyword" else None
    if rf.empty:
        return _Gathered([], 0, False, parsed.positive_text, floor, _facets([]))
    items: list[_Item]
    lower = False
    if parsed.text is None:  # field filters only: the newest matching documents
        newest: deque[Document] = deque(maxlen=cap)
        seen = 0
        for doc in app.index.iter_documents(rf.filters):
            item = _Item(_browse_hit(doc), doc)
            if _keep_outlet(item, rf):
                newest.append(doc)
                seen += 1
        lower = seen > cap
        items = [_Item(_browse_hit(d), d) for d in reversed(newest)]
    else:
        text = parsed.positive_text
        vector = app.embedder.embed_query(text) if p.mode != "keyword" else None
        query = SearchQuery(
            text=text, expr=parsed.text, vector=vector, k=cap, mode=p.mode, filters=rf.filters, min_similarity=floor
        )
        hits = app.index.search(query)
        lower = len(hits) >= cap
        script = _script(parsed.positive_words())
        negative = parsed.negative_words()
        kept: list[SearchHit] = []
        for h in hits:
            if h.keyword_rank is None and _has_excluded(h, negative):
                continue
            if (
                floor is None
                and h.keyword_rank is None
                and h.semantic_rank is not None
                and h.semantic_rank > SEMANTIC_FALLBACK_DEPTH
            ):
                continue
            kept.append(_reweight(h, p.mode, script))
        docs = _documents(app, [h.document_id for h in kept])
        items = [_Item(h, docs.get(h.document_id)) for h in kept]
        items = [i for i in items if _keep_outlet(i, rf)]
    groups = _group(items)
    return _Gathered(groups, len(items), lower, parsed.positive_text, floor, _facets(items))


def _sorted(groups: list[_Group], sort: str) -> list[_Group]:
    def when(g: _Group) -> float:
        return g.shown.hit.published.timestamp()

    if sort == "newest":
        return sorted(groups, key=lambda g: (-when(g), g.shown.hit.document_id))
    if sort == "oldest":
        return sorted(groups, key=lambda g: (when(g), g.shown.hit.document_id))
    if sort == "views":

        def views(g: _Group) -> int:
            v = g.shown.doc.views if g.shown.doc is not None else None
            return -1 if v is None else v

        return sorted(groups, key=lambda g: (-views(g), -when(g), g.shown.hit.document_id))
    return sorted(groups, key=lambda g: (-g.score, -when(g), g.shown.hit.document_id))


def _copy_ref(item: _Item) -> CopyRef:
    return CopyRef(item.hit.document_id, item.hit.source_id, _outlet_of(item), item.hit.published, item.hit.url)


def _result(group: _Group, rank: int, query: str) -> SearchResult:
    item = group.shown
    hit = replace(item.hit, score=group.score) if group.score != item.hit.score else item.hit
    spans = tuple((s, e) for s, e in highlight_spans(hit.snippet, query))
    doc = item.doc
    return SearchResult(
        rank=rank,
        hit=hit,
        highlights=spans,
        outlet=_outlet_of(item),
        kind=doc.kind if doc is not None else "",
        views=doc.views if doc is not None else None,
        copies=tuple(_copy_ref(c) for c in group.copies),
    )


def _with_history(app: App, results: list[SearchResult]) -> list[SearchResult]:
    found = histories(app, [r.hit.document_id for r in results])
    return [replace(r, history=found[r.hit.document_id]) for r in results]


def search(app: App, p: SearchParams) -> SearchPage:
    """Page ``p.page`` of the query's results (copies grouped under their first appearance, in
    ``p.sort`` order) with the total and facets. A page past the end is empty.

    Raises :class:`~core.errors.QuerySyntaxError` and :class:`~core.errors.UnknownFilterValue`."""
    size = p.k or p.page_size
    g = _gather(app, p, HIT_CAP)
    groups = _sorted(g.groups, p.sort)
    start = (p.page - 1) * size
    page = groups[start : start + size]
    return SearchPage(
        query=p.q,
        mode=p.mode,
        sort=p.sort,
        page=p.page,
        page_size=size,
        total=len(groups),
        total_documents=g.documents,
        total_is_lower_bound=g.lower_bound,
        has_more=len(groups) > start + size,
        results=tuple(_with_history(app, [_result(x, start + i + 1, g.highlight) for i, x in enumerate(page)])),
        facets=g.facets,
        semantic_floor=g.floor,
    )


def ranked(app: App, p: SearchParams, k: int) -> list[SearchResult]:
    """The first ``k`` results in ``p.sort`` order, ignoring ``p.page``/``p.page_size``
    (``narrawatch search -k``); the same ranking and records as :func:`search`'s pages."""
    g = _gather(app, p, HIT_CAP)
    groups = _sorted(g.groups, p.sort)[:k]
    return _with_history(app, [_result(x, i, g.highlight) for i, x in enumerate(groups, start=1)])


def export_rows(app: App, p: SearchParams, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Every result as flat rows (:data:`EXPORT_FIELDS`), lazily: an original, then its copies
    (``copy_of`` names the original). A text query exports up to :data:`EXPORT_CAP` ranked
    documents; a query of field filters only streams every matching document, oldest first,
    from ``iter_documents`` (memory stays flat). ``limit``: at most that many rows."""
    parsed, rf = _parse(app, p)
    n = 0
    if rf.empty:
        return
    if parsed.text is None:
        for doc in app.index.iter_documents(rf.filters):
            item = _Item(_browse_hit(doc), doc)
            if not _keep_outlet(item, rf):
                continue
            n += 1
            yield _result(_Group(item, (), 0.0), n, "").export_row()
            if limit is not None and n >= limit:
                return
        return
    g = _gather(app, p, EXPORT_CAP)
    for rank, group in enumerate(_sorted(g.groups, p.sort), start=1):
        row = _result(group, rank, g.highlight).export_row()
        for i, item in enumerate((group.shown, *group.copies)):
            if i:
                row = _result(_Group(item, (), item.hit.score), rank, g.highlight).export_row()
                row["copy_of"] = group.shown.hit.document_id
            n += 1
            yield row
            if limit is not None and n >= limit:
                return


def iter_csv(rows: Iterable[dict[str, Any]], fields: Sequence[str]) -> Iterator[str]:
    """CSV text, the header first then one chunk per row (see :func:`rows_to_csv`)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    yield buf.getvalue()
    for row in rows:
        buf.seek(0)
        buf.truncate()
        writer.writerow({k: csv_cell(v) for k, v in strip_markup_row(row).items()})
        yield buf.getvalue()


def iter_jsonl(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """One JSON line per row (see :func:`rows_to_jsonl`)."""
    for r in rows:
        yield escape_bidi(json.dumps(r, ensure_ascii=False)) + "\n"


def rows_to_csv(rows: Iterable[dict[str, Any]], fields: Sequence[str]) -> str:
    """CSV text with a header; cells go through :func:`core.safe_text.csv_cell` (formulas quoted, bidi dropped)
    and text columns lose Telegram markup (:func:`core.markup.strip_markup_row`; JSONL keeps it)."""
    return "".join(iter_csv(rows, fields))


def rows_to_jsonl(rows: Iterable[dict[str, Any]]) -> str:
    """One JSON object a line (UTF-8, not ASCII-escaped except bidi controls: ``\\u202e``)."""
    return "".join(iter_jsonl(rows))
