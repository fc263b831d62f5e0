"""The running service's topology, wired in one place.

* the pipeline's post-index hook: narrative matching (:func:`narrawatch.monitoring.attach_monitoring`);
* the scheduled jobs: leased crawls of due sources (:class:`narrawatch.scheduler.Service`), the
  detectors + alert delivery every :data:`MONITOR_EVERY` (each under its deployment-wide lock,
  :mod:`narrawatch.monitoring`), and re-checks of recent items for edits and deletions every
  ``recheck.every`` under :data:`RECHECK_LOCK` (:mod:`narrawatch.recheck`);
* the HTTP server (API and web UI) sharing the App, when enabled.

``crawl --once`` runs the same hook and one detector pass after the crawl (:func:`crawl_once`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from functools import partial
from typing import Any

from core.locks import ExclusiveLock, holding
from narrawatch import __version__
from narrawatch.app import App
from narrawatch.monitoring import attach_monitoring
from narrawatch.pipeline import SourceReport
from narrawatch.recheck import attach_recheck
from narrawatch.scheduler import Service

__all__ = ["MONITOR_EVERY", "RECHECK_LOCK", "crawl_once", "run_service"]

log = logging.getLogger(__name__)

MONITOR_EVERY = timedelta(seconds=30)
"""How often the service runs the alert rules' detectors and delivers due alerts."""

RECHECK_LOCK = "recheck"
"""The lock the re-check pass holds: one pass at a time over one re-check schedule (the schedule
is ``<data_dir>/recheck.sqlite``; on PostgreSQL state the lock is deployment-wide)."""


def crawl_once(
    app: App, sources: Sequence[str], *, on_event: Callable[[dict[str, Any]], None] | None = None
) -> list[SourceReport]:
    """One pass over ``sources`` with matching attached, then one detector pass."""
    monitoring = attach_monitoring(app)
    recheck = attach_recheck(app)  # new items start their re-check schedule
    try:
        reports = app.pipeline.ingest(list(sources), on_event=on_event)
    finally:
        if recheck is not None:
            app.pipeline.hooks.remove(recheck.on_indexed)
            recheck.close()
    if monitoring is not None:
        try:
            monitoring.after_pass()
        finally:
            monitoring.close()
    app.pipeline.counters.log(log, "counters")
    return reports


def run_service(app: App, *, with_api: bool = True) -> None:
    """Leased crawls, monitoring and (``with_api`` and ``api.enabled``) the HTTP server, until
    SIGINT/SIGTERM. Any number of workers may run this on one shared state (see
    :mod:`narrawatch.scheduler`); detectors, delivery and re-checks run in one of them at a time."""
    config = app.config
    service = Service(config, app.pipeline)
    monitoring = attach_monitoring(app)
    if monitoring is not None:
        service.add_job("monitoring", monitoring.after_pass, MONITOR_EVERY)
    recheck = attach_recheck(app)
    recheck_lock = app.lock(RECHECK_LOCK)
    if recheck is not None:
        service.add_job(
            "recheck", partial(_one_at_a_time, recheck_lock, recheck.run_once), config.service.recheck.every
        )
    from narrawatch.reload import attach_reload  # config files polled, SIGHUP: reload without a restart

    attach_reload(app, service, monitoring)
    api = None
    if with_api and config.service.api.enabled:
        from narrawatch.server import ApiServer  # FastAPI and uvicorn: only when the API runs

        api = ApiServer(config, app, host=config.service.api.host, port=config.service.api.port)
        api.start()
        log.info("API and web UI on http://%s:%d/", config.service.api.host, api.port)
    log.info("narrawatch %s: %d sources configured; Ctrl-C to stop", __version__, len(config.sources))
    try:
        service.run_forever()
    finally:
        if api is not None:
            api.stop()
        if recheck is not None:
            recheck.close()
        recheck_lock.close()
        if monitoring is not None:
            monitoring.close()


def _one_at_a_time(lock: ExclusiveLock, job: Callable[[], object]) -> None:
    """Run ``job`` if this process gets ``lock`` (try-lock); skip the tick otherwise."""
    with holding(lock) as got:
        if got:
            job()
        else:
            log.debug("%s: another process holds the lock; skipped this tick", lock.name)
