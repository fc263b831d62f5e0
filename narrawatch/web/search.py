"""The search page and the document page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError

from narrawatch.app import App
from narrawatch.http.errors import validation_message
from narrawatch.http.session import get_app
from narrawatch.read import documents, search
from narrawatch.read.params import SearchParams
from narrawatch.web.page import User, export_query, page, params

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

AppDep = Annotated[App, Depends(get_app)]


@router.get("/search")
def search_page(request: Request, app: AppDep, who: User) -> Response:
    """The search form and, with ``q``, a page of ranked results."""
    raw = params(request, ("sources", "languages", "kinds"))
    result: dict[str, Any] | None = None
    error = ""
    if raw.get("q"):
        try:
            result = search.search(app, SearchParams.model_validate(raw)).as_dict()
        except ValidationError as exc:
            error = validation_message(exc)
    try:
        langs = sorted(app.index.count("language"))
    except Exception:  # the form renders without the language list when the index does not answer
        langs = []
    return page(
        request,
        "search.html",
        who,
        title="Search",
        result=result,
        params=raw,
        error=error,
        languages=langs,
        sources=[s.id for s in app.config.sources],
        export_query=export_query(raw),
    )


@router.get("/documents/{doc_id:path}")
def document_page(request: Request, app: AppDep, who: User, doc_id: str) -> Response:
    """One stored document with its passages."""
    doc = documents.document(app, doc_id).as_dict()
    return page(request, "document.html", who, title=doc["title"] or doc["id"], doc=doc)
