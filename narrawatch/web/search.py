"""The search page (the document page is :mod:`narrawatch.web.documents`)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError

from core.errors import QuerySyntaxError, UnknownFilterValue
from narrawatch.app import App
from narrawatch.http.errors import validation_message
from narrawatch.http.session import get_app
from narrawatch.read import search
from narrawatch.read.params import SearchParams
from narrawatch.web.page import User, export_query, page, params
from narrawatch.web.render import query_string

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

AppDep = Annotated[App, Depends(get_app)]

_MULTI = ("sources", "languages", "kinds", "outlets")
_FACET_PARAM = {"source": "sources", "language": "languages", "outlet": "outlets"}
_FACET_LABEL = {"source": "Source", "outlet": "Outlet", "language": "Language", "day": "Day"}
FACET_ITEMS = 12
"""Facet values shown per facet (days: the most recent ones)."""


def _facet_links(raw: dict[str, Any], facets: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each facet value as a link that narrows the search to it (or, when active, widens it again)."""
    out: list[dict[str, Any]] = []
    base = {k: v for k, v in raw.items() if k != "page"}
    for name in ("source", "outlet", "language", "day"):
        items = facets.get(name) or []
        if name == "day":
            items = items[-FACET_ITEMS:][::-1]
        links = []
        for item in items[:FACET_ITEMS]:
            value = str(item["value"])
            change: dict[str, Any]
            if name == "day":
                start = date.fromisoformat(value)
                active = raw.get("since") == value and raw.get("until") == (start + timedelta(days=1)).isoformat()
                change = (
                    {"since": None, "until": None}
                    if active
                    else {"since": value, "until": (start + timedelta(days=1)).isoformat()}
                )
            else:
                key = _FACET_PARAM[name]
                current = list(base.get(key) or [])
                active = value in current
                change = {key: [v for v in current if v != value] if active else [*current, value]}
            links.append(
                {"value": value, "count": item["count"], "active": active, "href": "?" + query_string(base, **change)}
            )
        if links:
            out.append({"name": name, "label": _FACET_LABEL[name], "values": links})
    return out


@router.get("/search")
def search_page(request: Request, app: AppDep, who: User) -> Response:
    """The search form and, with ``q``, a page of results with total, facets, sort and pages."""
    raw = params(request, _MULTI)
    result: dict[str, Any] | None = None
    error = ""
    status = 200
    if raw.get("q"):
        try:
            result = search.search(app, SearchParams.model_validate(raw)).as_dict()
        except ValidationError as exc:
            error = validation_message(exc)
            status = 422
        except (QuerySyntaxError, UnknownFilterValue) as exc:
            error = str(exc)
            status = 400
    try:
        langs = sorted(app.index.count("language"))
    except Exception:  # the form renders without the language list when the index does not answer
        langs = []
    return page(
        request,
        "search.html",
        who,
        status=status,
        title="Search",
        result=result,
        facets=_facet_links(raw, result["facets"]) if result else [],
        params=raw,
        error=error,
        languages=langs,
        sources=[s.id for s in app.config.sources],
        sorts=list(search.SORTS),
        export_query=export_query(raw),
    )
