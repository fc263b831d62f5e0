"""The long-running service: sources leased from the shared crawl state, clean shutdown on SIGINT/SIGTERM.

Every ``narrawatch run`` worker of a deployment runs the same loop on APScheduler 3.x, with no
partition configured anywhere; adding or removing a worker needs no configuration change:

* **claim** (every :func:`claim_every`: a fifth of ``crawl.lease``, at most 5 s, each tick delayed by a
  random share of that interval so that no worker's phase wins every race for a due source): every runnable
  configured source gets a lease row in the crawl state if it has none yet
  (:meth:`crawlers.state.CrawlStateStore.schedule`), due ``every`` after its last success (a
  source never crawled: at once); then the worker claims due sources up to its free crawl slots
  (``crawl.max_parallel_sources``; PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so workers claiming
  at once get disjoint sources) and crawls each in a ``crawl`` executor thread;
* **renew** (every third of ``crawl.lease``): the leases of the sources this worker is crawling
  are extended; a lease found taken over (it ran out, another worker claimed it) is logged;
* **release**: after the pass (its result recorded by the pipeline) the lease is given back with
  the next due time, ``every`` + a random share of ``jitter`` from now. A pass cut short by a stop
  is due again at once, so another worker takes it over.

A killed worker renews nothing: its leases run out after at most ``crawl.lease`` and the next
claim tick of any worker takes its sources (with their crawl state: validators, seen items), so
they are crawled again within one lease period plus two claim intervals. Sources removed from the
config (reload) are unscheduled; a worker that claims a source it does not know (its config
differs from the one that scheduled it) hands it back, due again after one lease period. All
workers should read the same config.

Extra periodic jobs (detectors, alert delivery, re-checks, config reload) are added with
:meth:`Service.add_job`.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN, SchedulerEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from core.documents import utcnow
from core.settings import Config, SourceBase
from crawlers.state import SourceRelease
from narrawatch.pipeline import Pipeline

__all__ = ["Service", "claim_every", "first_run_time", "next_due", "runnable_sources", "worker_id"]

log = logging.getLogger(__name__)

PERIODIC_THREADS = 4
"""Threads for the periodic jobs (claim, renew, detectors, delivery, re-checks, reload)."""


def first_run_time(last_success: datetime | None, every: timedelta, now: datetime, jitter: timedelta) -> datetime:
    """When a source first scheduled (or rescheduled) is due: ``last_success + every``, or soon."""
    spread = timedelta(seconds=random.uniform(0, max(jitter.total_seconds(), 0.0)))
    if last_success is None:
        return now + min(spread, timedelta(seconds=5))
    due = last_success + every
    return max(due, now) + spread


def next_due(src: SourceBase, now: datetime) -> datetime:
    """When a source is due after a pass that ended at ``now``: ``every`` plus a share of its jitter."""
    jitter = max(src.effective_jitter.total_seconds(), 0.0)
    return now + src.every + timedelta(seconds=random.uniform(0, jitter))


def claim_every(lease: timedelta) -> timedelta:
    """How often a worker claims due sources: a fifth of the lease, between 0.5 s and 5 s."""
    return timedelta(seconds=min(5.0, max(0.5, lease.total_seconds() / 5)))


def runnable_sources(config: Config) -> dict[str, SourceBase]:
    """The enabled sources that can run (no missing prerequisite), by id."""
    return {s.id: s for s in config.sources if s.enabled and not s.disabled_reason}


def worker_id() -> str:
    """This process's name in lease rows: host, pid and a random part (unique across restarts)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Service:
    """Claims, crawls and releases due sources, and runs any extra jobs, until stopped."""

    def __init__(self, config: Config, pipeline: Pipeline, *, worker: str | None = None) -> None:
        self.config = config
        self.pipeline = pipeline
        self.worker = worker or worker_id()
        self.scheduler = BackgroundScheduler(
            executors={
                "default": ThreadPoolExecutor(PERIODIC_THREADS),
                "crawl": ThreadPoolExecutor(config.service.crawl.max_parallel_sources),
            },
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
            timezone=UTC,
        )
        self.scheduler.add_listener(self._on_shutdown, EVENT_SCHEDULER_SHUTDOWN)
        self._stopped = threading.Event()
        self._mutex = threading.Lock()
        self._running: set[str] = set()
        """Sources this worker is crawling (holds the lease of)."""
        self._scheduled: set[str] = set()
        """Sources this worker has put in the lease table (or found there)."""
        self._unknown_logged: set[str] = set()
        self.crawled = 0
        """Passes this worker ran (for tests and benchmarks)."""

    @property
    def lease(self) -> timedelta:
        """``crawl.lease`` of the config the service started with (a change needs a restart)."""
        return self.config.service.crawl.lease

    @property
    def running(self) -> set[str]:
        """The sources this worker is crawling now."""
        with self._mutex:
            return set(self._running)

    # -- the lease table -----------------------------------------------------------------------

    def _schedule_new(self, now: datetime) -> list[str]:
        """Give every runnable source not yet known to be scheduled a lease row (existing rows keep
        their due time and lease). Returns the ids it asked for."""
        wanted = runnable_sources(self.config)
        new = sorted(set(wanted) - self._scheduled)
        if not new:
            return []
        state = self.pipeline.state
        due = {
            sid: first_run_time(state.get(sid).last_success, wanted[sid].every, now, wanted[sid].effective_jitter)
            for sid in new
        }
        state.schedule(due)
        self._scheduled.update(new)
        return new

    def schedule_sources(self) -> None:
        """Schedule every runnable source in the shared lease table and add the claim and renew jobs."""
        for src in self.config.sources:
            if not src.enabled:
                log.info("disabled source %s: enabled: false", src.id)
            elif src.disabled_reason:
                log.info("disabled source %s: %s", src.id, src.disabled_reason)
        self._schedule_new(utcnow())
        # Jittered by up to one interval: with fixed phases the worker whose tick comes first after a
        # source falls due would win nearly every claim (measured: a joining worker won none in 2 min).
        every = claim_every(self.lease)
        self._add_periodic("sources:claim", self.claim_tick, every, start=timedelta(0), jitter=every)
        self._add_periodic("sources:renew", self.renew_tick, self.lease / 3, start=self.lease / 3)

    def reschedule(self, config: Config) -> dict[str, list[str]]:
        """Take a reloaded config: removed or disabled sources are unscheduled (a crawl in flight
        finishes; its release then finds no lease and writes nothing), new ones are scheduled, and
        changed ones that no live lease holds are scheduled afresh (due ``every`` after their last
        success, as at start; one held by a crawl takes the new settings at its release).

        Returns the source ids ``added``, ``removed`` and ``changed``.
        """
        old = runnable_sources(self.config)
        self.config = config
        new = runnable_sources(config)
        out: dict[str, list[str]] = {"added": [], "removed": [], "changed": []}
        removed = sorted(set(old) - set(new))
        state = self.pipeline.state
        if removed:
            state.unschedule(removed)
            out["removed"] = removed
        now = utcnow()
        changed = sorted(sid for sid in set(old) & set(new) if old[sid] != new[sid])
        free = []
        for sid in changed:
            lease = state.lease(sid)
            if lease is None or lease.lease_until is None or lease.lease_until <= now:
                free.append(sid)
        if free:
            state.unschedule(free)
        out["added"] = sorted(set(new) - set(old))
        out["changed"] = changed
        self._scheduled -= set(removed) | set(free)
        self._scheduled &= set(new)
        self._schedule_new(now)
        return out

    # -- claim, crawl, renew, release ----------------------------------------------------------

    def claim_tick(self) -> list[str]:
        """Schedule new sources, claim due ones up to the free crawl slots and start their crawls.
        Returns the ids claimed and started."""
        if self._stopped.is_set():
            return []
        now = utcnow()
        self._schedule_new(now)
        with self._mutex:
            free = self.config.service.crawl.max_parallel_sources - len(self._running)
        if free <= 0:
            return []
        state = self.pipeline.state
        known = runnable_sources(self.config)
        started = []
        with self._mutex:
            crawling = set(self._running)
        for lease in state.claim_due(self.worker, now, self.lease.total_seconds(), free, exclude=crawling):
            sid = lease.source_id
            if sid not in known:  # scheduled by a worker whose config has it: let that one take it
                if sid not in self._unknown_logged:
                    self._unknown_logged.add(sid)
                    log.warning("source %s is scheduled but not in this worker's config: handed back", sid)
                state.release(sid, self.worker, SourceRelease(next_due=now + self.lease))
                continue
            with self._mutex:
                self._running.add(sid)
            try:
                self.scheduler.add_job(
                    self._crawl, args=[sid], id=f"crawl:{sid}", name=f"ingest {sid}", executor="crawl"
                )
            except Exception:
                log.exception("could not start the crawl of %s; handing it back", sid)
                with self._mutex:
                    self._running.discard(sid)
                state.release(sid, self.worker, SourceRelease(next_due=now))
                continue
            started.append(sid)
        if started:
            log.info("claimed %s", ", ".join(started))
        return started

    def _crawl(self, sid: str) -> None:
        ok = False
        try:
            reports = self.pipeline.ingest([sid])
            ok = bool(reports and reports[0].ok)
        except Exception:  # a failing crawl must not kill the service
            log.exception("ingest of %s failed", sid)
        finally:
            self._release(sid, ok)
        self.pipeline.counters.log(log, "counters")

    def _release(self, sid: str, ok: bool) -> None:
        now = utcnow()
        src = runnable_sources(self.config).get(sid)
        try:
            if src is None:  # removed while it was crawled: unscheduled already
                due = now
            elif self._stopped.is_set() and not ok:
                due = now  # cut short by a stop: another worker takes it over at once
            else:
                due = next_due(src, now)
            held = self.pipeline.state.release(sid, self.worker, SourceRelease(next_due=due))
            if not held and src is not None:
                log.warning("lease of %s was lost while it was crawled (another worker holds it now)", sid)
        except Exception:  # the lease runs out by itself
            log.exception("could not release the lease of %s", sid)
        finally:
            with self._mutex:
                self._running.discard(sid)
                self.crawled += 1

    def renew_tick(self) -> None:
        """Extend the leases of the sources this worker is crawling."""
        now = utcnow()
        for sid in sorted(self.running):
            try:
                if not self.pipeline.state.renew(sid, self.worker, now, self.lease.total_seconds()):
                    with self._mutex:
                        still_crawling = sid in self._running  # not just released by its crawl
                    if still_crawling:
                        log.warning("lease of %s ran out and was taken over while crawling it", sid)
            except Exception:
                log.exception("could not renew the lease of %s", sid)

    # -- jobs and lifecycle --------------------------------------------------------------------

    def _add_periodic(
        self, job_id: str, func: Callable[[], Any], every: timedelta, start: timedelta, jitter: timedelta | None = None
    ) -> None:
        self.scheduler.add_job(
            func,
            IntervalTrigger(seconds=every.total_seconds(), jitter=jitter.total_seconds() if jitter else None),
            id=job_id,
            name=job_id,
            next_run_time=utcnow() + start,
            coalesce=True,
            max_instances=1,
            replace_existing=True,
        )

    def add_job(self, job_id: str, func: Callable[[], Any], every: timedelta) -> None:
        """Add a periodic job (detectors, alert delivery ...), first run in a second."""
        self._add_periodic(job_id, func, every, timedelta(seconds=1))

    def _on_shutdown(self, event: SchedulerEvent) -> None:
        self._stopped.set()

    def stop(self, *_: object) -> None:
        """Request shutdown (signal-handler compatible)."""
        if not self._stopped.is_set():
            log.info("shutting down: finishing the batches in hand")
        self._stopped.set()
        self.pipeline.stop()

    def run_forever(self, install_signals: bool = True) -> None:
        """Start the scheduler and block until SIGINT/SIGTERM or :meth:`stop`."""
        if install_signals:

            def handler(signum: int, frame: FrameType | None) -> None:
                self.stop()

            signal.signal(signal.SIGINT, handler)
            signal.signal(signal.SIGTERM, handler)
        self.schedule_sources()
        self.scheduler.start()
        log.info(
            "worker %s: %d sources scheduled, leases of %ss, claiming every %ss",
            self.worker,
            len(self._scheduled),
            self.lease.total_seconds(),
            claim_every(self.lease).total_seconds(),
        )
        try:
            while not self._stopped.wait(1.0):
                pass
        finally:
            self.scheduler.shutdown(wait=True)  # crawls in flight finish and release their leases
            log.info("stopped")
