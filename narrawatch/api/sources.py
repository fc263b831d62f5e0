"""``/api/v1/sources``: the sources with their metadata and crawl health; source lists in and out;
adding one source (analyst role; checked with one fetch first)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import Response

from core.errors import ConfigError, InvalidRequestError
from core.settings import load_config
from narrawatch.api.deps import Analyst, AppDep, Reader
from narrawatch.read import sources
from narrawatch.source_add import add_source
from narrawatch.source_lists import MAX_LIST_BYTES, apply_plan, export_csv, export_opml, plan_import

__all__ = ["router"]

router = APIRouter(prefix="/api/v1")

_EXAMPLE = {"kind": "feed", "url": "https://meduza.io/rss/all", "outlet": "Meduza", "actor": "exile_media"}


@router.get("/sources", summary="Every source: metadata (actor, country, owner, platform...) and crawl health")
def source_health(app: AppDep, who: Reader) -> list[dict[str, Any]]:
    """Per source, failing first: ``actor``/``actor_label``, ``country``, ``owner``, ``platform``,
    ``language``, ``tags``, ``outlet``, status, last success/error, failures in a row, items in 24 h,
    documents indexed."""
    return [s.as_dict() for s in sources.source_health(app)]


@router.get(
    "/sources/export",
    summary="Every configured source as CSV or OPML",
    responses={200: {"content": {"text/csv": {}, "text/x-opml": {}}}},
)
def export_sources(app: AppDep, who: Reader, format: Annotated[Literal["csv", "opml"], Query()] = "csv") -> Response:
    """CSV (metadata columns first, lists joined by ``;``) or OPML 2.0 (feeds as ``xmlUrl``, every
    source's definition as ``narrawatch:*`` attributes); both import back unchanged."""
    if format == "opml":
        return Response(export_opml(app.config.sources), media_type="text/x-opml; charset=utf-8")
    return Response(
        export_csv(app.config.sources),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="sources.csv"'},
    )


@router.post(
    "/sources/import",
    summary="Import a CSV or OPML source list (analyst); dry_run=true only reports",
    openapi_extra={"requestBody": {"content": {"text/csv": {}, "text/x-opml": {}}, "required": True}},
)
async def import_sources(
    request: Request,
    app: AppDep,
    who: Analyst,
    dry_run: Annotated[bool, Query()] = True,
    format: Annotated[Literal["csv", "opml"] | None, Query()] = None,
    name: Annotated[str, Query(max_length=200)] = "upload",
) -> dict[str, Any]:
    """The body is the list itself. Answers the plan: ``added``/``changed`` (YAML-ready entries),
    ``unchanged``, ``blocked`` (ids in the operator's files, duplicates of configured feeds) and
    ``issues`` (``file:row N: message``; any makes it 422 and nothing is written). Without
    ``dry_run`` the plan is written to ``<data_dir>/sources.d/imported.yaml``: ``written`` names it."""
    body = await request.body()
    if len(body) > MAX_LIST_BYTES:
        raise InvalidRequestError(f"list too large ({len(body)} bytes; at most {MAX_LIST_BYTES})")
    ctype = request.headers.get("content-type", "")
    if format is None and ("opml" in ctype or "xml" in ctype):
        format = "opml"
    plan = plan_import(app.config, body, name, format)
    if not plan.ok:
        raise InvalidRequestError("; ".join(str(i) for i in plan.issues[:20]))
    out = plan.as_dict()
    out["dry_run"] = dry_run
    out["written"] = None
    if not dry_run and (plan.added or plan.changed):
        try:
            out["written"] = str(apply_plan(app.config, plan))
        except ConfigError as exc:
            raise InvalidRequestError("; ".join(str(i) for i in exc.issues[:20])) from None
        app.reconfigure(load_config(app.config.root, require_sources=bool(app.config.sources)))
    return out


@router.post("/sources", summary="Add one source (analyst): validated, checked with one fetch, then saved")
def create_source(
    app: AppDep,
    who: Analyst,
    entry: Annotated[dict[str, Any], Body(examples=[_EXAMPLE])],
) -> dict[str, Any]:
    """The body is a source entry as in ``sources.yaml`` (``kind`` and its keys, plus ``id``,
    ``outlet``, ``actor``, ``country``, ``owner``, ``language``, ``tags``). 422 with the reason when it
    does not validate, its host is internal, or the one-fetch check fails (dead host, not a feed...)."""
    source, result = add_source(app, entry)
    return {
        "source": sources.source_metadata(source),
        "check": result.as_dict() if result else None,
        "saved": True,
    }
