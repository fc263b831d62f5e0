"""Narratives and their matches: overview, one narrative, match pages, one match, verdicts.

A match's JSON shape is :meth:`MatchView.as_dict` on every surface. Writing a verdict is here
too (it is what analysts do while reading a match), so the API, the web form and
``narrawatch matches confirm|reject`` record it the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from core.errors import NotFoundError
from core.matches import Match, match_id
from core.timefmt import iso_utc
from monitors.catalogue import Narrative
from monitors.verdicts import (
    Verdict,
    get_match,
    get_verdict,
    list_verdicts,
    verdict_history,
    verdicts_for,
)
from monitors.verdicts import list_matches as _list_matches
from monitors.verdicts import record_verdict as _record_verdict
from narrawatch.app import App
from narrawatch.read.labels import label_items
from narrawatch.read.params import MatchParams
from narrawatch.verdict_export import verdict_gold_lines

__all__ = [
    "MatchDetail",
    "MatchSummary",
    "MatchView",
    "NarrativeDetail",
    "NarrativeOverview",
    "annotate_evidence",
    "list_matches",
    "match_detail",
    "narrative_detail",
    "narratives_overview",
    "record_verdict",
    "verdict_gold",
    "verdicts",
]


@dataclass(frozen=True)
class MatchView:
    """A match for display: evidence passage, where and when, why; with its latest verdict when
    ``judged`` (the ``verdict`` key is then present, None if there is none)."""

    match: Match
    verdict: Verdict | None = None
    judged: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The one JSON shape of a match (no fingerprint)."""
        m = self.match
        out: dict[str, Any] = {
            "id": m.id,
            "document_id": m.document_id,
            "narrative_id": m.narrative_id,
            "score": round(float(m.score), 4),
            "tier": m.tier,
            "similarity": round(float(m.similarity), 4),
            "passage_index": m.passage_index,
            "passage": m.passage_text,
            "exemplar": m.exemplar,
            "exemplar_language": m.exemplar_language,
            "counter_similarity": None if m.counter_similarity is None else round(float(m.counter_similarity), 4),
            "source_id": m.source_id,
            "outlet": m.outlet,
            "language": m.language,
            "published": iso_utc(m.published),
            "url": m.url,
            "title": m.title,
            "keywords": list(m.keywords),
            "forwarded_from": m.forwarded_from,
            "decision": m.decision,
            "probability": m.probability,
            "reasons": list(m.reasons),
        }
        if self.judged:
            out["verdict"] = self.verdict.as_dict() if self.verdict else None
        return out


@dataclass(frozen=True)
class MatchDetail:
    """One match with its latest verdict and the verdict history."""

    match: Match
    verdict: Verdict | None
    history: tuple[Verdict, ...]

    def as_dict(self) -> dict[str, Any]:
        """:meth:`MatchView.as_dict` plus ``verdict`` and ``history``."""
        return {
            **MatchView(self.match).as_dict(),
            "verdict": self.verdict.as_dict() if self.verdict else None,
            "history": [h.as_dict() for h in self.history],
        }


MAX_TIMELINE_DAYS = 1830
"""A timeline spanning more days than this is counted per week (each bucket labelled by its Monday)."""


def filled_timeline(
    days: Counter[str], start: date | None, end: date | None
) -> tuple[str, tuple[tuple[str, int], ...]]:
    """``(bucket, ((label, count), ...))``: every day from ``start`` to ``end`` inclusive, empty ones
    as 0, so a chart's axis is proportional to time (weeks past :data:`MAX_TIMELINE_DAYS` days)."""
    if start is None or end is None or end < start:
        return "day", tuple(sorted(days.items()))
    span = (end - start).days + 1
    if span <= MAX_TIMELINE_DAYS:
        return "day", tuple(
            ((start + timedelta(days=i)).isoformat(), days.get((start + timedelta(days=i)).isoformat(), 0))
            for i in range(span)
        )
    weeks: Counter[str] = Counter()
    for day, n in days.items():
        d = date.fromisoformat(day)
        weeks[(d - timedelta(days=d.weekday())).isoformat()] += n
    first = start - timedelta(days=start.weekday())
    count = (end - first).days // 7 + 1
    labels = [(first + timedelta(weeks=i)).isoformat() for i in range(count)]
    return "week", tuple((w, weeks.get(w, 0)) for w in labels)


@dataclass(frozen=True)
class MatchSummary:
    """Counts, a zero-filled daily timeline and the top outlets/languages of a set of matches (oldest first)."""

    total: int
    alert_tier: int
    timeline: tuple[tuple[str, int], ...]
    top_outlets: tuple[tuple[str, int], ...]
    top_languages: tuple[tuple[str, int], ...]
    first: datetime | None
    last: datetime | None
    bucket: str = "day"
    """``day`` (or ``week`` for a timeline over :data:`MAX_TIMELINE_DAYS` days)."""

    @classmethod
    def of(cls, ms: Sequence[Match], since: datetime | None = None, until: datetime | None = None) -> MatchSummary:
        """The summary of ``ms`` (sorted by publication, oldest first). The timeline has every day
        from ``since`` (else the first match) to ``until`` (else the last match), zero-filled."""
        days = Counter(m.published.astimezone(UTC).date().isoformat() for m in ms)
        first_day = ms[0].published.astimezone(UTC).date() if ms else None
        last_day = ms[-1].published.astimezone(UTC).date() if ms else None
        start = since.astimezone(UTC).date() if since else first_day
        today = datetime.now(UTC).date()
        if until is not None:  # exclusive: a window ending at midnight does not include that day
            end: date | None = (until.astimezone(UTC) - timedelta(microseconds=1)).date()
        else:
            end = last_day if last_day is not None else (today if since else None)
        if end is not None and end > today and (last_day is None or end > last_day):
            end = max(today, last_day or today)  # a window "until next year" stops at the data or today
        bucket, timeline = filled_timeline(days, start, end)
        return cls(
            total=len(ms),
            alert_tier=sum(1 for m in ms if m.tier == "alert"),
            timeline=timeline,
            top_outlets=tuple(Counter(m.outlet for m in ms).most_common(8)),
            top_languages=tuple(Counter(m.language for m in ms).most_common(8)),
            first=ms[0].published if ms else None,
            last=ms[-1].published if ms else None,
            bucket=bucket,
        )

    def as_dict(self) -> dict[str, Any]:
        """``total``, ``alert_tier``, ``timeline`` [{day, count}], ``top_outlets``/``top_languages``
        [{name, count}], ``first``, ``last``."""
        return {
            "total": self.total,
            "alert_tier": self.alert_tier,
            "timeline": [{"day": d, "count": n} for d, n in self.timeline],
            "bucket": self.bucket,
            "top_outlets": [{"name": k, "count": n} for k, n in self.top_outlets],
            "top_languages": [{"name": k, "count": n} for k, n in self.top_languages],
            "first": iso_utc(self.first),
            "last": iso_utc(self.last),
        }


@dataclass(frozen=True)
class NarrativeOverview:
    """One row of the narratives overview."""

    id: str
    narrative: Narrative | None
    summary: MatchSummary
    latest: tuple[MatchView, ...]

    def as_dict(self) -> dict[str, Any]:
        """Id, title, description, enabled, in_catalogue, the summary and the 3 latest matches."""
        n = self.narrative
        return {
            "id": self.id,
            "title": n.title if n else self.id,
            "description": n.description if n else "",
            "enabled": n.enabled if n else False,
            "in_catalogue": n is not None,
            **self.summary.as_dict(),
            "latest": [m.as_dict() for m in self.latest],
        }


@dataclass(frozen=True)
class NarrativeDetail:
    """One narrative: summary (rejected matches left out), and a page of matches (rejected ones
    included, with their verdict), newest first."""

    id: str
    narrative: Narrative | None
    summary: MatchSummary
    rejected: int
    page: int
    page_size: int
    has_more: bool
    matches: tuple[MatchView, ...]

    def as_dict(self) -> dict[str, Any]:
        """Id, title, description, keywords, summary, ``rejected``, paging and ``matches``."""
        n = self.narrative
        return {
            "id": self.id,
            "title": n.title if n else self.id,
            "description": n.description if n else "",
            "keywords": list(n.keywords) if n else [],
            **self.summary.as_dict(),
            "rejected": self.rejected,
            "page": self.page,
            "page_size": self.page_size,
            "has_more": self.has_more,
            "matches": [m.as_dict() for m in self.matches],
        }

    def matches_dict(self) -> dict[str, Any]:
        """Only the page of matches: ``id``, ``total``, paging, ``matches``."""
        d = self.as_dict()
        return {k: d[k] for k in ("id", "total", "page", "page_size", "has_more", "matches")}


def _catalogue(app: App) -> dict[str, Narrative]:
    return {n.id: n for n in app.catalogue.narratives}


def narratives_overview(
    app: App, since: datetime | None = None, until: datetime | None = None
) -> list[NarrativeOverview]:
    """Every catalogue narrative (and any with stored matches), most matches first."""
    titles = _catalogue(app)
    ids = list(titles) + [i for i in app.matches.narrative_ids() if i not in titles]
    found = {nid: app.matches.matches(nid, since=since, until=until) for nid in ids}
    # One time axis for every card, so the dashboard's charts line up and compare.
    firsts = [ms[0].published for ms in found.values() if ms]
    lasts = [ms[-1].published for ms in found.values() if ms]
    start = since or (min(firsts) if firsts else None)
    stop = until or (max(lasts) + timedelta(microseconds=1) if lasts else None)
    out = []
    for nid, ms in found.items():
        latest = tuple(MatchView(m) for m in reversed(ms[-3:]))
        out.append(NarrativeOverview(nid, titles.get(nid), MatchSummary.of(ms, start, stop), latest))
    out.sort(key=lambda r: (-r.summary.total, r.id))
    return out


def narrative_detail(app: App, narrative_id: str, p: MatchParams) -> NarrativeDetail:
    """One narrative with a page of matches; :class:`~core.errors.NotFoundError` if unknown."""
    cat = _catalogue(app)
    if narrative_id not in cat and narrative_id not in app.matches.narrative_ids():
        raise NotFoundError(f"unknown narrative {narrative_id!r}")
    listed = app.matches.matches(
        narrative_id,
        since=p.since,
        until=p.until,
        outlets=p.outlets or None,
        languages=p.languages or None,
        include_rejected=True,
    )
    # The list shows rejected matches too (with their verdict); the summary counts only the rest.
    rejected = {v.match_id for v in list_verdicts(app.matches, narrative_id=narrative_id, verdict="rejected")}
    kept = [m for m in listed if m.id not in rejected] if rejected else listed
    newest = list(reversed(listed))
    start = (p.page - 1) * p.page_size
    page = newest[start : start + p.page_size]
    found = verdicts_for(app.matches, [m.id for m in page])
    return NarrativeDetail(
        id=narrative_id,
        narrative=cat.get(narrative_id),
        summary=MatchSummary.of(kept, p.since, p.until),
        rejected=len(listed) - len(kept),
        page=p.page,
        page_size=p.page_size,
        has_more=len(newest) > start + p.page_size,
        matches=tuple(MatchView(m, found.get(m.id), judged=True) for m in page),
    )


def list_matches(
    app: App,
    *,
    narrative_id: str | None = None,
    verdict: Literal["confirmed", "rejected", "none"] | None = None,
    limit: int | None = 50,
) -> list[MatchView]:
    """Stored matches (rejected ones too), newest first, each with its latest verdict."""
    return [
        MatchView(m, v, judged=True)
        for m, v in _list_matches(app.matches, narrative_id=narrative_id, verdict=verdict, limit=limit)
    ]


def match_detail(app: App, match_id_: str) -> MatchDetail:
    """One match with its verdicts; :class:`~monitors.verdicts.UnknownMatchError` (a
    :class:`~core.errors.UnknownNameError`) if unknown."""
    m = get_match(app.matches, match_id_)
    return MatchDetail(m, get_verdict(app.matches, m.id), tuple(verdict_history(app.matches, m.id)))


def record_verdict(
    app: App, match_id_: str, verdict: Literal["confirmed", "rejected"], *, analyst: str, note: str = ""
) -> Verdict:
    """Confirm or reject a match (a later verdict replaces it); UnknownMatchError if unknown."""
    return _record_verdict(app.matches, match_id_, verdict, analyst=analyst, note=note)


def verdicts(
    app: App,
    *,
    narrative_id: str | None = None,
    verdict: Literal["confirmed", "rejected"] | None = None,
    limit: int = 500,
) -> list[Verdict]:
    """Latest verdicts, newest first."""
    return list_verdicts(app.matches, narrative_id=narrative_id, verdict=verdict, limit=limit)


def verdict_gold(
    app: App, *, narrative_id: str | None = None, verdict: Literal["confirmed", "rejected"] | None = None
) -> list[dict[str, Any]]:
    """Latest verdicts as gold JSONL lines (``narratives eval/learn`` input), newest first."""
    lines = verdict_gold_lines(app.config, narrative_id=narrative_id, store=app.matches, index=app.index)
    return [line for line in lines if verdict is None or line["verdict"] == verdict]


def annotate_evidence(app: App, items: Sequence[dict[str, Any]]) -> None:
    """Add ``id``, ``verdict`` (latest, or None), from the store ``reasons``, ``decision`` and
    ``probability``, and the source's labels (:mod:`narrawatch.read.labels`) to evidence dicts in place.

    Alert evidence was stored when the alert was raised; the id is computed from
    ``document_id``/``narrative_id`` when the stored evidence predates it.
    """
    for item in items:
        if not item.get("id"):
            item["id"] = item.get("match_id") or match_id(str(item["document_id"]), str(item["narrative_id"]))
    found = verdicts_for(app.matches, [str(i["id"]) for i in items])
    for item in items:
        v = found.get(str(item["id"]))
        item["verdict"] = v.as_dict() if v else None
        if "reasons" not in item or "decision" not in item:
            stored = app.matches.get(str(item["id"]))
            item.setdefault("reasons", list(stored.reasons) if stored is not None else [])
            item.setdefault("decision", stored.decision if stored is not None else "")
            item.setdefault("probability", stored.probability if stored is not None else None)
    label_items(app, items)
