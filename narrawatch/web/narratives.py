"""Narratives overview, one narrative with its matches, and the match verdict form."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from narrawatch.app import App
from narrawatch.http.errors import HttpError, validation_message
from narrawatch.http.session import get_app
from narrawatch.read import narratives
from narrawatch.read.labels import label_items
from narrawatch.read.params import MatchParams, TimeRange, VerdictRequest
from narrawatch.web.page import User, form, page, params, require_analyst, safe_next, window

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

AppDep = Annotated[App, Depends(get_app)]


@router.get("/narratives")
def overview(request: Request, app: AppDep, who: User) -> Response:
    """Every narrative with counts and a daily timeline."""
    error = ""
    try:
        t = TimeRange.model_validate(window(request))
    except ValidationError as exc:
        error, t = validation_message(exc), TimeRange.model_validate({})
    rows = [n.as_dict() for n in narratives.narratives_overview(app, t.since, t.until)]
    for r in rows:
        label_items(app, r["latest"])
    charts = {r["id"]: r["timeline"] for r in rows}
    return page(request, "narratives.html", who, title="Narratives", narratives=rows, charts=charts, error=error)


@router.get("/narratives/{narrative_id}")
def narrative_page(request: Request, app: AppDep, who: User, narrative_id: str) -> Response:
    """One narrative: summary and a page of matches with verdict boxes."""
    raw = params(request, ("outlets", "languages"))
    try:
        p = MatchParams.model_validate(raw)
    except ValidationError as exc:
        raise HttpError(422, validation_message(exc)) from None
    n = narratives.narrative_detail(app, narrative_id, p).as_dict()
    label_items(app, n["matches"])
    return page(request, "narrative.html", who, title=n["title"], n=n, params=raw)


@router.post("/matches/{match_id}/verdict")
async def match_verdict(request: Request, app: AppDep, who: User, match_id: str) -> Response:
    """Confirm or reject a match (analyst), then back to the match on the page it was judged on."""
    data = await form(request, who)
    require_analyst(who)
    try:
        req = VerdictRequest.model_validate({"verdict": data.get("verdict", ""), "note": data.get("note", "")})
    except ValidationError as exc:
        raise HttpError(422, validation_message(exc)) from None
    await run_in_threadpool(narratives.record_verdict, app, match_id, req.verdict, analyst=who.name, note=req.note)
    back = safe_next(data.get("back", "/alerts"))
    return RedirectResponse(f"{back}#match-{match_id}" if "#" not in back else back, status_code=303)
