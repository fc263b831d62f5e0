"""Support functions for the CLI (``narrawatch alerts list|show|ack``, ``narrawatch rules test``).

They take the loaded :class:`core.settings.Config` (with its ``alerts`` section) and return plain
JSON-ready data; the CLI formats it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from alerts.config import AlertsConfig, build_channels
from alerts.outbox import AlertRow, Dispatcher, Outbox
from alerts.render import render_text
from alerts.rules import AlertEngine, run_rule
from core.errors import UnknownNameError
from core.events import DetectorEvent, SourceHealth, alert_to_dict
from core.settings import Config

__all__ = ["alerts_ack", "alerts_config", "alerts_list", "alerts_show", "open_outbox", "rules_test"]


def alerts_config(config: Config) -> AlertsConfig:
    """The ``alerts`` section of a loaded config (empty if the section loader was not registered)."""
    section = config.extra.get("alerts")
    return section if isinstance(section, AlertsConfig) else AlertsConfig(root=config.root)


def open_outbox(config: Config) -> Outbox:
    """Open the configured outbox file."""
    cfg = alerts_config(config)
    return Outbox(cfg.outbox_path(config.data_dir), cfg.outbox)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _row_dict(r: AlertRow) -> dict[str, Any]:
    return {
        "id": r.id,
        "rule": r.rule,
        "severity": r.severity,
        "title": r.title,
        "created": r.created.isoformat(),
        "acked_at": _iso(r.acked_at),
        "acked_by": r.acked_by,
        "ack_note": r.ack_note,
        "deliveries": r.deliveries,
    }


def alerts_list(
    config: Config,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    rule: str | None = None,
    severity: str | None = None,
    unacked: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Alerts created in ``[since, until)``, newest first, one page (``limit`` rows after skipping
    ``offset``): id, rule, severity, title, created, acknowledgement (at, by, note), per-channel
    delivery status."""
    with open_outbox(config) as outbox:
        rows = outbox.list_alerts(
            since=since, until=until, rule=rule, severity=severity, unacked=unacked, limit=limit, offset=offset
        )
    return [_row_dict(r) for r in rows]


def _unknown(outbox: Outbox, alert_id: str) -> UnknownNameError:
    return UnknownNameError("alert", alert_id, [r.id for r in outbox.list_alerts(limit=20)])


def alerts_show(config: Config, alert_id: str) -> dict[str, Any]:
    """One alert in full (events, evidence, rendered text, acknowledgement with its note) with its
    delivery rows; UnknownNameError if absent."""
    with open_outbox(config) as outbox:
        alert = outbox.alert(alert_id)
        if alert is None:
            raise _unknown(outbox, alert_id)
        deliveries = outbox.deliveries(alert_id)
        row = outbox.alert_row(alert_id)
    out = alert_to_dict(alert)
    out["text"] = render_text(alert)
    out["acked_at"] = _iso(row.acked_at) if row else None
    out["acked_by"] = row.acked_by if row else ""
    out["ack_note"] = row.ack_note if row else ""
    out["deliveries"] = [
        {
            "channel": d.channel_id,
            "status": d.status,
            "attempts": d.attempts,
            "idempotency_key": d.idempotency_key,
            "next_attempt_at": d.next_attempt_at.isoformat(),
            "sent_at": _iso(d.sent_at),
            "last_error": d.last_error,
        }
        for d in deliveries
    ]
    return out


def alerts_ack(config: Config, alert_id: str, by: str = "", now: datetime | None = None, note: str = "") -> bool:
    """Acknowledge an alert (who, when and the note are stored); False if it was already
    acknowledged (the first acknowledgement and its note stand); UnknownNameError if absent."""
    with open_outbox(config) as outbox:
        if outbox.alert(alert_id) is None:
            raise _unknown(outbox, alert_id)
        return outbox.ack(alert_id, now or datetime.now(UTC), by, note)


def rules_test(
    config: Config,
    rule_id: str,
    since: datetime,
    send: bool,
    store: Any,
    health: Sequence[SourceHealth],
    *,
    now: datetime | None = None,
    narratives: Mapping[str, str] | None = None,
    step: timedelta = timedelta(hours=1),
) -> dict[str, Any]:
    """Dry-run a rule over stored matches: evaluate it every ``step`` from ``since`` to ``now``.

    Suppression and digests are simulated in a scratch (in-memory) outbox, so the answer shows
    what the rule would have sent. With ``send=True`` those alerts are enqueued in the real
    outbox and delivered now (already-stored alerts are not sent again).
    """
    cfg = alerts_config(config)
    rule = cfg.rule(rule_id)
    until = now or datetime.now(UTC)
    solo = dataclasses.replace(cfg, rules=(rule.model_copy(update={"enabled": True}),))
    events: list[DetectorEvent] = []
    alerts = []
    evaluations = 0
    with Outbox(":memory:", cfg.outbox) as scratch:
        engine = AlertEngine(solo, scratch)
        t = since
        while True:
            t = min(t, until)
            found = run_rule(rule, store, health, t, narratives or {})
            events.extend(found)
            alerts.extend(engine.process(found, t))
            evaluations += 1
            if t >= until:
                break
            t += step
    unique = {e.identity: e for e in events}
    result: dict[str, Any] = {
        "rule": rule.id,
        "detector": rule.detector,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "evaluations": evaluations,
        "events": [
            {
                "identity": e.identity,
                "key": e.key,
                "title": e.title,
                "summary": e.summary,
                "window_start": e.window_start.isoformat(),
                "window_end": e.window_end.isoformat(),
            }
            for e in unique.values()
        ],
        "alerts": [
            {"id": a.id, "title": a.title, "created": a.created.isoformat(), "events": len(a.events)} for a in alerts
        ],
        "sent": None,
    }
    if send:
        with open_outbox(config) as outbox:
            for a in alerts:
                outbox.enqueue(a, rule.channels)
            result["sent"] = Dispatcher(outbox, build_channels(cfg)).deliver_due(until)
    return result
