"""Exports of a spread trace: items as CSV/JSONL, the graph as GEXF/GraphML, the timeline as PNG/SVG.

The timeline is drawn with matplotlib's non-interactive Agg backend (no display needed). Scraped text
is neutralised on the way out (:mod:`core.safe_text`): CSV cells that a spreadsheet would run as a
formula are quoted with ``'`` and lose bidi controls; JSONL writes bidi controls as ``\\u202e`` escapes.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Literal

import networkx as nx

from core.markup import strip_markup_row
from core.safe_text import csv_cell, escape_bidi, strip_bidi_deep
from monitors.spread_models import TraceResult

__all__ = ["CSV_COLUMNS", "export_graph", "export_items_csv", "export_items_jsonl", "render_timeline"]

log = logging.getLogger(__name__)

CSV_COLUMNS = (
    "published",
    "document_id",
    "url",
    "title",
    "source",
    "outlet",
    "platform",
    "language",
    "similarity",
    "passage_index",
    "passage_text",
    "copy_of",
    "translation_of",
    "first_in",
    "carried_by",
)


def _roles(result: TraceResult) -> dict[str, dict[str, str]]:
    roles: dict[str, dict[str, str]] = {
        it.document_id: {
            "copy_of": "",
            "translation_of": "",
            "first_in": "",
            "carried_by": " ".join(c.source_id for c in it.carriers),
        }
        for it in result.items
    }
    for g in result.copy_groups:
        for c in g.copies:
            roles[c]["copy_of"] = g.original
    for t in result.translation_groups:
        for doc_id, _, _ in t.translations:
            roles[doc_id]["translation_of"] = t.original
    first = result.first
    marks: dict[str, list[str]] = {}
    if first.overall:
        marks.setdefault(first.overall, []).append("overall")
    for prefix, table in (
        ("outlet", first.by_outlet),
        ("language", first.by_language),
        ("platform", first.by_platform),
    ):
        for key, doc_id in table.items():
            marks.setdefault(doc_id, []).append(f"{prefix}:{key}")
    for doc_id, m in marks.items():
        roles[doc_id]["first_in"] = " ".join(m)
    return roles


def export_items_csv(result: TraceResult, path: Path | str) -> Path:
    """Write one CSV row per item (UTF-8, header :data:`CSV_COLUMNS`, time order, cells neutralised)."""
    path = Path(path)
    roles = _roles(result)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        w.writeheader()
        for it in result.items:
            d = it.as_dict()
            row = {k: d.get(k, "") for k in CSV_COLUMNS} | roles[it.document_id]
            w.writerow({k: csv_cell(v) for k, v in strip_markup_row(row).items()})
    return path


def export_items_jsonl(result: TraceResult, path: Path | str) -> Path:
    """Write one JSON object per item (``TraceItem.as_dict()`` plus copy/translation/first roles)."""
    path = Path(path)
    roles = _roles(result)
    with path.open("w", encoding="utf-8") as fh:
        for it in result.items:
            fh.write(escape_bidi(json.dumps(it.as_dict() | roles[it.document_id], ensure_ascii=False)) + "\n")
    return path


def _inert_graph(graph: nx.DiGraph) -> nx.DiGraph:
    """A copy whose attribute strings carry no bidi controls (Gephi shows titles and outlets)."""
    out = graph.copy()
    out.graph.update(strip_bidi_deep(dict(out.graph)))
    for _, data in out.nodes(data=True):
        data.update(strip_bidi_deep(dict(data)))
    for *_, data in out.edges(data=True):
        data.update(strip_bidi_deep(dict(data)))
    return out


def export_graph(result: TraceResult, path: Path | str, format: Literal["gexf", "graphml"] = "gexf") -> Path:
    """Write the propagation graph as GEXF (Gephi) or GraphML with networkx's writers."""
    path = Path(path)
    graph = _inert_graph(result.graph)
    if format == "gexf":
        nx.write_gexf(graph, path)
    elif format == "graphml":
        nx.write_graphml(graph, path)
    else:
        raise ValueError(f"unknown graph format {format!r} (gexf, graphml)")
    return path


def render_timeline(
    result: TraceResult, path: Path | str, format: Literal["png", "svg"] = "png", *, top_outlets: int = 8
) -> Path:
    """Draw items per bucket, stacked by outlet (top ``top_outlets`` + other) and by language."""
    if format not in ("png", "svg"):
        raise ValueError(f"unknown image format {format!r} (png, svg)")
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure  # Figure without pyplot: no global state, thread-safe

    path = Path(path)
    tl = result.timeline
    fig = Figure(figsize=(10, 6), dpi=100)
    ax_outlet, ax_lang = fig.subplots(2, 1, sharex=True)
    x = list(range(len(tl.labels)))
    ranked = sorted(tl.by_outlet.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
    series = ranked[:top_outlets]
    rest = ranked[top_outlets:]
    if rest:
        other = tuple(sum(v[k] for _, v in rest) for k in range(len(x)))
        series.append((f"other ({len(rest)})", other))
    for ax, groups, title in (
        (ax_outlet, series, "by outlet"),
        (ax_lang, sorted(tl.by_language.items()), "by language"),
    ):
        bottom = [0] * len(x)
        for name, counts in groups:
            ax.bar(x, counts, bottom=bottom, label=name or "?", width=0.85)
            bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
        ax.set_ylabel(f"items per {tl.bucket}")
        ax.set_title(title, fontsize=10, loc="left")
        if groups:
            ax.legend(fontsize=7, loc="upper right")
    step = max(1, len(x) // 12)
    ax_lang.set_xticks(x[::step], [tl.labels[k] for k in x[::step]], rotation=30, ha="right", fontsize=7)
    what = result.query.claim or result.query.url or result.query.document_id or result.query.narrative_id
    fig.suptitle(f"Spread: {what[:90]} ({len(result.items)} items)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format=format)
    log.info("timeline written to %s", path)
    return path
