"""The running service's topology, wired in one place.

* the pipeline's post-index hook: narrative matching (:func:`narrawatch.monitoring.attach_monitoring`);
* the scheduled jobs: one crawl job per source (:class:`narrawatch.scheduler.Service`), the
  detectors + alert delivery every :data:`MONITOR_EVERY`, and re-checks of recent items for
  edits and deletions every ``recheck.every`` (:mod:`narrawatch.recheck`);
* the HTTP server (API and web UI) sharing the App, when enabled.

``crawl --once`` runs the same hook and one detector pass after the crawl (:func:`crawl_once`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from narrawatch import __version__
from narrawatch.app import App
from narrawatch.monitoring import attach_monitoring
from narrawatch.pipeline import SourceReport
from narrawatch.recheck import attach_recheck
from narrawatch.scheduler import Service

__all__ = ["MONITOR_EVERY", "crawl_once", "run_service"]

log = logging.getLogger(__name__)

MONITOR_EVERY = timedelta(seconds=30)
"""How often the service runs the alert rules' detectors and delivers due alerts."""


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
        monitoring.after_pass()
    app.pipeline.counters.log(log, "counters")
    return reports


def run_service(app: App, *, shard: tuple[int, int] | None = None, with_api: bool = True) -> None:
    """Scheduled crawls, monitoring and (``with_api`` and ``api.enabled``) the HTTP server, until
    SIGINT/SIGTERM."""
    config = app.config
    service = Service(config, app.pipeline, shard=shard)
    monitoring = attach_monitoring(app)
    if monitoring is not None:
        service.add_job("monitoring", monitoring.after_pass, MONITOR_EVERY)
    recheck = attach_recheck(app, shard=shard)
    if recheck is not None:
        service.add_job("recheck", recheck.run_once, config.service.recheck.every)
    api = None
    if with_api and config.service.api.enabled:
        from narrawatch.server import ApiServer  # FastAPI and uvicorn: only when the API runs

        api = ApiServer(config, app, host=config.service.api.host, port=config.service.api.port)
        api.start()
        log.info("API and web UI on http://%s:%d/", config.service.api.host, api.port)
    log.info("narrawatch %s: %d sources scheduled; Ctrl-C to stop", __version__, len(config.sources))
    try:
        service.run_forever()
    finally:
        if api is not None:
            api.stop()
        if recheck is not None:
            recheck.close()
