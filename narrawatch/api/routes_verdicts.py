"""``/api/v1``: one match, analysts' verdicts on matches, and their export as gold JSONL."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from monitors.verdicts import list_verdicts, record_verdict
from narrawatch.api import service
from narrawatch.api.context import ApiContext, Principal, get_ctx, require
from narrawatch.api.schemas import VerdictParams, VerdictRequest
from narrawatch.verdict_export import verdict_gold_lines, verdict_gold_text

__all__ = ["router"]

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1")

Ctx = Annotated[ApiContext, Depends(get_ctx)]
Reader = Annotated[Principal, Depends(require("read"))]
Analyst = Annotated[Principal, Depends(require("analyst"))]


@router.get("/matches/{match_id}", summary="One match with its evidence, reasons and verdict")
def match(ctx: Ctx, who: Reader, match_id: str) -> dict[str, Any]:
    """The stored match (rejected ones too) with its latest verdict and history; 404 if unknown."""
    return service.match_detail(ctx, match_id)


@router.post("/matches/{match_id}/verdict", summary="Confirm or reject a match (analyst)")
def verdict(ctx: Ctx, who: Analyst, match_id: str, body: VerdictRequest) -> dict[str, Any]:
    """Record the verdict by the token's name (a later one replaces it); a rejected match never
    counts towards a detector again. 404 if unknown."""
    v = record_verdict(ctx.matches, match_id, body.verdict, analyst=who.name, note=body.note)
    return v.as_dict()


@router.get("/verdicts", summary="Latest verdicts, newest first")
def verdicts(ctx: Ctx, who: Reader, p: Annotated[VerdictParams, Query()]) -> list[dict[str, Any]]:
    """Filtered by narrative and verdict."""
    return [v.as_dict() for v in list_verdicts(ctx.matches, narrative_id=p.narrative, verdict=p.verdict, limit=p.limit)]


@router.get("/verdicts/export", summary="Verdicts as gold JSONL (narratives eval/learn input)")
async def verdicts_export(ctx: Ctx, who: Reader, p: Annotated[VerdictParams, Query()]) -> Response:
    """One gold line per latest verdict (``narratives``, ``judged``, ``origin``...), newest first."""
    index = ctx.app.index
    lines = await run_in_threadpool(
        verdict_gold_lines, ctx.config, narrative_id=p.narrative, store=ctx.matches, index=index
    )
    if p.verdict is not None:
        lines = [line for line in lines if line["verdict"] == p.verdict]
    return Response(
        verdict_gold_text(lines),
        media_type="application/x-ndjson; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="narrawatch-verdicts.jsonl"'},
    )
