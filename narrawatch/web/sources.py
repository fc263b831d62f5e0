"""The sources page: crawl health of every source, failing first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from narrawatch.app import App
from narrawatch.http.session import get_app
from narrawatch.read import sources
from narrawatch.web.page import User, page

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

AppDep = Annotated[App, Depends(get_app)]


@router.get("/sources")
def sources_page(request: Request, app: AppDep, who: User) -> Response:
    """Per source: status, last success/error, failures in a row, items in 24 h, documents."""
    rows = [s.as_dict() for s in sources.source_health(app)]
    return page(request, "sources.html", who, title="Sources", sources=rows)
