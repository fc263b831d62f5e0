"""``/api/v1``: narratives, their matches, one match, analysts' verdicts and their gold export."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from narrawatch.api.deps import Analyst, AppDep, Reader
from narrawatch.api.schemas import VerdictParams
from narrawatch.read import narratives
from narrawatch.read.params import MatchParams, TimeRange, VerdictRequest
from narrawatch.verdict_export import verdict_gold_text

__all__ = ["router"]

router = APIRouter(prefix="/api/v1")


@router.get("/narratives", summary="Narratives with match counts and daily timelines")
def overview(app: AppDep, who: Reader, t: Annotated[TimeRange, Query()]) -> list[dict[str, Any]]:
    """Every narrative of the catalogue (and any with stored matches)."""
    return [n.as_dict() for n in narratives.narratives_overview(app, t.since, t.until)]


@router.get("/narratives/{narrative_id}", summary="One narrative: timeline, top outlets/languages, matches")
def narrative(app: AppDep, who: Reader, narrative_id: str, p: Annotated[MatchParams, Query()]) -> dict[str, Any]:
    """Summary and a page of matches, newest first."""
    return narratives.narrative_detail(app, narrative_id, p).as_dict()


@router.get("/narratives/{narrative_id}/matches", summary="A page of a narrative's matches, newest first")
def narrative_matches(
    app: AppDep, who: Reader, narrative_id: str, p: Annotated[MatchParams, Query()]
) -> dict[str, Any]:
    """Matches only (plus paging)."""
    return narratives.narrative_detail(app, narrative_id, p).matches_dict()


@router.get("/matches/{match_id}", summary="One match with its evidence, reasons and verdict")
def match(app: AppDep, who: Reader, match_id: str) -> dict[str, Any]:
    """The stored match (rejected ones too) with its latest verdict and history; 404 if unknown."""
    return narratives.match_detail(app, match_id).as_dict()


@router.post("/matches/{match_id}/verdict", summary="Confirm or reject a match (analyst)")
def verdict(app: AppDep, who: Analyst, match_id: str, body: VerdictRequest) -> dict[str, Any]:
    """Record the verdict by the token's name (a later one replaces it); a rejected match never
    counts towards a detector again. 404 if unknown."""
    return narratives.record_verdict(app, match_id, body.verdict, analyst=who.name, note=body.note).as_dict()


@router.get("/verdicts", summary="Latest verdicts, newest first")
def verdicts(app: AppDep, who: Reader, p: Annotated[VerdictParams, Query()]) -> list[dict[str, Any]]:
    """Filtered by narrative and verdict."""
    found = narratives.verdicts(app, narrative_id=p.narrative, verdict=p.verdict, limit=p.limit)
    return [v.as_dict() for v in found]


@router.get("/verdicts/export", summary="Verdicts as gold JSONL (narratives eval/learn input)")
async def verdicts_export(app: AppDep, who: Reader, p: Annotated[VerdictParams, Query()]) -> Response:
    """One gold line per latest verdict (``narratives``, ``judged``, ``origin``...), newest first."""
    lines = await run_in_threadpool(narratives.verdict_gold, app, narrative_id=p.narrative, verdict=p.verdict)
    return Response(
        verdict_gold_text(lines),
        media_type="application/x-ndjson; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="narrawatch-verdicts.jsonl"'},
    )
