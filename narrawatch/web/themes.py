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
from narrawatch.read.params import PromoteRequest, ThemeParams
from narrawatch.web.page import User, form, page, params, require_analyst

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

AppDep = Annotated[App, Depends(get_app)]


@router.get("/themes")
def themes_page(request: Request, app: AppDep, who: User, promoted: str = "") -> Response:
    """Emerging themes of the window (default: the 7 days up to the newest stored document)."""
    error = ""
    found: list[dict[str, Any]] = []
    shown: dict[str, Any] = {}
    raw = {k: v for k, v in params(request).items() if k in ("since", "until", "min_size")}
    try:
        t = ThemeParams.model_validate(raw)
        w = themes.theme_window(app, t.since, t.until)
        shown = w.as_dict() | {"min_size": t.min_size}
        found = [th.as_dict() for th in themes.list_themes(app, w.since, w.until, min_size=t.min_size)]
    except ValidationError as exc:
        error = validation_message(exc)
    return page(
        request,
        "themes.html",
        who,
        title="Themes",
        themes=found,
        error=error,
        promoted=promoted,
        window=shown,
        query=raw,
    )


@router.post("/themes/{theme_id}/promote")
async def theme_promote(request: Request, app: AppDep, who: User, theme_id: str) -> Response:
    """Write the theme as a draft narrative (analyst); the page then shows where."""
    data = await form(request, who)
    require_analyst(who)
    try:
        req = PromoteRequest.model_validate(
            {k: v for k, v in data.items() if k in ("narrative_id", "since", "until", "min_size") and v}
        )
    except ValidationError as exc:
        raise HttpError(422, validation_message(exc)) from None
    done = await run_in_threadpool(
        lambda: themes.promote(app, theme_id, req.narrative_id, req.since, req.until, min_size=req.min_size)
    )
    return RedirectResponse("/themes?promoted=" + quote(str(done.path)), status_code=303)
