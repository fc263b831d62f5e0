"""The long-running service: APScheduler 3.x jobs per source, clean shutdown on SIGINT/SIGTERM.

One interval job per enabled source (stable id ``source:<id>``, ``coalesce=True``,
``max_instances=1``, jitter). The first run of a source is due ``every`` after its last
success (persisted in the crawl state), so a restart neither re-ingests early nor skips a
due crawl. Extra periodic jobs (detectors, alert delivery) are added with :meth:`Service.add_job`.
"""

from __future__ import annotations

import hashlib
import logging
import random
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from core.documents import utcnow
from core.settings import Config
from narrawatch.pipeline import Pipeline

__all__ = ["Service", "first_run_time", "in_shard", "parse_shard"]

log = logging.getLogger(__name__)


def first_run_time(last_success: datetime | None, every: timedelta, now: datetime, jitter: timedelta) -> datetime:
    """When a source's first job after (re)start is due: ``last_success + every``, or soon."""
    spread = timedelta(seconds=random.uniform(0, max(jitter.total_seconds(), 0.0)))
    if last_success is None:
        return now + min(spread, timedelta(seconds=5))
    due = last_success + every
    return max(due, now) + spread


def parse_shard(text: str) -> tuple[int, int]:
    """``"1/3"`` -> ``(1, 3)``: this worker runs shard 1 of 3 (0-based)."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"shard must look like I/N, e.g. 0/3: {text!r}") from None
    if not 0 <= i < n:
        raise ValueError(f"shard index must be in 0..{n - 1}: {text!r}")
    return i, n


def in_shard(source_id: str, shard: tuple[int, int] | None) -> bool:
    """Whether a source belongs to a worker's shard (stable hash of the id; None = all)."""
    if shard is None:
        return True
    digest = hashlib.sha256(source_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shard[1] == shard[0]


class Service:
    """Schedules every source's ingest and any extra jobs until stopped."""

    def __init__(self, config: Config, pipeline: Pipeline, *, shard: tuple[int, int] | None = None) -> None:
        self.config = config
        self.pipeline = pipeline
        self.shard = shard
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(config.service.crawl.max_parallel_sources)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
            timezone=UTC,
        )
        self._stopped = threading.Event()

    def _run_source(self, source_id: str) -> None:
        try:
            self.pipeline.ingest([source_id])
        except Exception:  # a failing job must not kill the service; APScheduler logs too
            log.exception("ingest of %s failed", source_id)
        self.pipeline.counters.log(log, "counters")

    def schedule_sources(self) -> None:
        """Add one interval job per enabled source."""
        now = utcnow()
        for src in self.config.sources:
            if not src.enabled:
                log.info("disabled source %s: enabled: false", src.id)
                continue
            if src.disabled_reason:
                log.info("disabled source %s: %s", src.id, src.disabled_reason)
                continue
            if not in_shard(src.id, self.shard):
                continue
            st = self.pipeline.state.get(src.id)
            jitter = src.effective_jitter
            self.scheduler.add_job(
                self._run_source,
                IntervalTrigger(seconds=src.every.total_seconds(), jitter=int(jitter.total_seconds()) or None),
                args=[src.id],
                id=f"source:{src.id}",
                name=f"ingest {src.id}",
                next_run_time=first_run_time(st.last_success, src.every, now, jitter),
                coalesce=True,
                max_instances=1,
                replace_existing=True,
            )

    def add_job(self, job_id: str, func: Callable[[], Any], every: timedelta) -> None:
        """Add a periodic job (detectors, alert delivery ...)."""
        self.scheduler.add_job(
            func,
            IntervalTrigger(seconds=every.total_seconds()),
            id=job_id,
            name=job_id,
            next_run_time=utcnow() + timedelta(seconds=1),
            coalesce=True,
            max_instances=1,
            replace_existing=True,
        )

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
        for job in self.scheduler.get_jobs():
            log.info("scheduled %s, next run %s", job.id, job.next_run_time)
        try:
            while not self._stopped.wait(1.0):
                pass
        finally:
            self.scheduler.shutdown(wait=True)
            log.info("stopped")
