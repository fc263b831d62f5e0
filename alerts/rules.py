"""Alert rules: run each rule's detector, scope its events, suppress repeats, digest, enqueue.

Pipeline use (composition root)::

    events = run_rules(alerts_config, store, health, now, narratives)   # detectors by name
    alerts = AlertEngine(alerts_config, outbox).process(events, now)    # stored before sending
    Dispatcher(outbox, build_channels(alerts_config)).deliver_due(now)

An event tagged with a rule id (``DetectorEvent.rule``, set by :func:`run_rules`) goes to that
rule only; an untagged event goes to every enabled rule with the same detector.

Scope. A rule keeps an event when the event's source or any evidence item's source is in the
rule's scope: ``sources`` (ids), ``actors`` (the sources' ``actor:`` types) and ``countries``
(their ``country:``) together (:func:`rule_scope`). Actor and country scopes need the sources'
metadata: pass ``sources=`` (the config's sources) to :func:`run_rules` and :class:`AlertEngine`.

Per-rule views. A store with a ``for_rule(rule)`` method is asked for the view one rule's
detector reads (the ``query`` detector reads "documents indexed since this rule's last pass"
from it); other stores are handed to every detector as they are.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from alerts.config import AlertsConfig, RuleSettings
from alerts.dedup import DedupState
from alerts.outbox import Outbox
from core.events import DETECTORS, Alert, DetectorEvent, SourceHealth
from core.settings import SourceBase

__all__ = ["AlertEngine", "make_alert", "rule_applies", "rule_scope", "run_rule", "run_rules"]

log = logging.getLogger(__name__)


def rule_scope(rule: RuleSettings, sources: Sequence[SourceBase] | None) -> frozenset[str] | None:
    """The source ids a rule is scoped to, or None when it takes every source.

    ``sources`` (the config's) resolves ``actors`` and ``countries``; without it a rule scoped by
    actor or country keeps only the ids it lists (none when it lists none): the scope fails closed.
    """
    if rule.sources == "all" and rule.actors == "all" and rule.countries == "all":
        return None
    if rule.actors == "all" and rule.countries == "all":
        return frozenset(rule.sources)
    ids = {s.id for s in sources or ()}
    if rule.sources != "all":
        ids &= set(rule.sources)
    meta = {s.id: s for s in sources or ()}
    if rule.actors != "all":
        ids = {i for i in ids if meta[i].actor in rule.actors}
    if rule.countries != "all":
        ids = {i for i in ids if meta[i].country in rule.countries}
    return frozenset(ids)


def run_rule(
    rule: RuleSettings,
    store: Any,
    health: Sequence[SourceHealth],
    now: datetime,
    narratives: Mapping[str, str],
    *,
    sources: Sequence[SourceBase] | None = None,
) -> list[DetectorEvent]:
    """Run the rule's detector with its options, restricted to its narratives and source scope;
    events tagged with the rule id."""
    kind = DETECTORS.get(rule.detector)
    detector = kind.build(kind.options.model_validate(rule.options))
    scope = dict(narratives)
    if rule.narratives != "all":
        scope = {nid: narratives.get(nid, "") for nid in rule.narratives}
    bind = getattr(store, "for_rule", None)
    view = bind(rule, rule_scope(rule, sources)) if callable(bind) else store
    events = detector.detect(view, health, now, scope)
    return [dataclasses.replace(e, rule=rule.id) for e in events if rule_applies(rule, e, sources)]


def run_rules(
    config: AlertsConfig,
    store: Any,
    health: Sequence[SourceHealth],
    now: datetime,
    narratives: Mapping[str, str] | None = None,
    *,
    sources: Sequence[SourceBase] | None = None,
) -> list[DetectorEvent]:
    """Run every enabled rule's detector; ``narratives`` maps id -> title (empty: every stored narrative).

    A store with a ``read_cache()`` context manager (``monitors.store.MatchStore``) serves the
    whole pass from it, so rules with overlapping windows share one read per narrative.
    """
    out: list[DetectorEvent] = []
    read_cache = getattr(store, "read_cache", None)
    with read_cache() if callable(read_cache) else contextlib.nullcontext():
        for rule in config.rules:
            if rule.enabled:
                out.extend(run_rule(rule, store, health, now, narratives or {}, sources=sources))
    return out


def rule_applies(rule: RuleSettings, event: DetectorEvent, sources: Sequence[SourceBase] | None = None) -> bool:
    """Does the event fall in the rule's narrative and source scope (see :func:`rule_scope`)?"""
    if rule.narratives != "all" and event.narrative_id is not None and event.narrative_id not in rule.narratives:
        return False
    scope = rule_scope(rule, sources)
    if scope is not None:
        seen = {event.source_id} | {m.source_id for m in event.evidence}
        if not seen & scope:
            return False
    return True


def make_alert(rule: RuleSettings, events: Sequence[DetectorEvent], now: datetime, *, digest: bool = False) -> Alert:
    """An alert whose id is a hash of the rule and the events' identities (stable across replays)."""
    basis = "|".join([rule.id, *sorted(e.identity for e in events)])
    alert_id = hashlib.sha256(basis.encode("utf-8")).hexdigest()[:24]
    if digest:
        title = f"Digest: {len(events)} event(s) for rule {rule.id}"
        summary = "; ".join(e.title for e in events)
    else:
        title, summary = events[0].title, events[0].summary
    return Alert(
        id=alert_id,
        rule=rule.id,
        severity=rule.severity,
        events=tuple(events),
        created=now,
        dedup_key="|".join([rule.id, *sorted({e.key for e in events})]),
        title=title,
        summary=summary,
        digest=digest,
    )


class AlertEngine:
    """Applies rules to detector events: scope, re-alert suppression, digests; enqueues alerts in the outbox."""

    def __init__(self, config: AlertsConfig, outbox: Outbox, *, sources: Sequence[SourceBase] | None = None) -> None:
        self.config = config
        self.outbox = outbox
        self.sources = sources
        self.dedup = DedupState(outbox)

    def process(self, events: Iterable[DetectorEvent], now: datetime) -> list[Alert]:
        """Turn events into alerts stored in the outbox (one transaction); also flushes due digests.

        Returns the alerts created now (digest alerts included when their period is over).
        """
        events = list(events)
        created: list[Alert] = []
        with self.outbox.transaction():
            for rule in self.config.rules:
                if not rule.enabled:
                    continue
                mine = [
                    e
                    for e in events
                    if (e.rule == rule.id or (not e.rule and e.detector == rule.detector))
                    and rule_applies(rule, e, self.sources)
                ]
                mine.sort(key=lambda e: (e.window_start, e.key, e.identity))
                for event in mine:
                    if self.dedup.seen(rule.id, event):
                        continue
                    if self.dedup.suppressed(rule.id, event.key, now, rule.realert):
                        log.debug("alerts: rule %s suppressed %s (realert %s)", rule.id, event.key, rule.realert)
                        continue
                    event = dataclasses.replace(event, rule=rule.id)
                    self.dedup.record(rule.id, event, now)
                    if rule.digest is not None:
                        self.dedup.add_to_digest(rule.id, event, now)
                        continue
                    alert = make_alert(rule, [event], now)
                    if self.outbox.enqueue(alert, rule.channels):
                        created.append(alert)
                if rule.digest is not None:
                    pending = self.dedup.digest_due(rule.id, now, rule.digest.every)
                    if pending:
                        alert = make_alert(rule, pending, now, digest=True)
                        if self.outbox.enqueue(alert, rule.channels):
                            created.append(alert)
                        self.dedup.digest_sent(rule.id, now)
        for a in created:
            log.info("alerts: %s [%s] %s", a.rule, a.severity, a.title)
        return created
