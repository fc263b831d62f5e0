"""Detectors over stored matches and source health, registered by name in ``core.events.DETECTORS``.

Each detector has a pydantic options model (unknown keys are errors) and
``detect(store, health, now, narratives) -> list[DetectorEvent]``, deterministic for a given
``now``. Copies (near-duplicate fingerprints or forwards, see :func:`monitors.store.collapse_copies`)
count once.

Late items. A match has a publication time and a first-seen time (``Match.seen``: when the
service first matched it). Only matches seen by ``now`` count. *Whether* something happened is
judged on publication times, *whether it is news* on first-seen times, so an item crawled late
still alerts and a backlog never invents a pattern:

* ``new_outlet`` / ``new_language``: the first match the service saw in an outlet (language),
  reported when it was first seen in ``[now - lookback, now]``; outlets seen before rank first.
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

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, Field, model_validator

from core.events import DETECTORS, DetectorEvent, DetectorKind, SourceHealth
from core.matches import Match
from core.settings import MAX_DURATION, Duration, StrictModel
from monitors.store import COPY_THRESHOLD, CopyGroup, MatchStore, collapse_copies

__all__ = [
    "BurstOptions",
    "CoordinatedBurstDetector",
    "DetectorBase",
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


class RecurrenceDetector(DetectorBase):
    """A narrative keeps coming back: copies (near-duplicates, forwards) count once."""

    name = "recurrence"
    Options = RecurrenceOptions
    options: RecurrenceOptions

    def detect(
        self, store: MatchStore, health: Sequence[SourceHealth], now: datetime, narratives: Mapping[str, str]
    ) -> list[DetectorEvent]:
        """One event per narrative whose collapsed matches in the window reach both thresholds."""
        o = self.options
        out = []
        for nid in self._narratives(store, narratives):
            matches = self._keep(store.matches(nid, since=now - o.window, until=now), now)
            groups = collapse_copies(matches, o.copy_threshold)
            outlets = {g.original.outlet for g in groups}
            if len(groups) < o.min_matches or len(outlets) < o.min_outlets:
                continue
            originals = [g.original for g in groups]
            out.append(
                self._event(
                    key=nid,
                    narrative_id=nid,
                    narratives=narratives,
                    title=f"Recurring narrative: {_label(nid, narratives)}",
                    summary=(
                        f"{len(groups)} distinct items from {len(outlets)} outlets in the last {_span(o.window)} "
                        f"({len(matches)} matches before counting copies once)"
                    ),
                    evidence=originals,
                    counts={"matches": len(matches), "distinct": len(groups), "outlets": len(outlets)},
                    score=max(m.score for m in originals),
                    now=now,
                )
            )
        return out


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


class SpikeDetector(DetectorBase):
    """A narrative suddenly appears much more often than in the preceding windows."""

    name = "spike"
    Options = SpikeOptions
    options: SpikeOptions

    def detect(
        self, store: MatchStore, health: Sequence[SourceHealth], now: datetime, narratives: Mapping[str, str]
    ) -> list[DetectorEvent]:
        """At most one event per narrative: the most recent evaluated window with ``count >= min_count``
        and ``count / baseline >= min_ratio`` (windows: see the module docstring)."""
        o = self.options
        out = []
        for nid in self._narratives(store, narratives):
            # Earlier windows holding an item first seen in the last window (a late item).
            late = self._keep(store.seen_between(nid, now - o.window, now, published_before=now - o.window), now)
            ks = {0} | {k for m in late if 1 <= (k := int((now - m.published) / o.window)) <= o.baseline_windows}
            start = now - o.window * (max(ks) + o.baseline_windows + 1)
            matches = self._keep(store.matches(nid, since=start, until=now), now)
            groups = collapse_copies(matches, o.copy_threshold)
            for k in sorted(ks):
                event = self._window(nid, narratives, groups, now, k)
                if event is not None:
                    out.append(event)
                    break
        return out

    def _window(
        self, nid: str, narratives: Mapping[str, str], groups: Sequence[CopyGroup], now: datetime, k: int
    ) -> DetectorEvent | None:
        """The event of publication window ``[end - window, end)``, ``end = now - k * window``, if it spiked."""
        o = self.options
        end = now - o.window * k
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
        return self._event(
            key=nid,
            narrative_id=nid,
            narratives=narratives,
            title=f"Spike: {_label(nid, narratives)}",
            summary=(
                f"{len(current)} distinct items {where}, {ratio:.1f}x the mean of "
                f"the previous {o.baseline_windows} windows ({mean:.2f} per window)"
            ),
            evidence=current,
            counts={"current": len(current), "baseline": baseline, "baseline_windows": o.baseline_windows},
            score=round(ratio, 3),
            now=now,
            window=(lo, end),
        )


class NewOutletOptions(MatchOptions):
    """New outlet: the first match of a narrative in an outlet, first seen in ``lookback``."""

    lookback: Duration = timedelta(hours=24)
    min_prior_outlets: Annotated[int, Field(ge=0)] = 1
    """Only report once the narrative was already seen in this many other outlets (0: always)."""


class NewOutletDetector(DetectorBase):
    """A narrative reaches an outlet where it was never matched before."""

    name = "new_outlet"
    Options: ClassVar[type[StrictModel]] = NewOutletOptions
    attribute: ClassVar[str] = "outlet"
    noun: ClassVar[str] = "outlet"

    def _first_seen(self, store: MatchStore, nid: str, now: datetime) -> dict[str, Match]:
        return store.first_seen_by_outlet(nid, until=now)

    def detect(
        self, store: MatchStore, health: Sequence[SourceHealth], now: datetime, narratives: Mapping[str, str]
    ) -> list[DetectorEvent]:
        """One event per (narrative, outlet) whose first match was first seen in ``[now - lookback, now]``."""
        o: Any = self.options
        out = []
        for nid in self._narratives(store, narratives):
            first = self._first_seen(store, nid, now)
            ordered = sorted(first.items(), key=lambda kv: (first_seen(kv[1]), kv[1].published, kv[1].document_id))
            for rank, (value, m) in enumerate(ordered):
                if first_seen(m) < now - o.lookback or rank < o.min_prior_outlets:
                    continue
                if _TIER_RANK.get(m.tier, 0) < _TIER_RANK[o.min_tier]:
                    continue
                out.append(
                    self._event(
                        key=f"{nid}|{value}",
                        narrative_id=nid,
                        narratives=narratives,
                        title=f"New {self.noun} for {_label(nid, narratives)}: {value}",
                        summary=(
                            f"First match of this narrative in {self.noun} {value} "
                            f"(seen in {rank} other {self.noun}s before){_late_note(m)}"
                        ),
                        evidence=[m],
                        counts={f"prior_{self.noun}s": rank},
                        score=m.score,
                        now=now,
                        source_id=m.source_id,
                    )
                )
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


class CoordinatedBurstDetector(DetectorBase):
    """The same text appears in several outlets within minutes: possible coordination."""

    name = "coordinated_burst"
    Options = BurstOptions
    options: BurstOptions

    def detect(
        self, store: MatchStore, health: Sequence[SourceHealth], now: datetime, narratives: Mapping[str, str]
    ) -> list[DetectorEvent]:
        """One event per cluster of near-identical matches spanning ``min_outlets`` outlets in ``within``."""
        o = self.options
        out = []
        for nid in self._narratives(store, narratives):
            recent = store.matches(nid, since=now - o.lookback, until=now)
            late = store.seen_between(nid, now - o.lookback, now, published_before=now - o.lookback)
            matches = self._keep([*late, *recent], now)
            for cluster in _fingerprint_clusters(matches, o.similarity):
                burst = _first_burst(cluster, o.within, o.min_outlets)
                if burst is None:
                    continue
                span = burst[-1].published - burst[0].published
                out.append(
                    self._event(
                        key=f"{nid}|{burst[0].document_id}",
                        narrative_id=nid,
                        narratives=narratives,
                        title=f"Coordinated burst: {_label(nid, narratives)}",
                        summary=(
                            f"Near-identical text in {len(burst)} outlets within {_span(span)} "
                            f"(text similarity >= {o.similarity:.2f}); may indicate coordination"
                        ),
                        evidence=burst,
                        counts={
                            "outlets": len(burst),
                            "cluster": len(cluster),
                            "span_seconds": int(span.total_seconds()),
                        },
                        score=float(len(burst)),
                        now=now,
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
                out.append(
                    self._event(
                        key=f"{h.source_id}|failing",
                        narrative_id=None,
                        narratives=narratives,
                        title=f"Source failing: {h.source_id}",
                        summary=(
                            f"{h.consecutive_failures} consecutive failed runs; last error: {h.last_error or '-'}; "
                            f"last success: {since.isoformat() if h.last_success else 'never'}"
                        ),
                        evidence=[],
                        counts={"consecutive_failures": h.consecutive_failures, "items_24h": h.items_24h},
                        score=float(h.consecutive_failures),
                        now=now,
                        source_id=h.source_id,
                        window=(since, now),
                    )
                )
                continue
            last = h.last_item or h.last_success
            if last is not None and now - last >= o.silent_for:
                out.append(
                    self._event(
                        key=f"{h.source_id}|silent",
                        narrative_id=None,
                        narratives=narratives,
                        title=f"Source silent: {h.source_id}",
                        summary=f"No new items for {_span(now - last)} (last item {last.isoformat()})",
                        evidence=[],
                        counts={"silent_seconds": int((now - last).total_seconds()), "items_24h": h.items_24h},
                        score=(now - last) / o.silent_for,
                        now=now,
                        source_id=h.source_id,
                        window=(last, now),
                    )
                )
        return out


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


_BUILTINS: tuple[type[DetectorBase], ...] = (
    RecurrenceDetector,
    SpikeDetector,
    NewOutletDetector,
    NewLanguageDetector,
    CoordinatedBurstDetector,
    SourceSilenceDetector,
)
for _cls in _BUILTINS:
    if _cls.name not in DETECTORS:
        DETECTORS.add(
            _cls.name,
            DetectorKind(name=_cls.name, options=_cls.Options, build=_cls, description=(_cls.__doc__ or "").strip()),
        )


def build_detector(name: str, options: Mapping[str, Any] | None = None) -> DetectorBase:
    """Look up a registered detector by name and configure it (validation errors are pydantic's)."""
    kind = DETECTORS.get(name)
    detector = kind.build(kind.options.model_validate(dict(options or {})))
    if not isinstance(detector, DetectorBase):
        raise TypeError(f"detector {name!r} is not a DetectorBase")
    return detector
