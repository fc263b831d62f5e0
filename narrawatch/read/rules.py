"""Alert rules for the CLI, the API and the rules page: list, one rule, create, edit, delete, test.

YAML rules (``alerts/*.yaml``, the operator's) are listed read-only; rules made here are kept in
``<data_dir>/rules.sqlite`` (:mod:`narrawatch.rules_store`) and run by the service from its next
pass, without a restart. :func:`dry_run_rule` runs a rule (stored, YAML, or not yet saved) over
stored data and returns what it would have raised, raising nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from alerts.config import RuleSettings
from alerts.outbox import Outbox
from alerts.rules import AlertEngine, run_rule
from core.errors import ConflictError, InvalidRequestError, NotFoundError, UnknownNameError
from core.events import Alert, DetectorEvent, SourceHealth
from core.timefmt import iso_utc
from monitors.deletions import StoreWithDeletions
from narrawatch.app import App
from narrawatch.read.sources import detector_health
from narrawatch.rules_store import RuleViews, StoredRule, all_rules, rule_to_dict, validate_rule

__all__ = [
    "MAX_TEST_EVALUATIONS",
    "RuleRecord",
    "RuleTestResult",
    "create_rule",
    "delete_rule",
    "dry_run_rule",
    "get_rule",
    "list_rules",
    "update_rule",
]

MAX_TEST_EVALUATIONS = 10_000
"""Most evaluations one dry run of a match-based rule makes (``since`` / ``step``)."""


@dataclass(frozen=True)
class RuleRecord:
    """A rule as every surface shows it."""

    stored: StoredRule

    def as_dict(self) -> dict[str, Any]:
        """The rule's fields plus ``origin`` (yaml|store), ``editable`` and who/when for stored rules."""
        s = self.stored
        return {
            **rule_to_dict(s.rule),
            "origin": s.origin,
            "editable": s.editable,
            "created_at": iso_utc(s.created_at),
            "updated_at": iso_utc(s.updated_at),
            "created_by": s.created_by,
            "updated_by": s.updated_by,
        }


def list_rules(app: App) -> list[RuleRecord]:
    """YAML rules first (read-only), then stored ones."""
    return [RuleRecord(s) for s in all_rules(app)]


def get_rule(app: App, rule_id: str) -> RuleRecord:
    """One rule; :class:`UnknownNameError` listing the ids."""
    rules = all_rules(app)
    for s in rules:
        if s.rule.id == rule_id:
            return RuleRecord(s)
    raise UnknownNameError("alert rule", rule_id, [s.rule.id for s in rules])


def create_rule(app: App, data: Mapping[str, Any], *, by: str) -> RuleRecord:
    """Validate and store a new rule (409 when the id is taken by a YAML or stored rule)."""
    rule = validate_rule(data, app.alerts_config)
    if any(r.id == rule.id for r in app.alerts_config.rules):
        raise ConflictError(f"rule {rule.id!r} is defined in the YAML config (read-only); choose another id")
    return RuleRecord(app.rules.create(rule, by=by))


def update_rule(app: App, rule_id: str, data: Mapping[str, Any], *, by: str) -> RuleRecord:
    """Replace a stored rule's fields (the id stays ``rule_id``); YAML rules are read-only (409)."""
    if any(r.id == rule_id for r in app.alerts_config.rules):
        raise ConflictError(f"rule {rule_id!r} is defined in the YAML config; edit the YAML file instead")
    if app.rules.get(rule_id) is None:
        raise NotFoundError(f"no stored rule {rule_id!r}")
    if "id" in data and data["id"] != rule_id:
        raise InvalidRequestError(f"id: a rule keeps its id ({rule_id!r}); delete it and create another")
    rule = validate_rule({**data, "id": rule_id}, app.alerts_config)
    return RuleRecord(app.rules.update(rule, by=by))


def delete_rule(app: App, rule_id: str, *, by: str) -> bool:
    """Delete a stored rule; YAML rules are read-only (409), an unknown id is NotFoundError."""
    if any(r.id == rule_id for r in app.alerts_config.rules):
        raise ConflictError(f"rule {rule_id!r} is defined in the YAML config; remove it there")
    if not app.rules.delete(rule_id, by=by):
        raise NotFoundError(f"no stored rule {rule_id!r}")
    return True


def excerpt(text: str, words: Sequence[str], width: int = 320) -> str:
    """Up to ``width`` characters of ``text`` around the first matched word (the start without one)."""
    low = text.lower()
    hits = [i for i in (low.find(w.lower()) for w in words if w) if i >= 0]
    if len(text) <= width:
        return text
    start = max(0, min(hits) - width // 3) if hits else 0
    end = min(len(text), start + width)
    return ("…" if start else "") + text[start:end].strip() + ("…" if end < len(text) else "")


def _event_dict(e: DetectorEvent) -> dict[str, Any]:
    return {
        "identity": e.identity,
        "key": e.key,
        "title": e.title,
        "summary": e.summary,
        "score": round(e.score, 6),
        "window_start": e.window_start.isoformat(),
        "window_end": e.window_end.isoformat(),
        "evidence": [
            {
                "document_id": m.document_id,
                "title": m.title,
                "url": m.url,
                "source_id": m.source_id,
                "outlet": m.outlet,
                "language": m.language,
                "published": iso_utc(m.published),
                "score": m.score,
                "passage": m.passage_text,
                "excerpt": excerpt(m.passage_text, m.keywords),
                "matched_words": list(m.keywords),
                "query" if e.detector == "query" else "exemplar": m.exemplar,
            }
            for m in e.evidence
        ],
    }


@dataclass(frozen=True)
class RuleTestResult:
    """What a rule would have raised over a past window (nothing was enqueued or sent)."""

    rule: str
    detector: str
    since: datetime
    until: datetime
    evaluations: int
    events: tuple[DetectorEvent, ...]
    alerts: tuple[Alert, ...]

    def as_dict(self) -> dict[str, Any]:
        """rule, detector, since, until, evaluations, events (with evidence), alerts, sent (always None)."""
        return {
            "rule": self.rule,
            "detector": self.detector,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "evaluations": self.evaluations,
            "events": [_event_dict(e) for e in self.events],
            "alerts": [
                {"id": a.id, "title": a.title, "created": a.created.isoformat(), "events": len(a.events)}
                for a in self.alerts
            ],
            "sent": None,
        }


def dry_run_rule(
    app: App,
    rule: RuleSettings | str,
    since: datetime,
    *,
    now: datetime | None = None,
    step: timedelta = timedelta(hours=1),
    health: Sequence[SourceHealth] | None = None,
) -> RuleTestResult:
    """Dry-run a rule (an id or settings not saved yet) over stored data; raises nothing.

    A ``query`` rule searches every stored document published since ``since`` once (no cursor is
    read or moved). Other detectors are evaluated every ``step`` from ``since`` to ``now`` over
    stored matches, as :func:`narrawatch.read.alerts.rules_test` does. Suppression and digests run
    in a scratch in-memory outbox.
    """
    if isinstance(rule, str):
        rule = get_rule(app, rule).stored.rule
    until = now or datetime.now(UTC)
    if since >= until:
        raise InvalidRequestError("since must be before now")
    rule = rule.model_copy(update={"enabled": True})
    cfg = dataclasses.replace(app.alerts_config, rules=(rule,))
    sources = app.config.sources
    titles = {n.id: n.title for n in app.catalogue.enabled}
    if rule.detector == "query":
        times = [until]
    else:
        n = int((until - since) / step) + 1
        if n > MAX_TEST_EVALUATIONS:
            raise InvalidRequestError(
                f"step {step} over {until - since} would evaluate the rule {n:,} times; at most "
                f"{MAX_TEST_EVALUATIONS:,}: raise the step or shorten since"
            )
        times = [min(since + i * step, until) for i in range(n)]
        if times[-1] < until:
            times.append(until)
    if health is None:
        health = detector_health(app, until) if rule.detector != "query" else []
    events: list[DetectorEvent] = []
    alerts: list[Alert] = []
    with Outbox(":memory:", cfg.outbox) as scratch:
        engine = AlertEngine(cfg, scratch, sources=sources)
        for t in times:
            store: Any = app.matches if rule.detector != "query" else None
            if rule.detector == "deleted_after_spread":
                store = StoreWithDeletions(app.matches, app.evidence)
            views = RuleViews(store, app, since=since)
            found = run_rule(rule, views, health, t, titles, sources=sources)
            events.extend(found)
            alerts.extend(engine.process(found, t))
    unique = {e.identity: e for e in events}
    return RuleTestResult(rule.id, rule.detector, since, until, len(times), tuple(unique.values()), tuple(alerts))
