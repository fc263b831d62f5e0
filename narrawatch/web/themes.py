"""The themes page and the promote form (a theme becomes a draft narrative for review)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from narrawatch.app import App
from narrawatch.http.errors import HttpError, validation_message
from narrawatch.http.session import get_app
from narrawatch.read import themes
from narrawatch.read.params import PromoteRequest, TimeRange
from narrawatch.web.page import User, form, page, require_analyst, window

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

AppDep = Annotated[App, Depends(get_app)]


@router.get("/themes")
def themes_page(request: Request, app: AppDep, who: User, promoted: str = "") -> Response:
    """Emerging themes of the window (default: the last 7 days)."""
    error = ""
    found: list[dict[str, Any]] = []
    try:
        t = TimeRange.model_validate(window(request))
        found = [th.as_dict() for th in themes.list_themes(app, t.since, t.until)]
    except ValidationError as exc:
        error = validation_message(exc)
    return page(request, "themes.html", who, title="Themes", themes=found, error=error, promoted=promoted)


@router.post("/themes/{theme_id}/promote")
async def theme_promote(request: Request, app: AppDep, who: User, theme_id: str) -> Response:
    """Write the theme as a draft narrative (analyst); the page then shows where."""
    data = await form(request, who)
    require_analyst(who)
    try:
        req = PromoteRequest.model_validate({"narrative_id": data.get("narrative_id", "")})
    except ValidationError as exc:
        raise HttpError(422, validation_message(exc)) from None
    done = await run_in_threadpool(themes.promote, app, theme_id, req.narrative_id)
    return RedirectResponse("/themes?promoted=" + quote(str(done.path)), status_code=303)
