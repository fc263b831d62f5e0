"""The read model behind the API and the web pages: plain JSON-ready dicts from the index and stores."""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from alerts.admin import alerts_list, open_outbox
from core.documents import Document, SearchFilters, SearchHit, SearchQuery
from core.matches import Match, match_id
from core.safe_text import csv_cell, escape_bidi
from monitors.verdicts import get_match, get_verdict, list_verdicts, verdict_history, verdicts_for
from narrawatch.api.context import ApiContext
from narrawatch.api.errors import ApiError
from narrawatch.api.schemas import EXPORT_MAX, AlertParams, MatchParams, SearchParams

__all__ = [
    "EXPORT_FIELDS",
    "alert_counts",
    "alerts_page",
    "annotate_evidence",
    "document_detail",
    "highlight_spans",
    "match_detail",
    "match_dict",
    "narrative_detail",
    "narratives_overview",
    "rows_to_csv",
    "rows_to_jsonl",
    "run_search",
    "search_export_rows",
    "sources_health",
]

_WORD = re.compile(r"\w{2,}", re.UNICODE)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


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


def _filters(
    sources: Sequence[str], languages: Sequence[str], kinds: Sequence[str], since: Any, until: Any
) -> SearchFilters:
    return SearchFilters(
        sources=tuple(sources), languages=tuple(languages), kinds=tuple(kinds), since=since, until=until
    )


def _hit_dict(hit: SearchHit, rank: int, query: str) -> dict[str, Any]:
    return {
        "rank": rank,
        "document_id": hit.document_id,
        "title": hit.title,
        "url": hit.url,
        "source_id": hit.source_id,
        "language": hit.language,
        "published": _iso(hit.published),
        "score": round(float(hit.score), 6),
        "keyword_rank": hit.keyword_rank,
        "semantic_rank": hit.semantic_rank,
        "semantic_score": None if hit.semantic_score is None else round(float(hit.semantic_score), 4),
        "passage": {
            "index": hit.passage_index,
            "text": hit.snippet,
            "highlights": highlight_spans(hit.snippet, query),
        },
    }


def _ranked(ctx: ApiContext, p: SearchParams, k: int) -> list[SearchHit]:
    app = ctx.app
    vector = app.embedder.embed_query(p.q) if p.mode != "keyword" else None
    query = SearchQuery(
        text=p.q,
        vector=vector,
        k=k,
        mode=p.mode,
        filters=_filters(p.sources, p.languages, p.kinds, p.since, p.until),
    )
    return app.index.search(query)


def run_search(ctx: ApiContext, p: SearchParams) -> dict[str, Any]:
    """One page of ranked hits (one per document, its best passage) with highlight offsets."""
    start = (p.page - 1) * p.page_size
    hits = _ranked(ctx, p, start + p.page_size + 1)
    page = hits[start : start + p.page_size]
    return {
        "query": p.q,
        "mode": p.mode,
        "page": p.page,
        "page_size": p.page_size,
        "has_more": len(hits) > start + p.page_size,
        "results": [_hit_dict(h, start + i + 1, p.q) for i, h in enumerate(page)],
    }


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


def search_export_rows(ctx: ApiContext, p: SearchParams, limit: int = EXPORT_MAX) -> list[dict[str, Any]]:
    """Up to ``limit`` ranked hits as flat rows for CSV/JSONL export."""
    rows = []
    for i, h in enumerate(_ranked(ctx, p, min(limit, EXPORT_MAX)), start=1):
        rows.append(
            {
                "rank": i,
                "document_id": h.document_id,
                "published": _iso(h.published),
                "source_id": h.source_id,
                "language": h.language,
                "title": h.title,
                "url": h.url,
                "score": round(float(h.score), 6),
                "passage_index": h.passage_index,
                "passage": h.snippet,
            }
        )
    return rows


def rows_to_csv(rows: Iterable[dict[str, Any]], fields: Sequence[str]) -> str:
    """CSV text with a header; cells go through :func:`core.safe_text.csv_cell` (formulas quoted, bidi dropped)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: csv_cell(v) for k, v in row.items()})
    return buf.getvalue()


def rows_to_jsonl(rows: Iterable[dict[str, Any]]) -> str:
    """One JSON object a line (UTF-8, not ASCII-escaped except bidi controls: ``\\u202e``)."""
    return "".join(escape_bidi(json.dumps(r, ensure_ascii=False)) + "\n" for r in rows)


def document_detail(ctx: ApiContext, doc_id: str) -> dict[str, Any]:
    """A stored document with its passages; 404 if absent."""
    doc: Document | None = ctx.app.index.get(doc_id)
    if doc is None:
        raise ApiError(404, f"no document {doc_id!r}")
    return {
        "id": doc.id,
        "source_id": doc.source_id,
        "kind": doc.kind,
        "url": doc.url,
        "title": doc.title,
        "language": doc.language,
        "published": _iso(doc.published),
        "fetched": _iso(doc.fetched),
        "outlet": doc.outlet,
        "author": doc.author,
        "forwarded_from": doc.forwarded_from,
        "views": doc.views,
        "links": list(doc.links),
        "media": list(doc.media),
        "text": doc.text,
        "passages": [{"index": p.index, "start": p.start, "text": p.text} for p in doc.passages],
    }


def sources_health(ctx: ApiContext, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every configured source's crawl health, failing first, then silent, then by id."""
    now = now or datetime.now(UTC)
    app = ctx.app
    try:
        indexed = app.index.count("source")
    except Exception:  # health must render even when the index is down
        indexed = {}
    out = []
    for s in ctx.config.sources:
        h = app.state.health(s.id, now)
        failing = h["consecutive_failures"] > 0
        status = "failing" if failing else ("never" if h["last_success"] is None else "ok")
        if status == "ok" and h["items_24h"] == 0:
            status = "quiet"
        out.append(
            {
                **h,
                "kind": s.kind,
                "outlet": s.outlet or (f"t.me/{getattr(s, 'channel', '')}" if s.kind == "telegram" else s.id),
                "enabled": s.enabled,
                "documents": indexed.get(s.id, 0),
                "status": status,
            }
        )
    order = {"failing": 0, "never": 1, "quiet": 2, "ok": 3}
    out.sort(key=lambda r: (order[r["status"]], -r["consecutive_failures"], r["id"]))
    return out


def match_dict(m: Match) -> dict[str, Any]:
    """A match for display: its id, evidence passage, where and when, why (no fingerprint)."""
    return {
        "id": m.id,
        "document_id": m.document_id,
        "narrative_id": m.narrative_id,
        "score": round(float(m.score), 4),
        "tier": m.tier,
        "similarity": round(float(m.similarity), 4),
        "passage_index": m.passage_index,
        "passage": m.passage_text,
        "exemplar": m.exemplar,
        "source_id": m.source_id,
        "outlet": m.outlet,
        "language": m.language,
        "published": _iso(m.published),
        "url": m.url,
        "title": m.title,
        "keywords": list(m.keywords),
        "forwarded_from": m.forwarded_from,
        "decision": m.decision,
        "probability": m.probability,
        "reasons": list(m.reasons),
    }


def match_detail(ctx: ApiContext, match_id_: str) -> dict[str, Any]:
    """One match with its latest verdict and verdict history; 404 (UnknownMatchError) if unknown."""
    m = get_match(ctx.matches, match_id_)
    v = get_verdict(ctx.matches, m.id)
    return {
        **match_dict(m),
        "verdict": v.as_dict() if v else None,
        "history": [h.as_dict() for h in verdict_history(ctx.matches, m.id)],
    }


def annotate_evidence(ctx: ApiContext, items: Sequence[dict[str, Any]]) -> None:
    """Add ``id``, ``verdict`` (latest, or None) and, from the store, ``reasons`` to evidence dicts in place.

    Alert evidence was stored when the alert was raised; the id is computed from
    ``document_id``/``narrative_id`` when the stored evidence predates it.
    """
    for item in items:
        if not item.get("id"):
            item["id"] = item.get("match_id") or match_id(str(item["document_id"]), str(item["narrative_id"]))
    found = verdicts_for(ctx.matches, [str(i["id"]) for i in items])
    for item in items:
        v = found.get(str(item["id"]))
        item["verdict"] = v.as_dict() if v else None
        if "reasons" not in item:
            stored = ctx.matches.get(str(item["id"]))
            item["reasons"] = list(stored.reasons) if stored is not None else []


def _summary(ms: Sequence[Match]) -> dict[str, Any]:
    days = Counter(m.published.astimezone(UTC).date().isoformat() for m in ms)
    return {
        "total": len(ms),
        "alert_tier": sum(1 for m in ms if m.tier == "alert"),
        "timeline": [{"day": d, "count": n} for d, n in sorted(days.items())],
        "top_outlets": [{"name": k, "count": n} for k, n in Counter(m.outlet for m in ms).most_common(8)],
        "top_languages": [{"name": k, "count": n} for k, n in Counter(m.language for m in ms).most_common(8)],
        "first": _iso(ms[0].published) if ms else None,
        "last": _iso(ms[-1].published) if ms else None,
    }


def narratives_overview(
    ctx: ApiContext, since: datetime | None = None, until: datetime | None = None
) -> list[dict[str, Any]]:
    """Every catalogue narrative (and any with stored matches) with match counts and a daily timeline."""
    titles = {n.id: n for n in ctx.catalogue.narratives}
    ids = list(titles) + [i for i in ctx.matches.narrative_ids() if i not in titles]
    out = []
    for nid in ids:
        n = titles.get(nid)
        ms = ctx.matches.matches(nid, since=since, until=until)
        out.append(
            {
                "id": nid,
                "title": n.title if n else nid,
                "description": n.description if n else "",
                "enabled": n.enabled if n else False,
                "in_catalogue": n is not None,
                **_summary(ms),
                "latest": [match_dict(m) for m in reversed(ms[-3:])],
            }
        )
    out.sort(key=lambda r: (-r["total"], r["id"]))
    return out


def narrative_detail(ctx: ApiContext, narrative_id: str, p: MatchParams) -> dict[str, Any]:
    """One narrative: summary, timeline and a page of matches, newest first; 404 if unknown."""
    cat = {n.id: n for n in ctx.catalogue.narratives}
    if narrative_id not in cat and narrative_id not in ctx.matches.narrative_ids():
        raise ApiError(404, f"unknown narrative {narrative_id!r}")
    listed = ctx.matches.matches(
        narrative_id,
        since=p.since,
        until=p.until,
        outlets=p.outlets or None,
        languages=p.languages or None,
        include_rejected=True,
    )
    # The list shows rejected matches too (with their verdict); the summary counts only the rest.
    rejected = {v.match_id for v in list_verdicts(ctx.matches, narrative_id=narrative_id, verdict="rejected")}
    ms = [m for m in listed if m.id not in rejected] if rejected else listed
    newest = list(reversed(listed))
    start = (p.page - 1) * p.page_size
    n = cat.get(narrative_id)
    page = [match_dict(m) for m in newest[start : start + p.page_size]]
    annotate_evidence(ctx, page)
    return {
        "id": narrative_id,
        "title": n.title if n else narrative_id,
        "description": n.description if n else "",
        "keywords": list(n.keywords) if n else [],
        **_summary(ms),
        "rejected": len(listed) - len(ms),
        "page": p.page,
        "page_size": p.page_size,
        "has_more": len(newest) > start + p.page_size,
        "matches": page,
    }


def alerts_page(ctx: ApiContext, p: AlertParams) -> list[dict[str, Any]]:
    """Alerts newest first, filtered by rule, severity, acknowledgement and time, one page (all in SQL)."""
    return alerts_list(
        ctx.config,
        since=p.since,
        until=p.until,
        rule=p.rule,
        severity=p.severity,
        unacked=p.unacked,
        limit=p.limit,
        offset=p.offset,
    )


def alert_counts(ctx: ApiContext) -> dict[str, int]:
    """Delivery rows by status and the number of alerts (for /metrics)."""
    with open_outbox(ctx.config) as outbox:
        return outbox.counts()
