"""Detectors over stored matches and source health, registered by name in ``core.events.DETECTORS``.

Each detector has a pydantic options model (unknown keys are errors) and
``detect(store, health, now, narratives) -> list[DetectorEvent]``, deterministic for a given
``now``. Narrative detectors share one skeleton, :class:`NarrativeDetector`: its ``detect``
walks the selected narratives and each detector fills in ``detect_narrative`` for one of them.
:func:`register_builtins` adds the built-ins to the registry (nothing registers on import).
Copies (near-duplicate fingerprints or forwards, see :func:`monitors.copies.collapse_copies`)
count once.

Late items. A match has a publication time and a first-seen time (``Match.seen``: when the
service first matched it). Only matches seen by ``now`` count. *Whether* something happened is
judged on publication times, *whether it is news* on first-seen times, so an item crawled late
still alerts and a backlog never invents a pattern:

* ``new_outlet`` / ``new_language``: the first match the service saw in an outlet (language),
  reported when it was first seen in ``[now - lookback, now]``; outlets seen before rank first.
  :func:`label_events` (run by the service on every pass's events) adds the sources' configured
  labels (actor type, country, owner) to every event and says in a ``new_outlet`` event's title
  and summary which kind of outlet it is ("state media, RU").
* ``spike``: windows of publication time. The current window ``[now - window, now)`` is always
  evaluated; an earlier window (up to ``baseline_windows`` back) is evaluated too when it holds
  an item first seen in the last ``window``, with its own baseline before it. A backlog therefore
  fires a spike only if its items were *published* as one; the most recent firing window is reported.
* ``coordinated_burst``: matches published in the lookback plus those first seen in it; a burst is
  judged on publication times (``within``).
* ``recurrence``: a publication window ``[now - window, now)`` (an item published before the window
  never counts, however late it was seen).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, Field, model_validator

from core.events import DETECTORS, DetectorEvent, DetectorKind, SourceHealth
from core.matches import Match
from core.registry import Registry
from core.settings import MAX_DURATION, Duration, SourceBase, StrictModel, actor_label
from monitors.copies import COPY_THRESHOLD, CopyGroup, collapse_copies
from monitors.store import MatchStore

__all__ = [
    "BUILTIN_DETECTORS",
    "BurstOptions",
    "CoordinatedBurstDetector",
    "DetectorBase",
    "NarrativeDetector",
    "NarrativeScope",
    "NewLanguageDetector",
    "NewLanguageOptions",
    "NewOutletDetector",
    "NewOutletOptions",
    "RecurrenceDetector",
    "RecurrenceOptions",
    "SilenceOptions",
    "SourceSilenceDetector",
    "SpikeDetector",
    "SpikeOptions",
    "build_detector",
    "first_seen",
    "label_events",
    "outlet_kind",
    "register_builtins",
]

TierName = Literal["suggest", "alert"]
_TIER_RANK = {"suggest": 0, "alert": 1}
Threshold = Annotated[float, Field(gt=0.0, le=1.0)]


class MatchOptions(StrictModel):
    """Options shared by match-based detectors."""

    min_tier: TierName = "alert"
    """Count only matches of this tier or stronger (``alert`` > ``suggest``)."""
    max_evidence: Annotated[int, Field(ge=1, le=100)] = 10


class DetectorBase:
    """Common plumbing: options, narrative selection, tier filtering."""

    name: ClassVar[str] = ""
    Options: ClassVar[type[StrictModel]] = StrictModel

    def __init__(self, options: BaseModel | Mapping[str, Any] | None = None) -> None:
        if isinstance(options, self.Options):
            self.options = options
        else:
            data = options.model_dump() if isinstance(options, BaseModel) else dict(options or {})
            self.options = self.Options.model_validate(data)

    def detect(
        self, store: MatchStore, health: Sequence[SourceHealth], now: datetime, narratives: Mapping[str, str]
    ) -> list[DetectorEvent]:
        """Events seen at ``now`` (override)."""
        raise NotImplementedError

    @staticmethod
    def _narratives(store: MatchStore, narratives: Mapping[str, str]) -> list[str]:
        return sorted(narratives) if narratives else store.narrative_ids()

    def _keep(self, matches: Sequence[Match], now: datetime | None = None) -> list[Match]:
        """Matches of the options' tier or stronger (and, given ``now``, first seen by then)."""
        floor = _TIER_RANK[getattr(self.options, "min_tier", "suggest")]
        return [m for m in matches if _TIER_RANK.get(m.tier, 0) >= floor and (now is None or first_seen(m) <= now)]

    def _event(
        self,
        *,
        key: str,
        narrative_id: str | None,
        narratives: Mapping[str, str],
        title: str,
        summary: str,
        evidence: Sequence[Match],
        counts: dict[str, int],
        score: float,
        now: datetime,
        source_id: str | None = None,
        window: tuple[datetime, datetime] | None = None,
    ) -> DetectorEvent:
        cap = int(getattr(self.options, "max_evidence", 10))
        ev = tuple(evidence[:cap])
        if window is None:
            window = (min(m.published for m in ev), max(m.published for m in ev)) if ev else (now, now)
        return DetectorEvent(
            detector=self.name,
            key=key,
            narrative_id=narrative_id,
            source_id=source_id,
            title=title,
            summary=summary,
            window_start=window[0],
            window_end=window[1],
            counts=counts,
            outlets=tuple(sorted({m.outlet for m in evidence})),
            languages=tuple(sorted({m.language for m in evidence})),
            evidence=ev,
            score=score,
            created=now,
            narrative_title=narratives.get(narrative_id, "") if narrative_id else "",
        )


@dataclass(frozen=True)
class NarrativeScope:
    """One narrative in one detector pass: its id, the titles events are labelled with, ``now``."""

    id: str
    titles: Mapping[str, str]
    now: datetime

    @property
    def label(self) -> str:
        """``id (title)``, or the id when the narrative has no title."""
        return _label(self.id, self.titles)


class NarrativeDetector(DetectorBase):
    """The skeleton of a detector over one narrative's matches at a time.

    :meth:`detect` walks the selected narratives (all stored ones when none are given) in id
    order; a detector implements :meth:`detect_narrative` and builds its events with
    :meth:`_narrative_event`.
    """

    def detect(
        self, store: MatchStore, health: Sequence[SourceHealth], now: datetime, narratives: Mapping[str, str]
    ) -> list[DetectorEvent]:
        """The events of every selected narrative, narrative by narrative."""
        out: list[DetectorEvent] = []
        for nid in self._narratives(store, narratives):
            out.extend(self.detect_narrative(store, NarrativeScope(nid, narratives, now)))
        return out

    def detect_narrative(self, store: MatchStore, n: NarrativeScope) -> Iterable[DetectorEvent]:
        """Events about narrative ``n`` (override)."""
        raise NotImplementedError

    def _narrative_event(
        self,
        n: NarrativeScope,
        *,
        title: str,
        summary: str,
        evidence: Sequence[Match],
        counts: dict[str, int],
        score: float,
        key: str = "",
        source_id: str | None = None,
        window: tuple[datetime, datetime] | None = None,
    ) -> DetectorEvent:
        """An event about ``n`` (``key`` defaults to the narrative id)."""
        return self._event(
            key=key or n.id,
            narrative_id=n.id,
            narratives=n.titles,
            title=title,
            summary=summary,
            evidence=evidence,
            counts=counts,
            score=score,
            now=n.now,
            source_id=source_id,
            window=window,
        )


def first_seen(m: Match) -> datetime:
    """When the service first saw ``m`` (its publication time if the match carries no such record)."""
    return m.seen if m.seen is not None else m.published


def _late_note(m: Match) -> str:
    """`` (published ..., first seen 5h later)`` for an item seen an hour or more after publication."""
    lag = first_seen(m) - m.published
    if lag < timedelta(hours=1):
        return ""
    return f" (published {m.published.isoformat(timespec='minutes')}, first seen {_span(_round_minutes(lag))} later)"


def _round_minutes(d: timedelta) -> timedelta:
    return timedelta(minutes=int(d.total_seconds() // 60))


def _label(nid: str, narratives: Mapping[str, str]) -> str:
    title = narratives.get(nid, "")
    return f"{nid} ({title})" if title else nid


class RecurrenceOptions(MatchOptions):
    """Recurrence: at least ``min_matches`` distinct texts from ``min_outlets`` outlets in ``window``."""

    window: Duration = timedelta(hours=24)
    min_matches: Annotated[int, Field(ge=1)] = 3
    min_outlets: Annotated[int, Field(ge=1)] = 2
    copy_threshold: Threshold = COPY_THRESHOLD


class RecurrenceDetector(NarrativeDetector):
    """A narrative keeps coming back: copies (near-duplicates, forwards) count once."""

    name = "recurrence"
    Options = RecurrenceOptions
    options: RecurrenceOptions

    def detect_narrative(self, store: MatchStore, n: NarrativeScope) -> list[DetectorEvent]:
        """One event when the narrative's collapsed matches in the window reach both thresholds."""
        o = self.options
        matches = self._keep(store.matches(n.id, since=n.now - o.window, until=n.now), n.now)
        groups = collapse_copies(matches, o.copy_threshold)
        outlets = {g.original.outlet for g in groups}
        if len(groups) < o.min_matches or len(outlets) < o.min_outlets:
            return []
        originals = [g.original for g in groups]
        summary = (
            f"{len(groups)} distinct items from {len(outlets)} outlets in the last {_span(o.window)} "
            f"({len(matches)} matches before counting copies once)"
        )
        return [
            self._narrative_event(
                n,
                title=f"Recurring narrative: {n.label}",
                summary=summary,
                evidence=originals,
                counts={"matches": len(matches), "distinct": len(groups), "outlets": len(outlets)},
                score=max(m.score for m in originals),
            )
        ]


class SpikeOptions(MatchOptions):
    """Spike: the current window's count against the mean of the ``baseline_windows`` before it."""

    window: Duration = timedelta(hours=1)
    baseline_windows: Annotated[int, Field(ge=1, le=1000)] = 24
    min_ratio: Annotated[float, Field(gt=0)] = 3.0
    min_count: Annotated[int, Field(ge=1)] = 5
    baseline_floor: Annotated[float, Field(gt=0)] = 1.0
    """The baseline mean is at least this, so a narrative new this hour needs ``min_count`` items."""
    copy_threshold: Threshold = COPY_THRESHOLD

    @model_validator(mode="after")
    def _span_fits(self) -> SpikeOptions:
        # The detector looks back window x (baseline_windows + 1): past MAX_DURATION that date
        # is not representable (OverflowError in the detector pass, not at load).
        if self.window * (self.baseline_windows + 1) > MAX_DURATION:
            raise ValueError(
                f"window x (baseline_windows + 1) looks back more than {MAX_DURATION.days}d;"
                " use a shorter window or fewer baseline_windows"
            )
        return self


class SpikeDetector(NarrativeDetector):
    """A narrative suddenly appears much more often than in the preceding windows."""

    name = "spike"
    Options = SpikeOptions
    options: SpikeOptions

    def detect_narrative(self, store: MatchStore, n: NarrativeScope) -> list[DetectorEvent]:
        """At most one event: the most recent evaluated window with ``count >= min_count`` and
        ``count / baseline >= min_ratio`` (windows: see the module docstring)."""
        o, now = self.options, n.now
        # Earlier windows holding an item first seen in the last window (a late item).
        late = self._keep(store.seen_between(n.id, now - o.window, now, published_before=now - o.window), now)
        ks = {0} | {k for m in late if 1 <= (k := int((now - m.published) / o.window)) <= o.baseline_windows}
        start = now - o.window * (max(ks) + o.baseline_windows + 1)
        groups = collapse_copies(self._keep(store.matches(n.id, since=start, until=now), now), o.copy_threshold)
        for k in sorted(ks):
            event = self._window(n, groups, k)
            if event is not None:
                return [event]
        return []

    def _window(self, n: NarrativeScope, groups: Sequence[CopyGroup], k: int) -> DetectorEvent | None:
        """The event of publication window ``[end - window, end)``, ``end = now - k * window``, if it spiked."""
        o = self.options
        end = n.now - o.window * k
        lo, base_lo = end - o.window, end - o.window * (o.baseline_windows + 1)
        current = [g.original for g in groups if lo <= g.original.published < end]
        baseline = sum(1 for g in groups if base_lo <= g.original.published < lo)
        mean = baseline / o.baseline_windows
        ratio = len(current) / max(mean, o.baseline_floor)
        if len(current) < o.min_count or ratio < o.min_ratio:
            return None
        where = (
            f"in the last {_span(o.window)}"
            if k == 0
            else f"published {lo.isoformat(timespec='minutes')} to {end.isoformat(timespec='minutes')} "
            f"(crawled late: first seen up to {_span(_round_minutes(max(first_seen(m) for m in current) - end))} "
            "after that window)"
        )
        return self._narrative_event(
            n,
            title=f"Spike: {n.label}",
            summary=(
                f"{len(current)} distinct items {where}, {ratio:.1f}x the mean of "
                f"the previous {o.baseline_windows} windows ({mean:.2f} per window)"
            ),
            evidence=current,
            counts={"current": len(current), "baseline": baseline, "baseline_windows": o.baseline_windows},
            score=round(ratio, 3),
            window=(lo, end),
        )


class NewOutletOptions(MatchOptions):
    """New outlet: the first match of a narrative in an outlet, first seen in ``lookback``."""

    lookback: Duration = timedelta(hours=24)
    min_prior_outlets: Annotated[int, Field(ge=0)] = 1
    """Only report once the narrative was already seen in this many other outlets (0: always)."""


class NewOutletDetector(NarrativeDetector):
    """A narrative reaches an outlet where it was never matched before."""

    name = "new_outlet"
    Options: ClassVar[type[StrictModel]] = NewOutletOptions
    attribute: ClassVar[str] = "outlet"
    noun: ClassVar[str] = "outlet"

    def _first_seen(self, store: MatchStore, nid: str, now: datetime) -> dict[str, Match]:
        return store.first_seen_by_outlet(nid, until=now)

    def detect_narrative(self, store: MatchStore, n: NarrativeScope) -> list[DetectorEvent]:
        """One event per outlet whose first match of the narrative was first seen in ``[now - lookback, now]``."""
        o: Any = self.options
        first = self._first_seen(store, n.id, n.now)
        ordered = sorted(first.items(), key=lambda kv: (first_seen(kv[1]), kv[1].published, kv[1].document_id))
        return [
            self._narrative_event(
                n,
                key=f"{n.id}|{value}",
                title=f"New {self.noun} for {n.label}: {value}",
                summary=(
                    f"First match of this narrative in {self.noun} {value} "
                    f"(seen in {rank} other {self.noun}s before){_late_note(m)}"
                ),
                evidence=[m],
                counts={f"prior_{self.noun}s": rank},
                score=m.score,
                source_id=m.source_id,
            )
            for rank, (value, m) in enumerate(ordered)
            if first_seen(m) >= n.now - o.lookback
            and rank >= o.min_prior_outlets
            and _TIER_RANK.get(m.tier, 0) >= _TIER_RANK[o.min_tier]
        ]


def _labels(source: SourceBase) -> dict[str, str]:
    out = {"outlet": source.outlet_label}
    for key in ("actor", "country", "owner"):
        value = getattr(source, key, None)
        if value:
            out[key] = str(value)
    return out


def outlet_kind(label: Mapping[str, str] | None) -> str:
    """``state media, RU`` (actor type and country as configured); ``actor type not set`` without one."""
    if not label:
        return "actor type not set"
    parts = [actor_label(label.get("actor")) or "actor type not set"]
    if label.get("country"):
        parts.append(label["country"])
    return ", ".join(parts)


def label_events(events: Sequence[DetectorEvent], sources: Sequence[SourceBase]) -> list[DetectorEvent]:
    """``events`` with :attr:`DetectorEvent.source_labels` filled from the configured ``sources``
    (the event's source and every evidence item's), and ``new_outlet`` events saying which kind of
    outlet the new one is. A source no longer configured gets no label (shown as "not set")."""
    by_id = {s.id: s for s in sources}
    out = []
    for e in events:
        ids = [i for i in dict.fromkeys([e.source_id, *(m.source_id for m in e.evidence)]) if i]
        labels = {i: _labels(by_id[i]) for i in ids if i in by_id}
        event = dataclasses.replace(e, source_labels={**e.source_labels, **labels})
        if e.detector == NewOutletDetector.name and e.source_id and e.evidence:
            kind = outlet_kind(labels.get(e.source_id))
            owner = labels.get(e.source_id, {}).get("owner")
            who = f"{kind}; owner {owner}" if owner else kind
            event = dataclasses.replace(
                event,
                title=f"{e.title} ({kind})",
                summary=e.summary.replace(" (seen in ", f" — {who} — (seen in ", 1),
            )
        out.append(event)
    return out


class NewLanguageOptions(NewOutletOptions):
    """New language: the first match of a narrative in a language, first seen in ``lookback``."""


class NewLanguageDetector(NewOutletDetector):
    """A narrative appears in a language where it was never matched before."""

    name = "new_language"
    Options = NewLanguageOptions
    attribute = "language"
    noun = "language"

    def _first_seen(self, store: MatchStore, nid: str, now: datetime) -> dict[str, Match]:
        return store.first_seen_by_language(nid, until=now)


class BurstOptions(MatchOptions):
    """Coordinated burst: near-identical texts in ``min_outlets`` outlets within ``within``."""

    within: Duration = timedelta(minutes=15)
    min_outlets: Annotated[int, Field(ge=2)] = 3
    lookback: Duration = timedelta(hours=24)
    similarity: Threshold = COPY_THRESHOLD
    min_tier: TierName = "suggest"


class CoordinatedBurstDetector(NarrativeDetector):
    """The same text appears in several outlets within minutes: possible coordination."""

    name = "coordinated_burst"
    Options = BurstOptions
    options: BurstOptions

    def detect_narrative(self, store: MatchStore, n: NarrativeScope) -> list[DetectorEvent]:
        """One event per cluster of near-identical matches spanning ``min_outlets`` outlets in ``within``."""
        o, now = self.options, n.now
        recent = store.matches(n.id, since=now - o.lookback, until=now)
        late = store.seen_between(n.id, now - o.lookback, now, published_before=now - o.lookback)
        out = []
        for cluster in _fingerprint_clusters(self._keep([*late, *recent], now), o.similarity):
            burst = _first_burst(cluster, o.within, o.min_outlets)
            if burst is None:
                continue
            span = burst[-1].published - burst[0].published
            out.append(
                self._narrative_event(
                    n,
                    key=f"{n.id}|{burst[0].document_id}",
                    title=f"Coordinated burst: {n.label}",
                    summary=(
                        f"Near-identical text in {len(burst)} outlets within {_span(span)} "
                        f"(text similarity >= {o.similarity:.2f}); may indicate coordination"
                    ),
                    evidence=burst,
                    counts={"outlets": len(burst), "cluster": len(cluster), "span_seconds": int(span.total_seconds())},
                    score=float(len(burst)),
                )
            )
        return out


def _fingerprint_clusters(matches: Sequence[Match], threshold: float) -> list[list[Match]]:
    groups = collapse_copies([m for m in matches if m.fingerprint], threshold, forwards=False)
    return [list(g.members) for g in groups if g.copies]


def _first_burst(cluster: Sequence[Match], within: timedelta, k: int) -> list[Match] | None:
    items = sorted(cluster, key=lambda m: (m.published, m.document_id))
    for i, first in enumerate(items):
        per_outlet: dict[str, Match] = {}
        for m in items[i:]:
            if m.published - first.published > within:
                break
            per_outlet.setdefault(m.outlet, m)
        if len(per_outlet) >= k:
            return sorted(per_outlet.values(), key=lambda m: (m.published, m.document_id))
    return None


class SilenceOptions(StrictModel):
    """Source silence: no new items for ``silent_for`` or ``max_failures`` consecutive failed runs."""

    silent_for: Duration = timedelta(hours=24)
    max_failures: Annotated[int, Field(ge=1)] = 3
    sources: tuple[str, ...] | None = None
    """Only these source ids (default: every source in the health report)."""


class SourceSilenceDetector(DetectorBase):
    """A source went quiet or keeps failing: coverage has a gap analysts should know about."""

    name = "source_silence"
    Options = SilenceOptions
    options: SilenceOptions

    def detect(
        self, store: MatchStore, health: Sequence[SourceHealth], now: datetime, narratives: Mapping[str, str]
    ) -> list[DetectorEvent]:
        """One event per failing or silent source (failing wins when both hold)."""
        o = self.options
        out = []
        for h in sorted(health, key=lambda h: h.source_id):
            if o.sources is not None and h.source_id not in o.sources:
                continue
            if h.consecutive_failures >= o.max_failures:
                since = h.last_success or h.last_error_at or now
                summary = (
                    f"{h.consecutive_failures} consecutive failed runs; last error: {h.last_error or '-'}; "
                    f"last success: {since.isoformat() if h.last_success else 'never'}"
                )
                counts = {"consecutive_failures": h.consecutive_failures, "items_24h": h.items_24h}
                out.append(self._source_event(h, "failing", summary, counts, float(h.consecutive_failures), since, now))
                continue
            last = h.last_item or h.last_success
            if last is not None and now - last >= o.silent_for:
                summary = f"No new items for {_span(now - last)} (last item {last.isoformat()})"
                counts = {"silent_seconds": int((now - last).total_seconds()), "items_24h": h.items_24h}
                out.append(self._source_event(h, "silent", summary, counts, (now - last) / o.silent_for, last, now))
        return out

    def _source_event(
        self,
        h: SourceHealth,
        state: str,
        summary: str,
        counts: dict[str, int],
        score: float,
        since: datetime,
        now: datetime,
    ) -> DetectorEvent:
        """A ``failing`` or ``silent`` event about one source, over ``[since, now]``."""
        return self._event(
            key=f"{h.source_id}|{state}",
            narrative_id=None,
            narratives={},
            title=f"Source {state}: {h.source_id}",
            summary=summary,
            evidence=[],
            counts=counts,
            score=score,
            now=now,
            source_id=h.source_id,
            window=(since, now),
        )


def _span(d: timedelta) -> str:
    seconds = int(d.total_seconds())
    if seconds % 86400 == 0 and seconds >= 86400:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0 and seconds >= 3600:
        return f"{seconds // 3600}h"
    if seconds >= 3600:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m"
    return f"{seconds}s"


BUILTIN_DETECTORS: tuple[type[DetectorBase], ...] = (
    RecurrenceDetector,
    SpikeDetector,
    NewOutletDetector,
    NewLanguageDetector,
    CoordinatedBurstDetector,
    SourceSilenceDetector,
)


def register_builtins(detectors: Registry[DetectorKind] = DETECTORS) -> None:
    """Register the built-in detectors by name (idempotent); a plugin adds a :class:`DetectorKind` too."""
    from monitors.deletions import DeletedAfterSpreadDetector  # it builds on this module
    from monitors.query_detector import QueryDetector  # saved searches; builds on this module too

    builtins: tuple[type[DetectorBase], ...] = (*BUILTIN_DETECTORS, DeletedAfterSpreadDetector, QueryDetector)
    for cls in builtins:
        detectors.add(
            cls.name,
            DetectorKind(name=cls.name, options=cls.Options, build=cls, description=(cls.__doc__ or "").strip()),
        )


def build_detector(name: str, options: Mapping[str, Any] | None = None) -> DetectorBase:
    """Look up a registered detector by name and configure it (validation errors are pydantic's)."""
    kind = DETECTORS.get(name)
    detector = kind.build(kind.options.model_validate(dict(options or {})))
    if not isinstance(detector, DetectorBase):
        raise TypeError(f"detector {name!r} is not a DetectorBase")
    return detector
