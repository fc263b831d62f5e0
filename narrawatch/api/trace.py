"""``/api/v1/trace`` and ``/api/v1/themes``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from narrawatch.api.deps import Analyst, AppDep, Reader
from narrawatch.api.schemas import TraceBody
from narrawatch.read import themes, trace
from narrawatch.read.params import PromoteRequest, ThemeParams, TraceRequest
from narrawatch.read.trace import ExportFormat

__all__ = ["router"]

router = APIRouter(prefix="/api/v1")


@router.post("/trace", summary="Trace a claim, URL, document or narrative")
def run_trace(app: AppDep, who: Reader, req: TraceBody) -> dict[str, Any]:
    """Items, copies, translations, first appearances, propagation edges and timeline."""
    return trace.trace(app, req).as_dict()


@router.get("/trace/export", summary="Export a trace: csv/jsonl items, gexf/graphml graph, png/svg timeline")
def trace_export(
    app: AppDep,
    who: Reader,
    req: Annotated[TraceRequest, Query()],
    format: Annotated[ExportFormat, Query()] = "csv",
) -> Response:
    """The same fields as ``POST /trace``, as query parameters."""
    body = trace.export_bytes(trace.trace(app, req), format)
    return Response(
        body,
        media_type=trace.EXPORT_FORMATS[format],
        headers={"Content-Disposition": f'attachment; filename="narrawatch-trace.{format}"'},
    )


@router.get("/themes", summary="Emerging themes: clusters of recent passages no narrative matched")
def list_themes(app: AppDep, who: Reader, t: Annotated[ThemeParams, Query()]) -> list[dict[str, Any]]:
    """Default window: the 7 days up to the newest stored document (not the wall clock)."""
    return [
        th.as_dict() for th in themes.list_themes(app, t.since, t.until, min_size=t.min_size, max_themes=t.max_themes)
    ]


@router.post("/themes/{theme_id}/promote", summary="Promote a theme to a draft narrative (analyst)")
def promote(app: AppDep, who: Analyst, theme_id: str, req: PromoteRequest) -> dict[str, Any]:
    """Writes a draft narrative YAML (``<data_dir>/narrative_drafts``) for review; returns its path."""
    return themes.promote(app, theme_id, req.narrative_id, req.since, req.until, min_size=req.min_size).as_dict()
