"""``/api/v1/trace`` and ``/api/v1/themes``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from narrawatch.api import tracing
from narrawatch.api.context import ApiContext, Principal, get_ctx, require
from narrawatch.api.schemas import PromoteRequest, TimeRange, TraceBody, TraceRequest

__all__ = ["router"]

router = APIRouter(prefix="/api/v1")

Ctx = Annotated[ApiContext, Depends(get_ctx)]
Reader = Annotated[Principal, Depends(require("read"))]
Analyst = Annotated[Principal, Depends(require("analyst"))]


@router.post("/trace", summary="Trace a claim, URL, document or narrative")
def trace(ctx: Ctx, who: Reader, req: TraceBody) -> dict[str, Any]:
    """Items, copies, translations, first appearances, propagation edges and timeline."""
    return tracing.run_trace(ctx, req)


@router.get("/trace/export", summary="Export a trace: csv/jsonl items, gexf/graphml graph, png/svg timeline")
def trace_export(
    ctx: Ctx,
    who: Reader,
    req: Annotated[TraceRequest, Query()],
    format: Annotated[Literal["csv", "jsonl", "gexf", "graphml", "png", "svg"], Query()] = "csv",
) -> Response:
    """The same fields as ``POST /trace``, as query parameters."""
    body = tracing.trace_export(ctx, req, format)
    return Response(
        body,
        media_type=tracing.EXPORT_FORMATS[format],
        headers={"Content-Disposition": f'attachment; filename="narrawatch-trace.{format}"'},
    )


@router.get("/themes", summary="Emerging themes: clusters of recent passages no narrative matched")
def themes(ctx: Ctx, who: Reader, t: Annotated[TimeRange, Query()]) -> list[dict[str, Any]]:
    """Default window: the last 7 days."""
    return tracing.list_themes(ctx, t.since, t.until)


@router.post("/themes/{theme_id}/promote", summary="Promote a theme to a draft narrative (analyst)")
def promote(ctx: Ctx, who: Analyst, theme_id: str, req: PromoteRequest) -> dict[str, Any]:
    """Writes a draft narrative YAML for review; returns its path."""
    return tracing.promote(ctx, theme_id, req.narrative_id, req.since)
