"""The trace page: a claim, URL, document or narrative across outlets, languages and time."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError

from core.errors import InvalidRequestError, NotFoundError
from narrawatch.app import App
from narrawatch.http.errors import validation_message
from narrawatch.http.session import get_app
from narrawatch.read import trace
from narrawatch.read.params import TraceRequest
from narrawatch.web.page import User, export_query, page, params

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

AppDep = Annotated[App, Depends(get_app)]


@router.get("/trace")
def trace_page(request: Request, app: AppDep, who: User) -> Response:
    """The trace form and, with a subject, the timeline, graph and items."""
    raw = params(request, ("languages", "sources"))
    result: dict[str, Any] | None = None
    error = ""
    if any(raw.get(k) for k in ("claim", "url", "document_id", "narrative_id")):
        try:
            result = trace.trace(app, TraceRequest.model_validate(raw)).as_dict()
        except ValidationError as exc:
            error = validation_message(exc)
        except (NotFoundError, InvalidRequestError) as exc:  # shown on the form, not as an error page
            error = str(exc)
    items = {it["document_id"]: it for it in (result or {}).get("items", [])}
    return page(
        request,
        "trace.html",
        who,
        title="Trace",
        result=result,
        items=items,
        params=raw,
        error=error,
        narratives=[(n.id, n.title) for n in app.catalogue.narratives],
        export_query=export_query(raw),
    )
