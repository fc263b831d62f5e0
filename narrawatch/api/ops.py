"""``/healthz`` (liveness + index reachable) and ``/metrics`` (Prometheus text format).

``/metrics`` needs a token (any role) unless ``api.metrics_public`` says otherwise: ``true`` opens it
to anyone, ``false`` never; unset (the default) opens it only to direct loopback clients (a
loopback address and no forwarded headers, so a local Prometheus works while the same port behind
a reverse proxy does not leak counts, source names and index size).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from narrawatch.http.guards import is_direct_loopback
from narrawatch.http.session import ServerContext, get_ctx, require
from narrawatch.read.alerts import alert_counts

__all__ = ["NarrawatchCollector", "metrics_allowed", "router"]

log = logging.getLogger(__name__)

router = APIRouter()

Ctx = Annotated[ServerContext, Depends(get_ctx)]


@router.get("/healthz", summary="Liveness and index reachability")
def healthz(ctx: Ctx) -> Response:
    """200 ``{"status": "ok"}`` when the index answers, else 503 with the reason."""
    try:
        docs = ctx.app.index.count("kind")
    except Exception as exc:
        log.warning("healthz: index unreachable: %s", exc)
        return JSONResponse({"status": "degraded", "index": f"unreachable: {type(exc).__name__}"}, status_code=503)
    return JSONResponse({"status": "ok", "index": "ok", "documents": sum(docs.values())})


class NarrawatchCollector:
    """Reads counters and totals at scrape time."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        """Stage counters, index totals, matches, alerts and deliveries by status."""
        app = self.ctx.app
        stage = CounterMetricFamily(
            "narrawatch_stage_events", "Events counted by pipeline stage since start", labels=["stage"]
        )
        for key, value in app.pipeline.counters.snapshot().items():
            stage.add_metric([key], float(value))
        yield stage
        try:
            stats = app.index.stats()
            up = 1.0
        except Exception:
            stats, up = None, 0.0
        yield GaugeMetricFamily("narrawatch_index_up", "1 when the index answered this scrape", value=up)
        if stats is not None:
            yield GaugeMetricFamily("narrawatch_documents", "Documents in the index", value=float(stats.documents))
            yield GaugeMetricFamily("narrawatch_passages", "Passages in the index", value=float(stats.passages))
            yield GaugeMetricFamily("narrawatch_index_size_bytes", "Index size on disk", value=float(stats.size_bytes))
            by_lang = GaugeMetricFamily(
                "narrawatch_documents_by_language", "Documents by language", labels=["language"]
            )
            for lang, n in sorted(stats.by_language.items()):
                by_lang.add_metric([lang], float(n))
            yield by_lang
        yield GaugeMetricFamily("narrawatch_matches", "Stored narrative matches", value=float(len(app.matches)))
        counts: dict[str, Any] = alert_counts(app)
        yield GaugeMetricFamily("narrawatch_alerts", "Alerts in the outbox", value=float(counts.get("alerts", 0)))
        deliveries = GaugeMetricFamily("narrawatch_alert_deliveries", "Alert deliveries by status", labels=["status"])
        for status in ("pending", "sent", "failed"):
            deliveries.add_metric([status], float(counts.get(status, 0)))
        yield deliveries
        yield GaugeMetricFamily(
            "narrawatch_alerts_pending", "Alert deliveries waiting to be sent", value=float(counts.get("pending", 0))
        )


def metrics_allowed(request: Request, ctx: ServerContext) -> None:
    """Raise 401/403 unless ``/metrics`` is public for this request (see the module docstring)."""
    public = ctx.config.service.api.metrics_public
    if public is True or (public is None and is_direct_loopback(request)):
        return
    require("read")(request)


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format; a token unless api.metrics_public)",
    openapi_extra={"security": [{}, {"bearerAuth": []}]},  # optional: see metrics_allowed
)
def metrics(request: Request, ctx: Ctx) -> Response:
    """Scraped by Prometheus (``authorization: {credentials: <token>}`` in its scrape config)."""
    metrics_allowed(request, ctx)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NarrawatchCollector(ctx))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
