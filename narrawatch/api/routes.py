"""``/api/v1``: search, documents, sources, narratives, alerts."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query
from fastapi.responses import Response

from alerts.admin import alerts_ack, alerts_show
from narrawatch.api import service
from narrawatch.api.context import ApiContext, Principal, get_ctx, require
from narrawatch.api.errors import ApiError
from narrawatch.api.schemas import AckRequest, AlertParams, MatchParams, SearchParams, TimeRange

__all__ = ["export_response", "router"]

router = APIRouter(prefix="/api/v1")

Ctx = Annotated[ApiContext, Depends(get_ctx)]
Reader = Annotated[Principal, Depends(require("read"))]
Analyst = Annotated[Principal, Depends(require("analyst"))]


def export_response(body: str, fmt: str, stem: str) -> Response:
    """A download: CSV or JSONL text with a filename."""
    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson; charset=utf-8"
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{stem}.{fmt}"'})


@router.get("/search", summary="Search documents (hybrid, keyword or semantic) with filters")
def search(ctx: Ctx, who: Reader, p: Annotated[SearchParams, Query()]) -> dict[str, Any]:
    """Ranked documents (best passage each) with the offsets of query words in the passage."""
    return service.run_search(ctx, p)


@router.get("/search/export", summary="Export search results as CSV or JSONL (up to 1000 rows)")
def search_export(
    ctx: Ctx,
    who: Reader,
    p: Annotated[SearchParams, Query()],
    format: Annotated[Literal["csv", "jsonl"], Query()] = "csv",
) -> Response:
    """The ranked results as a file."""
    rows = service.search_export_rows(ctx, p)
    body = service.rows_to_csv(rows, service.EXPORT_FIELDS) if format == "csv" else service.rows_to_jsonl(rows)
    return export_response(body, format, "narrawatch-search")


@router.get("/documents/{doc_id:path}", summary="One document with its passages")
def document(ctx: Ctx, who: Reader, doc_id: str) -> dict[str, Any]:
    """The stored document (404 if unknown)."""
    return service.document_detail(ctx, doc_id)


@router.get("/sources", summary="Crawl health of every source, failing first")
def sources(ctx: Ctx, who: Reader) -> list[dict[str, Any]]:
    """Per source: status, last success/error, failures in a row, items in 24 h, documents indexed."""
    return service.sources_health(ctx)


@router.get("/narratives", summary="Narratives with match counts and daily timelines")
def narratives(ctx: Ctx, who: Reader, t: Annotated[TimeRange, Query()]) -> list[dict[str, Any]]:
    """Every narrative of the catalogue (and any with stored matches)."""
    return service.narratives_overview(ctx, t.since, t.until)


@router.get("/narratives/{narrative_id}", summary="One narrative: timeline, top outlets/languages, matches")
def narrative(ctx: Ctx, who: Reader, narrative_id: str, p: Annotated[MatchParams, Query()]) -> dict[str, Any]:
    """Summary and a page of matches, newest first."""
    return service.narrative_detail(ctx, narrative_id, p)


@router.get("/narratives/{narrative_id}/matches", summary="A page of a narrative's matches, newest first")
def narrative_matches(ctx: Ctx, who: Reader, narrative_id: str, p: Annotated[MatchParams, Query()]) -> dict[str, Any]:
    """Matches only (plus paging)."""
    d = service.narrative_detail(ctx, narrative_id, p)
    return {k: d[k] for k in ("id", "total", "page", "page_size", "has_more", "matches")}


@router.get("/alerts", summary="Alerts, newest first")
def alerts(ctx: Ctx, who: Reader, p: Annotated[AlertParams, Query()]) -> list[dict[str, Any]]:
    """Filtered by rule, severity, unacknowledged and time."""
    return service.alerts_page(ctx, p)


@router.get("/alerts/{alert_id}", summary="One alert with its events, evidence and deliveries")
def alert(ctx: Ctx, who: Reader, alert_id: str) -> dict[str, Any]:
    """404 if unknown."""
    return alerts_show(ctx.config, alert_id)


@router.post("/alerts/{alert_id}/ack", summary="Acknowledge an alert (analyst)")
def ack(ctx: Ctx, who: Analyst, alert_id: str, body: Annotated[AckRequest | None, Body()] = None) -> dict[str, Any]:
    """Marks the alert acknowledged by the token's name with the body's ``note``; ``changed`` is false
    if it already was (the first acknowledgement and its note stand)."""
    changed = alerts_ack(ctx.config, alert_id, by=who.name, note=body.note if body else "")
    shown = alerts_show(ctx.config, alert_id)
    if shown.get("acked_at") is None:
        raise ApiError(500, "acknowledgement was not stored")
    return {
        "id": alert_id,
        "changed": changed,
        "acked_at": shown["acked_at"],
        "acked_by": shown["acked_by"],
        "ack_note": shown["ack_note"],
    }
