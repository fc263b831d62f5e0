"""Alerts: the inbox (list, one alert, acknowledge), outbox counts, and the rule dry-run.

Everything reads the App's outbox (``app.outbox``), so the CLI, the API and the web inbox
answer from the same rows with the same JSON (:meth:`AlertSummary.as_dict`,
:meth:`AlertDetail.as_dict`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from alerts.config import build_channels
from alerts.outbox import AlertRow, Delivery, Dispatcher, Outbox
from alerts.render import render_text
from alerts.rules import AlertEngine, run_rule
from core.errors import UnknownNameError
from core.events import Alert, DetectorEvent, SourceHealth, alert_to_dict
from core.timefmt import iso_utc
from narrawatch.app import App
from narrawatch.read.params import AlertParams
from narrawatch.read.sources import detector_health

__all__ = [
    "AckResult",
    "AlertDetail",
    "AlertSummary",
    "RuleTest",
    "ack_alert",
    "alert_counts",
    "list_alerts",
    "rules_test",
    "show_alert",
]


@dataclass(frozen=True)
class AlertSummary:
    """An alert as listed: summary, acknowledgement and per-channel delivery status."""

    row: AlertRow

    def as_dict(self) -> dict[str, Any]:
        """id, rule, severity, title, created, acked_at/by, ack_note, deliveries {channel: status}."""
        r = self.row
        return {
            "id": r.id,
            "rule": r.rule,
            "severity": r.severity,
            "title": r.title,
            "created": iso_utc(r.created),
            "acked_at": iso_utc(r.acked_at),
            "acked_by": r.acked_by,
            "ack_note": r.ack_note,
            "deliveries": dict(r.deliveries),
        }


@dataclass(frozen=True)
class AlertDetail:
    """One alert in full: events, evidence, rendered text, acknowledgement, delivery rows."""

    alert: Alert
    row: AlertRow | None
    deliveries: tuple[Delivery, ...]

    def as_dict(self) -> dict[str, Any]:
        """The alert (:func:`core.events.alert_to_dict`) plus ``text``, acknowledgement and ``deliveries``."""
        row = self.row
        out = alert_to_dict(self.alert)
        out["text"] = render_text(self.alert)
        out["acked_at"] = iso_utc(row.acked_at) if row else None
        out["acked_by"] = row.acked_by if row else ""
        out["ack_note"] = row.ack_note if row else ""
        out["deliveries"] = [
            {
                "channel": d.channel_id,
                "status": d.status,
                "attempts": d.attempts,
                "idempotency_key": d.idempotency_key,
                "next_attempt_at": iso_utc(d.next_attempt_at),
                "sent_at": iso_utc(d.sent_at),
                "last_error": d.last_error,
            }
            for d in self.deliveries
        ]
        return out


@dataclass(frozen=True)
class AckResult:
    """The acknowledgement as stored; ``changed`` is False when the alert already was acknowledged
    (the first acknowledgement and its note stand)."""

    id: str
    changed: bool
    acked_at: datetime | None
    acked_by: str
    ack_note: str

    def as_dict(self) -> dict[str, Any]:
        """id, changed, acked_at, acked_by, ack_note."""
        return {
            "id": self.id,
            "changed": self.changed,
            "acked_at": iso_utc(self.acked_at),
            "acked_by": self.acked_by,
            "ack_note": self.ack_note,
        }


def list_alerts(app: App, p: AlertParams | None = None) -> list[AlertSummary]:
    """Alerts created in ``[p.since, p.until)``, newest first, one page (``p.limit`` rows after
    skipping ``p.offset``; every filter is applied in SQL)."""
    p = p or AlertParams.model_validate({})
    rows = app.outbox.list_alerts(
        since=p.since,
        until=p.until,
        rule=p.rule,
        severity=p.severity,
        unacked=p.unacked,
        limit=p.limit,
        offset=p.offset,
    )
    return [AlertSummary(r) for r in rows]


def _unknown(outbox: Outbox, alert_id: str) -> UnknownNameError:
    return UnknownNameError("alert", alert_id, [r.id for r in outbox.list_alerts(limit=20)])


def show_alert(app: App, alert_id: str) -> AlertDetail:
    """One alert in full; :class:`~core.errors.UnknownNameError` if absent."""
    outbox = app.outbox
    alert = outbox.alert(alert_id)
    if alert is None:
        raise _unknown(outbox, alert_id)
    return AlertDetail(alert, outbox.alert_row(alert_id), tuple(outbox.deliveries(alert_id)))


def ack_alert(app: App, alert_id: str, *, by: str = "", note: str = "", now: datetime | None = None) -> AckResult:
    """Acknowledge an alert (who, when and the note are stored); UnknownNameError if absent."""
    outbox = app.outbox
    if outbox.alert(alert_id) is None:
        raise _unknown(outbox, alert_id)
    changed = outbox.ack(alert_id, now or datetime.now(UTC), by, note)
    row = outbox.alert_row(alert_id)
    return AckResult(
        id=alert_id,
        changed=changed,
        acked_at=row.acked_at if row else None,
        acked_by=row.acked_by if row else "",
        ack_note=row.ack_note if row else "",
    )


def alert_counts(app: App) -> dict[str, int]:
    """Delivery rows by status and the number of alerts (``/metrics``)."""
    return app.outbox.counts()


@dataclass(frozen=True)
class RuleTest:
    """What a rule would have raised over a past window (:func:`rules_test`)."""

    rule: str
    detector: str
    since: datetime
    until: datetime
    evaluations: int
    events: tuple[DetectorEvent, ...]
    alerts: tuple[Alert, ...]
    sent: Mapping[str, int] | None

    def as_dict(self) -> dict[str, Any]:
        """rule, detector, since, until, evaluations, events, alerts, sent (None for a dry run)."""
        return {
            "rule": self.rule,
            "detector": self.detector,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "evaluations": self.evaluations,
            "events": [
                {
                    "identity": e.identity,
                    "key": e.key,
                    "title": e.title,
                    "summary": e.summary,
                    "window_start": e.window_start.isoformat(),
                    "window_end": e.window_end.isoformat(),
                }
                for e in self.events
            ],
            "alerts": [
                {"id": a.id, "title": a.title, "created": a.created.isoformat(), "events": len(a.events)}
                for a in self.alerts
            ],
            "sent": None if self.sent is None else dict(self.sent),
        }


def rules_test(
    app: App,
    rule_id: str,
    since: datetime,
    *,
    send: bool = False,
    now: datetime | None = None,
    step: timedelta = timedelta(hours=1),
    health: Sequence[SourceHealth] | None = None,
) -> RuleTest:
    """Dry-run a rule over stored matches: evaluate it every ``step`` from ``since`` to ``now``.

    Suppression and digests are simulated in a scratch (in-memory) outbox, so the answer shows
    what the rule would have sent. With ``send=True`` those alerts are enqueued in the real
    outbox and delivered now (already-stored alerts are not sent again). ``health`` (the source
    silence detector's input) defaults to the crawl state's (:func:`narrawatch.read.sources.detector_health`).
    """
    cfg = app.alerts_config
    rule = cfg.rule(rule_id)
    until = now or datetime.now(UTC)
    if health is None:
        health = detector_health(app, until)
    titles = {n.id: n.title for n in app.catalogue.enabled}
    solo = dataclasses.replace(cfg, rules=(rule.model_copy(update={"enabled": True}),))
    events: list[DetectorEvent] = []
    alerts: list[Alert] = []
    evaluations = 0
    with Outbox(":memory:", cfg.outbox) as scratch:  # the dry run's suppression state, thrown away
        engine = AlertEngine(solo, scratch)
        t = since
        while True:
            t = min(t, until)
            found = run_rule(rule, app.matches, health, t, titles)
            events.extend(found)
            alerts.extend(engine.process(found, t))
            evaluations += 1
            if t >= until:
                break
            t += step
    sent = None
    if send:
        for a in alerts:
            app.outbox.enqueue(a, rule.channels)
        sent = Dispatcher(app.outbox, build_channels(cfg)).deliver_due(until)
    unique = {e.identity: e for e in events}
    return RuleTest(rule.id, rule.detector, since, until, evaluations, tuple(unique.values()), tuple(alerts), sent)
