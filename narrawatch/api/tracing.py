"""Spread tracing and emerging themes for the API and the web pages (wraps monitors.spread / themes)."""

from __future__ import annotations

import importlib
import logging
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from core.errors import UnknownNameError
from narrawatch.api.context import ApiContext
from narrawatch.api.errors import ApiError
from narrawatch.api.schemas import TraceRequest

__all__ = [
    "EXPORT_FORMATS",
    "THEMES_CACHE_SECONDS",
    "graph_elements",
    "list_themes",
    "promote",
    "run_trace",
    "trace_export",
]

log = logging.getLogger(__name__)

EXPORT_FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson; charset=utf-8",
    "gexf": "application/xml; charset=utf-8",
    "graphml": "application/xml; charset=utf-8",
    "png": "image/png",
    "svg": "image/svg+xml",
}
THEMES_CACHE_SECONDS = 300.0
DEFAULT_THEME_WINDOW = timedelta(days=7)


def _module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ApiError(503, f"{name} is not available in this build: {exc}") from None


def _fn(names: tuple[str, ...], attr: str) -> Any:
    for name in names:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(mod, attr):
            return getattr(mod, attr)
    raise ApiError(503, f"{attr} is not available in this build")


def _query(req: TraceRequest) -> Any:
    models = _module("monitors.spread")
    from crawlers.normalize import canonical_url

    try:
        return models.TraceQuery(
            claim=(req.claim or "").strip(),
            url=canonical_url(req.url or ""),
            document_id=(req.document_id or "").strip(),
            narrative_id=(req.narrative_id or "").strip(),
            since=req.since,
            until=req.until,
            languages=tuple(req.languages),
            sources=tuple(req.sources),
            max_items=req.limit,
        )
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None


def _trace(ctx: ApiContext, req: TraceRequest) -> Any:
    spread = _module("monitors.spread")
    from crawlers.sightings import open_sightings, sightings_path

    narrative = None
    if req.narrative_id:
        try:
            narrative = ctx.catalogue.get(req.narrative_id.strip())
        except UnknownNameError:
            if req.narrative_id.strip() not in ctx.matches.narrative_ids():
                raise ApiError(404, f"unknown narrative {req.narrative_id!r}") from None
    query = _query(req)
    seen = open_sightings(sightings_path(ctx.config.data_dir), read_only=True)
    try:
        return spread.trace(
            ctx.app.index, ctx.app.embedder, query, matches=ctx.matches, narrative=narrative, sightings=seen
        )
    except UnknownNameError as exc:
        raise ApiError(404, str(exc)) from None
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None
    finally:
        seen.close()


def graph_elements(result: dict[str, Any]) -> dict[str, Any]:
    """Nodes (one per item) and edges of a trace, ready for the graph view."""
    first = result.get("first_appearances", {}).get("overall")
    copies = {c for g in result.get("copy_groups", []) for c in g.get("copies", [])}
    nodes = [
        {
            "id": it["document_id"],
            "label": it.get("outlet") or it.get("source") or it["document_id"],
            "language": it.get("language", ""),
            "platform": it.get("platform", ""),
            "published": it.get("published"),
            "first": it["document_id"] == first,
            "copy": it["document_id"] in copies,
            "carriers": [c.get("source", "") for c in it.get("carriers", [])],
        }
        for it in result.get("items", [])
    ]
    ids = {n["id"] for n in nodes}
    edges = [
        {"source": e["source"], "target": e["target"], "kind": e.get("kind", ""), "inferred": e.get("inferred", False)}
        for e in result.get("edges", [])
        if e.get("source") in ids and e.get("target") in ids
    ]
    return {"nodes": nodes, "edges": edges}


def run_trace(ctx: ApiContext, req: TraceRequest) -> dict[str, Any]:
    """The trace result as JSON, plus ``graph`` (nodes/edges) for drawing."""
    out: dict[str, Any] = _trace(ctx, req).as_dict()
    out["graph"] = graph_elements(out)
    return out


def trace_export(ctx: ApiContext, req: TraceRequest, fmt: str) -> bytes:
    """The trace as a file: items (csv, jsonl), graph (gexf, graphml) or timeline chart (png, svg)."""
    if fmt not in EXPORT_FORMATS:
        raise ApiError(422, f"format must be one of {', '.join(EXPORT_FORMATS)}")
    result = _trace(ctx, req)
    mods = ("monitors.spread_export", "monitors.spread")
    with tempfile.TemporaryDirectory(prefix="narrawatch-export-") as tmp:
        path = Path(tmp) / f"trace.{fmt}"
        if fmt == "csv":
            _fn(mods, "export_items_csv")(result, path)
        elif fmt == "jsonl":
            _fn(mods, "export_items_jsonl")(result, path)
        elif fmt in ("gexf", "graphml"):
            _fn(mods, "export_graph")(result, path, format=fmt)
        else:
            _fn(mods, "render_timeline")(result, path, format=fmt)
        return path.read_bytes()


_themes_lock = threading.Lock()
_themes_cache: dict[tuple[int, str, str], tuple[float, list[Any]]] = {}


def _discover(ctx: ApiContext, since: datetime | None, until: datetime | None) -> list[Any]:
    since = since or datetime.now(UTC) - DEFAULT_THEME_WINDOW
    key = (id(ctx), since.isoformat(timespec="minutes"), until.isoformat(timespec="minutes") if until else "")
    with _themes_lock:
        hit = _themes_cache.get(key)
        if hit and time.monotonic() - hit[0] < THEMES_CACHE_SECONDS:
            return hit[1]
    discover = _fn(("monitors.themes",), "discover_themes")
    themes: list[Any] = list(discover(ctx.app.index, since=since, until=until, matches=ctx.matches))
    with _themes_lock:
        _themes_cache[key] = (time.monotonic(), themes)
    return themes


def list_themes(ctx: ApiContext, since: datetime | None = None, until: datetime | None = None) -> list[dict[str, Any]]:
    """Clusters of recent passages no narrative matched (cached for a few minutes)."""
    return [t.as_dict() for t in _discover(ctx, since, until)]


def promote(ctx: ApiContext, theme_id: str, narrative_id: str, since: datetime | None = None) -> dict[str, Any]:
    """Write a draft narrative YAML from a theme into ``<data_dir>/narrative_drafts``; 404 if unknown."""
    themes = _discover(ctx, since, None)
    theme = next((t for t in themes if str(t.as_dict().get("id")) == theme_id), None)
    if theme is None:
        raise ApiError(404, f"no theme {theme_id!r} in the current window (themes are recomputed every few minutes)")
    if narrative_id in {n.id for n in ctx.catalogue.narratives}:
        raise ApiError(409, f"narrative {narrative_id!r} already exists in the catalogue")
    out_dir = ctx.config.data_dir / "narrative_drafts"
    path = _fn(("monitors.themes",), "promote_theme")(theme, narrative_id, out_dir)
    log.info("theme %s promoted to draft narrative %s at %s", theme_id, narrative_id, path)
    return {"theme_id": theme_id, "narrative_id": narrative_id, "path": str(path)}
