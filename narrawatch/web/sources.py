"""The sources page: every source with its metadata (actor type, country, owner, platform, language,
tags) and crawl health, failing first; analysts add a source there (validated, checked with one
fetch, saved to ``<data_dir>/sources.d/analysts.yaml``: :mod:`narrawatch.source_add`)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from core.errors import InvalidRequestError
from core.settings import ACTOR_TYPES
from narrawatch.app import App
from narrawatch.http.session import get_app
from narrawatch.read import sources
from narrawatch.read.labels import ACTOR_LABELS
from narrawatch.source_add import add_source
from narrawatch.web.page import User, form, page, require_analyst

__all__ = ["ADD_KINDS", "router"]

router = APIRouter(include_in_schema=False)

AppDep = Annotated[App, Depends(get_app)]

ADD_KINDS = ("feed", "telegram", "site")
"""Kinds the add form offers (the others need keys the form does not ask for; the API takes any)."""
_FIELDS = ("kind", "address", "id", "outlet", "actor", "country", "owner", "language", "tags")


def _entry(data: dict[str, str]) -> dict[str, Any]:
    """The form's fields as a source entry (the address goes to the kind's key)."""
    kind = data.get("kind", "")
    entry: dict[str, Any] = {"kind": kind}
    address = data.get("address", "").strip()
    if kind == "telegram":
        channel = address.rstrip("/").rsplit("/", 1)[-1].lstrip("@") if address else ""
        entry["channel"] = channel
    elif kind == "site":
        entry["start_urls"] = [address] if address else []
    else:
        entry["url"] = address
    for key in ("id", "outlet", "actor", "country", "owner", "language"):
        value = data.get(key, "").strip()
        if value:
            entry[key] = value.upper() if key == "country" else value
    tags = [t.strip() for t in data.get("tags", "").replace(";", ",").split(",") if t.strip()]
    if tags:
        entry["tags"] = tags
    return entry


def _render(request: Request, app: App, who: Any, status: int = 200, **extra: Any) -> Response:
    rows = [s.as_dict() for s in sources.source_health(app)]
    return page(
        request,
        "sources.html",
        who,
        status=status,
        title="Sources",
        sources=rows,
        actors=[(a, ACTOR_LABELS.get(a, a)) for a in ACTOR_TYPES],
        add_kinds=ADD_KINDS,
        **{"form": {}, "add_error": "", "added": None, **extra},
    )


@router.get("/sources")
def sources_page(request: Request, app: AppDep, who: User) -> Response:
    """Per source: metadata, status, last success/error, failures in a row, items in 24 h, documents."""
    added = request.query_params.get("added")
    note = request.query_params.get("check", "")
    return _render(request, app, who, added={"id": added, "message": note[:300]} if added else None)


@router.post("/sources")
async def sources_add(request: Request, app: AppDep, who: User) -> Response:
    """Add a source (analyst): validate, check with one fetch, save; back to the page with the outcome."""
    data = await form(request, who)
    require_analyst(who)
    kept = {k: data.get(k, "")[:500] for k in _FIELDS}
    if kept["kind"] not in ADD_KINDS:
        return _render(request, app, who, 422, form=kept, add_error=f"kind must be one of {', '.join(ADD_KINDS)}")
    try:
        source, result = await run_in_threadpool(add_source, app, _entry(kept))
    except InvalidRequestError as exc:
        return _render(request, app, who, 422, form=kept, add_error=str(exc))
    query = urlencode({"added": source.id, "check": result.message if result else ""})
    return RedirectResponse(f"/sources?{query}", status_code=303)
