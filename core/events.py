"""Records between detectors and alerts: detector events, source health, alerts.

``monitors`` produces :class:`DetectorEvent` s (from stored :class:`~core.matches.Match` es and
:class:`SourceHealth`), ``alerts`` turns them into :class:`Alert` s. The detector registry lives
here so that ``alerts`` can run a rule's detector by name without importing ``monitors``
(``monitors.detectors`` registers the built-ins when it is imported).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from core.matches import Match
from core.registry import Registry
from core.timefmt import from_iso, iso

__all__ = [
    "DETECTORS",
    "Alert",
    "Detector",
    "DetectorEvent",
    "DetectorKind",
    "Severity",
    "SourceHealth",
    "alert_from_dict",
    "alert_to_dict",
    "event_from_dict",
    "event_to_dict",
    "match_from_dict",
    "match_to_dict",
]

Severity = Literal["info", "warning", "critical"]


@dataclass(frozen=True)
class DetectorEvent:
    """Something a detector noticed: an indication for an analyst, never a verdict.

    ``key`` is the subject used for re-alert suppression (``narrative`` or ``narrative|outlet``
    or ``source``); :attr:`identity` additionally covers the evidence, so the same evidence never
    alerts twice.
    """

    detector: str
    key: str
    narrative_id: str | None
    source_id: str | None
    title: str
    summary: str
    window_start: datetime
    window_end: datetime
    counts: dict[str, int] = field(default_factory=dict, hash=False)
    outlets: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    evidence: tuple[Match, ...] = ()
    score: float = 0.0
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    rule: str = ""
    """Id of the alert rule whose detector produced the event ('' when run outside a rule)."""
    narrative_title: str = ""
    source_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict, hash=False, compare=False)
    """What kind of outlet each source of the event is, as configured when the event was raised:
    source id -> ``actor``, ``country``, ``owner``, ``outlet`` (keys only when set). Alerts show
    them, so an independent outlet reporting on a narrative does not read like a state outlet."""

    @property
    def identity(self) -> str:
        """Stable id of what was seen: detector, subject and evidence documents (or window start)."""
        docs = sorted({m.document_id for m in self.evidence})
        basis = (
            "|".join([self.detector, self.key, *docs])
            if docs
            else f"{self.detector}|{self.key}|{iso(self.window_start)}"
        )
        return hashlib.sha256(basis.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class SourceHealth:
    """Crawl state of one source, as the crawl-state store reports it.

    ``last_pass_warnings`` counts the non-fatal problems of the source's last pass (feed parse
    warnings, rejected Telegram ids, id gaps), by reason in ``warning_reasons``, with up to five
    messages in ``last_warnings``. Telegram only: ``backfill_ranges`` are id ranges (exclusive
    bounds) still to be walked by later runs, ``backfill_pending`` the ids they span (an upper
    bound: deleted posts take ids too), ``id_gaps`` the most recent ``(first, last)`` runs of ids
    found absent or given up.
    """

    source_id: str
    last_success: datetime | None
    last_error: str
    last_error_at: datetime | None
    consecutive_failures: int
    items_24h: int
    last_item: datetime | None
    outlet: str = ""
    last_pass_warnings: int = 0
    warning_reasons: Mapping[str, int] = field(default_factory=dict, hash=False)
    last_warnings: tuple[str, ...] = ()
    backfill_ranges: tuple[tuple[int, int], ...] = ()
    id_gaps: tuple[tuple[int, int], ...] = ()

    @property
    def backfill_pending(self) -> int:
        """Ids inside the open backfill ranges."""
        return sum(before - after - 1 for after, before in self.backfill_ranges)


@dataclass(frozen=True)
class Alert:
    """One message for analysts: a rule fired on one event (or a digest of several)."""

    id: str
    rule: str
    severity: Severity
    events: tuple[DetectorEvent, ...]
    created: datetime
    dedup_key: str
    """Rule + subject key(s); what re-alert suppression is keyed by."""
    title: str
    summary: str
    digest: bool = False


class Detector(Protocol):
    """A configured detector: ``detect`` is deterministic for a given ``now``."""

    @property
    def name(self) -> str:
        """The registered short name."""
        ...

    def detect(
        self, store: Any, health: Sequence[SourceHealth], now: datetime, narratives: Mapping[str, str]
    ) -> list[DetectorEvent]:
        """Events seen at ``now``; ``narratives`` maps narrative id -> title (empty: all stored)."""
        ...


@dataclass(frozen=True)
class DetectorKind:
    """A registered detector: its options model and a factory taking validated options."""

    name: str
    options: type[BaseModel]
    build: Callable[[Any], Detector]
    description: str = ""


DETECTORS: Registry[DetectorKind] = Registry("detector")


def match_to_dict(m: Match) -> dict[str, Any]:
    """A JSON-ready dict of a :class:`Match` (inverse: :func:`match_from_dict`).

    ``match_id`` (:attr:`Match.id`) is derived, carried so readers of stored alerts can address the match.
    """
    return {
        "match_id": m.id,
        "document_id": m.document_id,
        "narrative_id": m.narrative_id,
        "score": m.score,
        "tier": m.tier,
        "passage_index": m.passage_index,
        "passage_text": m.passage_text,
        "exemplar": m.exemplar,
        "exemplar_language": m.exemplar_language,
        "model": m.model,
        "source_id": m.source_id,
        "outlet": m.outlet,
        "language": m.language,
        "published": m.published.isoformat(),
        "url": m.url,
        "title": m.title,
        "similarity": m.similarity,
        "counter_similarity": m.counter_similarity,
        "keywords": list(m.keywords),
        "fingerprint": list(m.fingerprint),
        "forwarded_from": m.forwarded_from,
        "matched_at": iso(m.matched_at),
        "seen": iso(m.seen),
    }


def match_from_dict(d: Mapping[str, Any]) -> Match:
    """Rebuild a :class:`Match` from :func:`match_to_dict` output."""
    return Match(
        document_id=d["document_id"],
        narrative_id=d["narrative_id"],
        score=float(d["score"]),
        tier=d["tier"],
        passage_index=int(d["passage_index"]),
        passage_text=d["passage_text"],
        exemplar=d["exemplar"],
        exemplar_language=d["exemplar_language"],
        model=d["model"],
        source_id=d["source_id"],
        outlet=d["outlet"],
        language=d["language"],
        published=datetime.fromisoformat(d["published"]),
        url=d["url"],
        title=d["title"],
        similarity=float(d.get("similarity", 0.0)),
        counter_similarity=d.get("counter_similarity"),
        keywords=tuple(d.get("keywords", ())),
        fingerprint=tuple(int(x) for x in d.get("fingerprint", ())),
        forwarded_from=d.get("forwarded_from", ""),
        matched_at=from_iso(d.get("matched_at")),
        seen=from_iso(d.get("seen")),
    )


def event_to_dict(e: DetectorEvent, *, fingerprints: bool = True) -> dict[str, Any]:
    """A JSON-ready dict of a :class:`DetectorEvent` (inverse: :func:`event_from_dict`)."""
    evidence = [match_to_dict(m) for m in e.evidence]
    if not fingerprints:
        for item in evidence:
            item.pop("fingerprint", None)
    return {
        "detector": e.detector,
        "key": e.key,
        "identity": e.identity,
        "rule": e.rule,
        "narrative_id": e.narrative_id,
        "narrative_title": e.narrative_title,
        "source_id": e.source_id,
        "title": e.title,
        "summary": e.summary,
        "window_start": e.window_start.isoformat(),
        "window_end": e.window_end.isoformat(),
        "counts": dict(e.counts),
        "outlets": list(e.outlets),
        "languages": list(e.languages),
        "score": e.score,
        "created": e.created.isoformat(),
        "evidence": evidence,
        "source_labels": {sid: dict(label) for sid, label in e.source_labels.items()},
    }


def event_from_dict(d: Mapping[str, Any]) -> DetectorEvent:
    """Rebuild a :class:`DetectorEvent` from :func:`event_to_dict` output."""
    return DetectorEvent(
        detector=d["detector"],
        key=d["key"],
        narrative_id=d.get("narrative_id"),
        source_id=d.get("source_id"),
        title=d["title"],
        summary=d["summary"],
        window_start=datetime.fromisoformat(d["window_start"]),
        window_end=datetime.fromisoformat(d["window_end"]),
        counts={str(k): int(v) for k, v in d.get("counts", {}).items()},
        outlets=tuple(d.get("outlets", ())),
        languages=tuple(d.get("languages", ())),
        evidence=tuple(match_from_dict(m) for m in d.get("evidence", ())),
        score=float(d.get("score", 0.0)),
        created=datetime.fromisoformat(d["created"]),
        rule=d.get("rule", ""),
        narrative_title=d.get("narrative_title", ""),
        source_labels={
            str(sid): {str(k): str(v) for k, v in label.items()}
            for sid, label in (d.get("source_labels") or {}).items()
            if isinstance(label, Mapping)
        },
    )


def alert_to_dict(a: Alert) -> dict[str, Any]:
    """A JSON-ready dict of an :class:`Alert` (inverse: :func:`alert_from_dict`)."""
    return {
        "id": a.id,
        "rule": a.rule,
        "severity": a.severity,
        "created": a.created.isoformat(),
        "dedup_key": a.dedup_key,
        "title": a.title,
        "summary": a.summary,
        "digest": a.digest,
        "events": [event_to_dict(e) for e in a.events],
    }


def alert_from_dict(d: Mapping[str, Any]) -> Alert:
    """Rebuild an :class:`Alert` from :func:`alert_to_dict` output."""
    return Alert(
        id=d["id"],
        rule=d["rule"],
        severity=d["severity"],
        events=tuple(event_from_dict(e) for e in d.get("events", ())),
        created=datetime.fromisoformat(d["created"]),
        dedup_key=d["dedup_key"],
        title=d["title"],
        summary=d["summary"],
        digest=bool(d.get("digest", False)),
    )
