"""The analysis half of a spread trace: copies, translations, first appearances, graph, timeline.

Pure functions over :class:`~monitors.spread_models.TraceItem` s in time order and an
item-by-item similarity matrix (the best passage-to-passage cosine of each pair of documents).

Edges point from the earlier item to the one that repeated it:

* ``link``: the later item links to the earlier item's URL (``Document.links``);
* ``forward``: a Telegram post forwarded from another traced item (``forwarded_from_url`` names
  the post, else ``forwarded_from``/the URL's channel names the outlet: its most similar earlier item);
* ``inferred`` (``inferred=True``), only for items without an explicit incoming edge: the earliest
  earlier item of *another* outlet within the window whose cosine reaches the trace threshold.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import networkx as nx
import numpy as np
import numpy.typing as npt

from core.documents import SearchFilters
from index.base import DocumentIndex
from monitors.copies import fingerprint_jaccard, normalize_outlet
from monitors.spread_models import (
    CopyGroup,
    FirstAppearances,
    Timeline,
    TraceEdge,
    TraceItem,
    TranslationGroup,
)

__all__ = [
    "Analysis",
    "analyse",
    "build_graph",
    "copy_groups",
    "explicit_edges",
    "first_appearances",
    "inferred_edges",
    "normalize_link",
    "pair_similarity_from_index",
    "timeline",
    "translation_groups",
]

Matrix = npt.NDArray[np.float32]

_TG_POST = re.compile(r"^t\.me/([a-z0-9_]+)(?:/\d+)?$")


@dataclass(frozen=True)
class Analysis:
    """What :func:`analyse` derives from the items."""

    copy_groups: tuple[CopyGroup, ...]
    translation_groups: tuple[TranslationGroup, ...]
    first: FirstAppearances
    edges: tuple[TraceEdge, ...]
    timeline: Timeline
    graph: nx.DiGraph


def normalize_link(url: str) -> str:
    """A URL reduced for comparison: no scheme, ``www.``, fragment or trailing slash; ``t.me/s/`` -> ``t.me/``."""
    u = url.strip().split("#", 1)[0].lower()
    for prefix in ("https://", "http://"):
        u = u.removeprefix(prefix)
    u = u.removeprefix("www.").replace("telegram.me/", "t.me/", 1)
    if u.startswith("t.me/s/"):
        u = "t.me/" + u[len("t.me/s/") :]
    return u.rstrip("/")


def _channel_key(name: str) -> str:
    """``t.me/rian_ru/123``, ``https://t.me/s/rian_ru``, ``@rian_ru`` -> ``rian_ru``; other names normalised."""
    norm = normalize_link(name)
    m = _TG_POST.match(norm)
    if m:
        return m.group(1)
    return normalize_outlet(name)


def pair_similarity_from_index(index: DocumentIndex, items: Sequence[TraceItem]) -> Matrix:
    """``S[i, j]``: the best cosine between any passage of item i and any passage of item j."""
    n = len(items)
    out = np.zeros((n, n), np.float32)
    if n == 0:
        return out
    pos = {it.document_id: i for i, it in enumerate(items)}
    pv = index.passage_vectors(SearchFilters(document_ids=tuple(pos)))
    owners = np.array([pos[d] for d in pv.document_ids], dtype=np.int64)
    if not len(owners):
        return out
    order = np.argsort(owners, kind="stable")
    owners, vectors = owners[order], pv.vectors[order]
    present, starts = np.unique(owners, return_index=True)
    sims = vectors @ vectors.T
    rows = np.maximum.reduceat(sims, starts, axis=0)
    both = np.maximum.reduceat(rows, starts, axis=1)
    out[np.ix_(present, present)] = both
    np.fill_diagonal(out, 1.0)
    return out


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def copy_groups(
    items: Sequence[TraceItem], threshold: float, forwards: Sequence[tuple[int, int]] = ()
) -> tuple[CopyGroup, ...]:
    """Groups of near-duplicate items (fingerprint Jaccard >= ``threshold``) and forwards; singletons omitted."""
    parent = list(range(len(items)))

    def union(i: int, j: int) -> None:
        ri, rj = _find(parent, i), _find(parent, j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)

    for j, b in enumerate(items):
        if not b.fingerprint:
            continue
        for i in range(j):
            if fingerprint_jaccard(items[i].fingerprint, b.fingerprint) >= threshold:
                union(i, j)
    for i, j in forwards:
        union(i, j)
    groups: dict[int, list[int]] = {}
    for i in range(len(items)):
        groups.setdefault(_find(parent, i), []).append(i)
    out = [
        CopyGroup(original=items[m[0]].document_id, copies=tuple(items[k].document_id for k in m[1:]))
        for m in groups.values()
        if len(m) > 1
    ]
    return tuple(out)


def translation_groups(items: Sequence[TraceItem], sims: Matrix, threshold: float) -> tuple[TranslationGroup, ...]:
    """Translations: items whose closest earlier item is in another language, with cosine >= threshold.

    An item closest to an earlier item in its own language derives from that (a copy or a
    paraphrase), not from a translation. A translation of a translation joins its root's group
    unless the root is in the item's own language. Items in ``und`` are never grouped.
    """
    root: dict[int, int] = {}
    members: dict[int, list[tuple[str, str, float]]] = {}
    for j, b in enumerate(items):
        earlier = [i for i in range(j) if items[i].published <= b.published]
        if b.language == "und" or not earlier:
            continue
        i = max(earlier, key=lambda k: (float(sims[k, j]), -k))
        a = items[i]
        if a.language in ("und", b.language) or sims[i, j] < threshold:
            continue
        r = root.get(i, i)
        if items[r].language == b.language:
            r = i
        root[j] = r
        members.setdefault(r, []).append((b.document_id, b.language, float(sims[i, j])))
    return tuple(
        TranslationGroup(original=items[r].document_id, language=items[r].language, translations=tuple(ts))
        for r, ts in sorted(members.items())
    )


def first_appearances(items: Sequence[TraceItem]) -> FirstAppearances:
    """Earliest item overall and per outlet, language and platform (``items`` in time order)."""
    by_outlet: dict[str, str] = {}
    by_language: dict[str, str] = {}
    by_platform: dict[str, str] = {}
    for it in items:
        by_outlet.setdefault(it.outlet, it.document_id)
        by_language.setdefault(it.language, it.document_id)
        by_platform.setdefault(it.platform, it.document_id)
    return FirstAppearances(
        overall=items[0].document_id if items else None,
        by_outlet=by_outlet,
        by_language=by_language,
        by_platform=by_platform,
    )


def _lag(a: TraceItem, b: TraceItem) -> float:
    return (b.published - a.published).total_seconds()


def explicit_edges(items: Sequence[TraceItem], sims: Matrix) -> list[TraceEdge]:
    """``link`` and ``forward`` edges between items (see the module docstring)."""
    by_url: dict[str, int] = {}
    by_channel: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        by_url.setdefault(normalize_link(it.url), i)
        for key in {_channel_key(it.outlet), _channel_key(it.url)}:
            if key:
                by_channel.setdefault(key, []).append(i)
    edges: dict[tuple[int, int], TraceEdge] = {}
    for j, b in enumerate(items):
        for link in b.links:
            k = by_url.get(normalize_link(link))
            if k is not None and k != j:
                edges[(k, j)] = TraceEdge(
                    items[k].document_id, b.document_id, "link", False, float(sims[k, j]), _lag(items[k], b), link
                )
        if not (b.forwarded_from or b.forwarded_from_url):
            continue
        src = by_url.get(normalize_link(b.forwarded_from_url)) if b.forwarded_from_url else None
        if src is None or src == j:
            keys = {_channel_key(x) for x in (b.forwarded_from, b.forwarded_from_url) if x}
            cands = {i for k in keys for i in by_channel.get(k, []) if i != j}
            earlier = [i for i in cands if items[i].published <= b.published] or sorted(cands)
            src = max(earlier, key=lambda i: (float(sims[i, j]), items[i].published), default=None)
        if src is not None and src != j:
            edges[(src, j)] = TraceEdge(
                items[src].document_id,
                b.document_id,
                "forward",
                False,
                float(sims[src, j]),
                _lag(items[src], b),
                b.forwarded_from_url or b.forwarded_from,
            )
    return list(edges.values())


def inferred_edges(
    items: Sequence[TraceItem],
    sims: Matrix,
    threshold: float,
    window: timedelta,
    explicit_targets: set[str],
    copy_threshold: float,
) -> list[TraceEdge]:
    """For each item without an explicit incoming edge: the earliest earlier close item of another outlet."""
    out: list[TraceEdge] = []
    for j, b in enumerate(items):
        if b.document_id in explicit_targets:
            continue
        outlet = normalize_outlet(b.outlet)
        for i in range(j):
            a = items[i]
            lag = b.published - a.published
            if lag <= timedelta(0) or lag > window or normalize_outlet(a.outlet) == outlet:
                continue
            if sims[i, j] < threshold:
                continue
            notes = [f"cosine {float(sims[i, j]):.3f}", f"{lag.total_seconds() / 3600:.1f} h later"]
            if a.fingerprint and fingerprint_jaccard(a.fingerprint, b.fingerprint) >= copy_threshold:
                notes.append("near-duplicate text")
            if a.language != b.language:
                notes.append(f"{a.language}->{b.language}")
            out.append(
                TraceEdge(
                    a.document_id,
                    b.document_id,
                    "inferred",
                    True,
                    float(sims[i, j]),
                    lag.total_seconds(),
                    "; ".join(notes),
                )
            )
            break
    return out


def build_graph(items: Sequence[TraceItem], edges: Sequence[TraceEdge]) -> nx.DiGraph:
    """A DiGraph over item document ids; node and edge attributes are plain str/float/bool (GEXF/GraphML-safe)."""
    g = nx.DiGraph()
    for it in items:
        g.add_node(
            it.document_id,
            label=(it.title or it.outlet or it.document_id)[:80],
            url=it.url,
            outlet=it.outlet,
            source=it.source_id,
            platform=it.platform,
            language=it.language,
            published=it.published.isoformat(),
            similarity=float(round(it.similarity, 4)),
            carried_by=" ".join(c.source_id for c in it.carriers),
        )
    for e in edges:
        g.add_edge(
            e.source,
            e.target,
            kind=e.kind,
            inferred=bool(e.inferred),
            similarity=float(round(e.similarity, 4)),
            lag_hours=float(round(e.lag_seconds / 3600, 3)),
            evidence=e.evidence,
        )
    return g


def _bucket(when: datetime, hourly: bool) -> datetime:
    return (
        when.replace(minute=0, second=0, microsecond=0)
        if hourly
        else when.replace(hour=0, minute=0, second=0, microsecond=0)
    )


def timeline(items: Sequence[TraceItem]) -> Timeline:
    """Counts per UTC day, or per hour when first to last item spans under 3 days; empty buckets kept."""
    if not items:
        return Timeline("day", (), (), {}, {})
    first, last = items[0].published, items[-1].published
    hourly = last - first < timedelta(days=3)
    step = timedelta(hours=1) if hourly else timedelta(days=1)
    starts: list[datetime] = []
    t = _bucket(first, hourly)
    while t <= last:
        starts.append(t)
        t += step
    pos = {s: k for k, s in enumerate(starts)}
    total = [0] * len(starts)
    by_outlet: dict[str, list[int]] = {}
    by_language: dict[str, list[int]] = {}
    for it in items:
        k = pos[_bucket(it.published, hourly)]
        total[k] += 1
        by_outlet.setdefault(it.outlet, [0] * len(starts))[k] += 1
        by_language.setdefault(it.language, [0] * len(starts))[k] += 1
    fmt = "%Y-%m-%dT%H:00Z" if hourly else "%Y-%m-%d"
    return Timeline(
        bucket="hour" if hourly else "day",
        labels=tuple(s.strftime(fmt) for s in starts),
        total=tuple(total),
        by_outlet={k: tuple(v) for k, v in by_outlet.items()},
        by_language={k: tuple(v) for k, v in by_language.items()},
    )


def analyse(
    items: Sequence[TraceItem],
    *,
    threshold: float,
    translation_threshold: float,
    copy_threshold: float,
    window: timedelta,
    pair_similarity: Matrix,
) -> Analysis:
    """Copies, translations, first appearances, edges, graph and timeline of items in time order."""
    pos = {it.document_id: i for i, it in enumerate(items)}
    explicit = explicit_edges(items, pair_similarity)
    forwards = [(pos[e.source], pos[e.target]) for e in explicit if e.kind == "forward"]
    inferred = inferred_edges(items, pair_similarity, threshold, window, {e.target for e in explicit}, copy_threshold)
    edges = tuple(sorted([*explicit, *inferred], key=lambda e: (pos[e.target], pos[e.source])))
    return Analysis(
        copy_groups=copy_groups(items, copy_threshold, forwards),
        translation_groups=translation_groups(items, pair_similarity, translation_threshold),
        first=first_appearances(items),
        edges=edges,
        timeline=timeline(items),
        graph=build_graph(items, edges),
    )
