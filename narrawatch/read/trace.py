"""Spread tracing: a claim, URL, document or narrative through the index (wraps
:mod:`monitors.spread`), its export files and the graph the trace page draws."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from core.errors import InvalidRequestError, NotFoundError, UnknownNameError
from crawlers.normalize import canonical_url
from crawlers.sightings import NoSightings, SightingStore, sightings_path
from monitors.catalogue import Narrative
from monitors.spread import (
    TraceQuery,
    TraceResult,
    export_graph,
    export_items_csv,
    export_items_jsonl,
    render_timeline,
)
from monitors.spread import trace as _trace
from narrawatch.app import App
from narrawatch.read.history import History, histories
from narrawatch.read.params import TraceRequest

__all__ = [
    "EXPORT_FORMATS",
    "ExportFormat",
    "TraceView",
    "export_bytes",
    "graph_elements",
    "grouped_graph",
    "query_for",
    "trace",
    "write_exports",
]

ExportFormat = Literal["csv", "jsonl", "gexf", "graphml", "png", "svg"]
EXPORT_FORMATS: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson; charset=utf-8",
    "gexf": "application/xml; charset=utf-8",
    "graphml": "application/xml; charset=utf-8",
    "png": "image/png",
    "svg": "image/svg+xml",
}
"""Export formats and their media types."""
EXPORT_FILES: dict[str, str] = {
    "csv": "items.csv",
    "jsonl": "items.jsonl",
    "gexf": "graph.gexf",
    "graphml": "graph.graphml",
    "png": "timeline.png",
    "svg": "timeline.svg",
}


def graph_elements(result: dict[str, Any]) -> dict[str, Any]:
    """Nodes (one per item) and edges of a trace (its ``as_dict``), ready for the graph view."""
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
            "versions": it.get("versions", 0),
            "deleted": it.get("deleted"),
        }
        for it in result.get("items", [])
    ]
    ids = {n["id"] for n in nodes}
    edges = [
        {"source": e["source"], "target": e["target"], "kind": e.get("kind", ""), "inferred": e.get("inferred", False)}
        for e in result.get("edges", [])
        if e.get("source") in ids and e.get("target") in ids
    ]
    return {"nodes": nodes, "edges": edges, "grouped": grouped_graph(nodes, edges, result.get("copy_groups", []))}


def grouped_graph(
    nodes: list[dict[str, Any]], edges: list[dict[str, Any]], copy_groups: list[dict[str, Any]]
) -> dict[str, Any]:
    """The graph with each copy group drawn as ONE node (the original's id, ``count`` members,
    the copies' outlets and times) and edges between groups merged (``weight``; ``inferred`` only
    when every merged edge was). What keeps a trace of a forwarded post readable at 60+ items."""
    by_id = {n["id"]: n for n in nodes}
    owner: dict[str, str] = {}
    for g in copy_groups:
        members = [m for m in (g.get("original"), *g.get("copies", [])) if m in by_id]
        if not members:
            continue
        members.sort(key=lambda m: (by_id[m].get("published") or "", m))
        for m in members:
            owner.setdefault(m, members[0])
    members_of: dict[str, list[str]] = {}
    for n in nodes:
        members_of.setdefault(owner.get(n["id"], n["id"]), []).append(n["id"])
    out_nodes = []
    for head, members in members_of.items():
        lead = by_id[head]
        members.sort(key=lambda m: (by_id[m].get("published") or "", m))
        outlets = list(dict.fromkeys(by_id[m]["label"] for m in members))
        out_nodes.append(
            {
                "id": head,
                "label": lead["label"],
                "language": lead.get("language", ""),
                "published": lead.get("published"),
                "last": by_id[members[-1]].get("published"),
                "count": len(members),
                "members": members,
                "outlets": outlets,
                "first": any(by_id[m].get("first") for m in members),
                "copy": len(members) > 1,
                "deleted": bool(lead.get("deleted")),
            }
        )
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for e in edges:
        a, b = owner.get(e["source"], e["source"]), owner.get(e["target"], e["target"])
        if a == b:
            continue
        cur = merged.get((a, b))
        if cur is None:
            merged[(a, b)] = {"source": a, "target": b, "kind": e["kind"], "inferred": e["inferred"], "weight": 1}
        else:
            cur["weight"] += 1
            cur["inferred"] = cur["inferred"] and e["inferred"]
    return {"nodes": out_nodes, "edges": list(merged.values())}


@dataclass(frozen=True)
class TraceView:
    """A trace result as the surfaces show it."""

    result: TraceResult
    history: dict[str, History] = field(default_factory=dict)
    """Versions and deletion per item (:mod:`narrawatch.read.history`)."""

    def as_dict(self) -> dict[str, Any]:
        """The trace (:meth:`monitors.spread.TraceResult.as_dict`), each item with its ``versions``,
        ``edited`` and ``deleted``, plus ``graph`` (nodes/edges)."""
        out: dict[str, Any] = self.result.as_dict()
        for it in out.get("items", []):
            it.update(self.history.get(it["document_id"], History()).as_dict())
        out["graph"] = graph_elements(out)
        return out


def query_for(req: TraceRequest) -> TraceQuery:
    """The :class:`~monitors.spread.TraceQuery` of a validated request (URLs canonicalised)."""
    try:
        return TraceQuery(
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
        raise InvalidRequestError(str(exc)) from None


def _narrative(app: App, narrative_id: str) -> Narrative | None:
    if not narrative_id:
        return None
    try:
        return app.catalogue.get(narrative_id)
    except UnknownNameError:
        if narrative_id not in app.matches.narrative_ids():
            raise NotFoundError(f"unknown narrative {narrative_id!r}") from None
        return None  # matches stored for a narrative since removed from the catalogue


def trace(app: App, query: TraceQuery | TraceRequest) -> TraceView:
    """Trace ``query``; :class:`~core.errors.NotFoundError` for an unknown narrative, URL or
    document, :class:`~core.errors.InvalidRequestError` for a query that cannot be answered."""
    q = query_for(query) if isinstance(query, TraceRequest) else query
    narrative = _narrative(app, q.narrative_id.strip())
    # A read-only App (serve) must not create the sightings file; before the first crawl there is none.
    path = sightings_path(app.config.data_dir)
    use_store = not app.read_only or app.is_open("sightings") or path.exists()
    seen: SightingStore | NoSightings = app.sightings if use_store else NoSightings()
    try:
        result = _trace(app.index, app.embedder, q, matches=app.matches, narrative=narrative, sightings=seen)
    except UnknownNameError as exc:
        raise NotFoundError(str(exc)) from None
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from None
    return TraceView(result, histories(app, [it.document_id for it in result.items]))


def _write(result: TraceResult, fmt: str, path: Path) -> None:
    if fmt == "csv":
        export_items_csv(result, path)
    elif fmt == "jsonl":
        export_items_jsonl(result, path)
    elif fmt == "gexf":
        export_graph(result, path, format="gexf")
    elif fmt == "graphml":
        export_graph(result, path, format="graphml")
    elif fmt == "png":
        render_timeline(result, path, format="png")
    elif fmt == "svg":
        render_timeline(result, path, format="svg")
    else:
        raise InvalidRequestError(f"format must be one of {', '.join(EXPORT_FORMATS)}")


def export_bytes(view: TraceView, fmt: str) -> bytes:
    """The trace as one file: items (csv, jsonl), graph (gexf, graphml) or timeline chart (png, svg)."""
    if fmt not in EXPORT_FORMATS:
        raise InvalidRequestError(f"format must be one of {', '.join(EXPORT_FORMATS)}")
    with tempfile.TemporaryDirectory(prefix="narrawatch-export-") as tmp:
        path = Path(tmp) / f"trace.{fmt}"
        _write(view.result, fmt, path)
        return path.read_bytes()


def write_exports(view: TraceView, out_dir: Path) -> list[Path]:
    """Every export format into ``out_dir`` (items.csv, items.jsonl, graph.gexf, graph.graphml,
    timeline.png, timeline.svg); returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt, name in EXPORT_FILES.items():
        _write(view.result, fmt, out_dir / name)
        paths.append(out_dir / name)
    return paths
