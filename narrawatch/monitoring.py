"""Wires narrative matching, detectors and alerts to the ingest pipeline.

* After each acknowledged batch, new and updated documents are matched against the narrative
  catalogue using the passage vectors the pipeline just computed (no second embedding, no
  second read of the index); matches go to the match store, stamped with the service clock as
  the time the service first saw them (``Match.seen``; the store keeps the first stamp, so a
  re-fetch or update of the document never moves it). Detectors count late items by that time.
* :meth:`MonitoringService.after_pass` (after a ``crawl --once``, and every 30 s under ``run``)
  runs the alert rules' detectors, turns events into alerts in the persistent outbox and
  delivers what is due.

One detector pass and one dispatcher at a time across the deployment: a pass runs only while
its process holds the state backend's lock :data:`~narrawatch.state.DETECTOR_LOCK` (delivery:
:data:`~narrawatch.state.DISPATCH_LOCK`; a PostgreSQL advisory lock with ``state.backend:
postgresql``, a ``flock`` in ``<data_dir>/locks/`` on SQLite). Both are try-locks taken per tick
and given back after it: a worker that does not get one skips that tick, since another worker
is doing the work on the same shared match store and outbox. A killed holder's lock is freed by
the server (its session ends) or the kernel, and the next tick of any worker takes over. Events
and alerts are decided from the shared match store alone: an event's identity is its detector,
subject and evidence documents, an alert's id a hash of its rule and events, and a delivery's
idempotency key ``<alert id>.<channel id>`` (:func:`alerts.outbox.idempotency_key`), so a
takeover re-derives the same ids and the outbox's dedup and re-alert state suppress a second
alert; nothing in them names the worker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from alerts.config import build_channels
from alerts.outbox import Dispatcher
from alerts.rules import AlertEngine, run_rules
from core.documents import IndexedDocument, UpsertResult, utcnow
from core.events import Alert
from core.locks import holding
from core.matches import Match
from monitors.deletions import StoreWithDeletions
from monitors.detectors import label_events
from monitors.narratives import NarrativeMatcher
from narrawatch.app import App
from narrawatch.read.sources import detector_health
from narrawatch.rules_store import RuleViews, effective_alerts
from narrawatch.state import DETECTOR_LOCK, DISPATCH_LOCK

__all__ = ["Monitoring", "MonitoringService", "attach_monitoring"]

log = logging.getLogger(__name__)


class Monitoring(Protocol):
    """Post-pass work: detectors, alert rules, delivery."""

    def after_pass(self) -> None:
        """Run detectors and deliver due alerts."""
        ...

    def print_summary(self) -> None:
        """Print matches and alerts of the last pass for a person."""
        ...


class MonitoringService:
    """Matcher + match store + rules + outbox + dispatcher for one App."""

    def __init__(self, app: App, *, clock: Callable[[], datetime] = utcnow, keep_summary: bool = False) -> None:
        self.app = app
        self.catalogue = app.catalogue
        self.alerts = app.alerts_config
        self.clock = clock
        self.matcher = NarrativeMatcher(self.catalogue, app.embedder)
        self.store = app.matches
        self.outbox = app.outbox
        self.channels = build_channels(self.alerts)
        self._lock = threading.Lock()
        self.detector_lock = app.lock(DETECTOR_LOCK)
        self.dispatch_lock = app.lock(DISPATCH_LOCK)
        self.skipped: dict[str, int] = {"detect": 0, "dispatch": 0}
        """Ticks skipped because another process held the lock."""
        # What print_summary shows; kept only for one-off runs (crawl --once, demo), never by the
        # long-running service, where it would grow without bound.
        self.keep_summary = keep_summary
        self.last_matches: dict[tuple[str, str], Match] = {}
        self.last_alerts: list[Alert] = []
        self.last_delivery: dict[str, int] = {}
        for w in self.matcher.warnings:
            log.warning("narratives: %s", w)

    def on_indexed(self, docs: Sequence[IndexedDocument], result: UpsertResult) -> None:
        """Pipeline hook: match the batch's new/updated documents and store the matches.

        Each match is stamped ``seen`` = the service clock now (the same clock detectors use).
        """
        if not docs:
            return
        seen = self.clock()
        self.app.rules.record_indexed([d.document.id for d in docs], seen)  # what saved searches read next pass
        pairs = [(d.document, d.vectors) for d in docs]
        matches = [replace(m, seen=seen) for m in self.matcher.match_many(pairs)] if self.catalogue.enabled else []
        with self._lock:
            added = self.store.add(matches)
            if self.keep_summary:
                self.last_matches.update({(m.document_id, m.narrative_id): m for m in matches})
        self.app.pipeline.counters.add("match.matches", len(matches))
        self.app.pipeline.counters.add("match.documents", len(docs))
        if matches:
            log.info(
                "matched %d of %d documents (%d new matches)", len({m.document_id for m in matches}), len(docs), added
            )

    def after_pass(self) -> None:
        """Run the rules' detectors and enqueue alerts, then deliver what is due (each only while
        this process holds its deployment-wide lock)."""
        self.detect()
        self.dispatch()

    def detect(self) -> int | None:
        """One detector pass, if this process gets :data:`DETECTOR_LOCK`: events become alerts in
        the outbox. Returns the alerts created, or None when another process holds the lock."""
        with holding(self.detector_lock) as got:
            if not got:
                self.skipped["detect"] += 1
                log.debug("detectors: another process is running them; skipped this tick")
                return None
            return self._detect()

    def _detect(self) -> int:
        now = self.clock()
        titles = {n.id: n.title for n in self.catalogue.enabled}
        with self._lock:
            store = StoreWithDeletions(self.store, self.app.evidence)  # deleted_after_spread reads deletions
            rules = effective_alerts(self.app)  # YAML rules + analysts' stored rules, read every pass
            views = RuleViews(store, self.app)  # query rules read the items indexed since their last pass
            sources = self.app.config.sources
            events = run_rules(rules, views, detector_health(self.app, now), now, titles, sources=sources)
            events = label_events(events, sources)  # alerts say what kind of outlet each source is
            alerts = AlertEngine(rules, self.outbox, sources=sources).process(events, now)
            views.commit(now)
            if self.keep_summary:
                self.last_alerts.extend(alerts)
        self.app.pipeline.counters.add("detect.events", len(events))
        self.app.pipeline.counters.add("alert.created", len(alerts))
        log.info("detectors: %d events, %d alerts", len(events), len(alerts))
        return len(alerts)

    def dispatch(self) -> dict[str, int] | None:
        """Deliver the due alerts, if this process gets :data:`DISPATCH_LOCK` (None otherwise)."""
        with holding(self.dispatch_lock) as got:
            if not got:
                self.skipped["dispatch"] += 1
                log.debug("delivery: another process is dispatching; skipped this tick")
                return None
            delivery = Dispatcher(self.outbox, self.channels).deliver_due(utcnow())
        for k, v in delivery.items():
            self.last_delivery[k] = self.last_delivery.get(k, 0) + v
            self.app.pipeline.counters.add(f"alert.{k}", v)
        if any(delivery.values()):
            log.info("delivery %s", delivery)
        return delivery

    def close(self) -> None:
        """Give the locks back (they are taken per tick; this covers a tick cut short)."""
        self.detector_lock.close()
        self.dispatch_lock.close()

    def reload(self) -> None:
        """Take the App's (reloaded) config: narratives, matcher, alert rules, channels."""
        with self._lock:
            self.catalogue = self.app.catalogue
            self.alerts = self.app.alerts_config
            self.matcher = NarrativeMatcher(self.catalogue, self.app.embedder)
            self.channels = build_channels(self.alerts)
        for w in self.matcher.warnings:
            log.warning("narratives: %s", w)

    def print_summary(self) -> None:
        """Matches per narrative and the alerts raised, for a person at a terminal."""
        from rich.console import Console
        from rich.markup import escape

        console = Console()
        by_narrative: dict[str, list[Match]] = {}
        for m in self.last_matches.values():
            by_narrative.setdefault(m.narrative_id, []).append(m)
        console.print(
            f"\n[bold]narrative matches[/bold] (an indication for review, not a verdict): "
            f"{len(self.last_matches)} in {len({doc for doc, _ in self.last_matches})} documents"
        )
        for nid, ms in sorted(by_narrative.items(), key=lambda kv: -len(kv[1])):
            best = max(ms, key=lambda m: m.score)
            outlets = len({m.outlet for m in ms})
            console.print(
                f"  [bold]{escape(nid)}[/bold]: {len(ms)} matches, {outlets} outlets; best "
                f"{best.score:.3f} ({best.tier}) in {escape(best.outlet)}: "
                f'"{escape(best.passage_text[:140])}"'
            )
        console.print(f"\n[bold]alerts[/bold]: {len(self.last_alerts)} raised; delivery {self.last_delivery or '{}'}")
        for a in self.last_alerts[:15]:
            console.print(f"  [{a.severity}] {escape(a.title)}  (id {a.id})")


def attach_monitoring(
    app: App, *, clock: Callable[[], datetime] = utcnow, keep_summary: bool = False
) -> MonitoringService | None:
    """Attach matching and the alert rules to the pipeline (always: a saved search may be added
    from the API at any time, and it needs the pass and the new-items feed even without narratives)."""
    if not app.catalogue.enabled:
        log.info("disabled narrative matching: no narratives configured (alert rules and saved searches still run)")
    service = MonitoringService(app, clock=clock, keep_summary=keep_summary)
    app.pipeline.hooks.append(service.on_indexed)
    return service
