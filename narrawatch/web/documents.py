"""The document page: one stored document with its matches, reach, copies, sightings and versions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from narrawatch.app import App
from narrawatch.http.session import get_app
from narrawatch.read import documents
from narrawatch.read.labels import label_items
from narrawatch.web.page import User, page

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

AppDep = Annotated[App, Depends(get_app)]


@router.get("/documents/{doc_id:path}")
async def document_page(request: Request, app: AppDep, who: User, doc_id: str) -> Response:
    """One stored document: text (markup rendered), reach, matches with verdicts, copies,
    sightings, versions and deletion."""
    doc = (await run_in_threadpool(documents.document, app, doc_id)).as_dict()
    label_items(app, [doc])
    ctx = (await run_in_threadpool(documents.document_context, app, doc_id)).as_dict()
    return page(
        request,
        "document.html",
        who,
        title=doc["title"] or doc["id"],
        doc=doc,
        matches=ctx["matches"],
        copies=ctx["copies"],
        sightings=ctx["sightings"],
    )
