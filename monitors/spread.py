"""Spread tracing: where a claim, document or narrative appeared, who repeated it, in which languages.

:func:`trace` works on any :class:`~index.base.DocumentIndex` backend. It turns the query into
seed vectors (a claim embedded with ``embed_query``; a document's own passage vectors; a
narrative's exemplars or matched passages), recalls candidates with semantic search, re-scores
them exactly from their passage vectors, and keeps documents whose best passage reaches the
similarity threshold. :mod:`monitors.spread_graph` then groups copies and translations, finds
first appearances, builds the propagation graph and the timeline; :mod:`monitors.spread_export`
writes CSV, JSONL, GEXF, GraphML, PNG and SVG.

Thresholds are cosines in one embedding space; see :data:`SPACE_DEFAULTS` and docs/trace.md.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from core.documents import (
    Document,
    EmbeddingSpace,
    SearchFilters,
    SearchQuery,
    Vectors,
    document_id_for_telegram,
    document_id_for_url,
)
from core.errors import UnknownNameError
from core.sightings import SightingLookup
from index.base import DocumentIndex, in_filters
from index.embed import Embedder, normalize_rows
from monitors.catalogue import Narrative
from monitors.spread_export import export_graph, export_items_csv, export_items_jsonl, render_timeline
from monitors.spread_graph import analyse, pair_similarity_from_index
from monitors.spread_models import (
    CopyGroup,
    FirstAppearances,
    Timeline,
    TraceEdge,
    TraceItem,
    TraceQuery,
    TraceResult,
    TranslationGroup,
    platform_of,
)
from monitors.store import MatchStore

__all__ = [
    "SPACE_DEFAULTS",
    "CopyGroup",
    "FirstAppearances",
    "SpaceDefaults",
    "Timeline",
    "TraceEdge",
    "TraceItem",
    "TraceQuery",
    "TraceResult",
    "TranslationGroup",
    "default_thresholds",
    "export_graph",
    "export_items_csv",
    "export_items_jsonl",
    "platform_of",
    "render_timeline",
    "trace",
    "url_document_ids",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpaceDefaults:
    """Default cosine thresholds of one embedding space."""

    claim: float
    """A short claim (or narrative exemplar) embedded as a query vs a passage: the item threshold."""
    document: float
    """Passage vs passage (document/URL seeds, and item-to-item closeness for inferred edges)."""
    translation: float
    """Passage vs passage in another language: a translation."""


SPACE_DEFAULTS: dict[str, SpaceDefaults] = {
    "google/universal-sentence-encoder-multilingual/3": SpaceDefaults(claim=0.45, document=0.60, translation=0.70),
    "intfloat/multilingual-e5-small": SpaceDefaults(claim=0.84, document=0.88, translation=0.90),
    "hashing": SpaceDefaults(claim=0.30, document=0.50, translation=0.90),
}
"""Embedding model -> default thresholds (see docs/trace.md for the measurements).

use-multilingual-v3, on 917 real Russian Telegram posts of two days: passage pairs from
different channels have a 99th percentile of 0.455 and are mostly the same story from 0.60;
389 real headlines as claims vs other channels' posts: 99.5th percentile 0.39, same story
mostly from 0.45-0.50. True translations average 0.79 (docs/embedding.md). The e5 numbers only
follow its compressed scale (unrelated text ~0.76, translations ~0.88) and are uncalibrated.
"""

_FALLBACK = SpaceDefaults(claim=0.45, document=0.60, translation=0.70)
_MAX_SEEDS = 32


def default_thresholds(space: EmbeddingSpace) -> SpaceDefaults:
    """Default thresholds of an embedding space (:data:`SPACE_DEFAULTS`, else use-multilingual-v3's)."""
    return SPACE_DEFAULTS.get(space.model, _FALLBACK)


# -- seeds --------------------------------------------------------------------------------------

_TG_URL = re.compile(r"^(?:https?://)?(?:www\.)?t(?:elegram)?\.me/(?:s/)?([A-Za-z0-9_]{3,})/(\d+)/?(?:[?#].*)?$")


def url_document_ids(url: str) -> list[str]:
    """Candidate document ids for a URL: the Telegram post id, then the id of simple URL variants.

    Crawlers canonicalise URLs before hashing (``crawlers.normalize.canonical_url``); callers
    that can should pass the canonical URL. Variants tried: as given, without fragment, without
    trailing slash, http/https, with/without ``www.``.
    """
    url = url.strip()
    out: list[str] = []
    m = _TG_URL.match(url)
    if m:
        out.append(document_id_for_telegram(m.group(1), int(m.group(2))))
    base = url.split("#", 1)[0]
    variants = {url, base, base.rstrip("/"), base.rstrip("/") + "/"}
    for v in list(variants):
        for a, b in (("http://", "https://"), ("https://", "http://"), ("://www.", "://"), ("://", "://www.")):
            if a in v:
                variants.add(v.replace(a, b, 1))
    out.extend(document_id_for_url(v) for v in sorted(variants))
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class _Seeds:
    vectors: Vectors
    seed_document: Document | None = None
    fixed: dict[str, float] = field(default_factory=dict)
    """Documents that are items whatever their cosine (the seed document, a narrative's matches)."""


def _resolve_document(index: DocumentIndex, query: TraceQuery) -> Document:
    ids = [query.document_id.strip()] if query.document_id.strip() else url_document_ids(query.url)
    for doc_id in ids:
        doc = index.get(doc_id)
        if doc is not None:
            return doc
    raise UnknownNameError("document", query.document_id or query.url, ())


def _seeds(
    index: DocumentIndex,
    embedder: Embedder,
    query: TraceQuery,
    matches: MatchStore | None,
    narrative: Narrative | None,
) -> _Seeds:
    dim = index.embedding_space.dim
    if query.claim.strip():
        return _Seeds(vectors=normalize_rows(embedder.embed_query(query.claim.strip())))
    if query.narrative_id.strip():
        nid = query.narrative_id.strip()
        fixed: dict[str, float] = {}
        ms = (
            matches.matches(nid, since=query.since, until=query.until, languages=query.languages or None)
            if matches is not None
            else []
        )
        for m in ms:
            if query.sources and m.source_id not in query.sources:
                continue
            fixed[m.document_id] = max(fixed.get(m.document_id, -1.0), m.similarity)
        if narrative is not None:
            texts = [t for _, t in narrative.all_exemplars()][:_MAX_SEEDS]
            vecs = normalize_rows(np.stack([embedder.embed_query(t) for t in texts]))
        elif ms:
            # No exemplars at hand: the best matched passages stand in for them.
            best = sorted(ms, key=lambda m: -m.score)[:_MAX_SEEDS]
            vecs = _passage_rows(index, [(m.document_id, m.passage_index) for m in best], dim)
        elif matches is None:
            raise ValueError("tracing a narrative needs a MatchStore or the Narrative (exemplars)")
        else:
            vecs = np.zeros((0, dim), np.float32)
        return _Seeds(vectors=vecs, fixed=fixed)
    doc = _resolve_document(index, query)
    pv = index.passage_vectors(SearchFilters(document_ids=(doc.id,)))
    vecs = pv.vectors[:_MAX_SEEDS] if len(pv) else np.zeros((0, dim), np.float32)
    return _Seeds(vectors=vecs, seed_document=doc, fixed={doc.id: 1.0})


def _passage_rows(index: DocumentIndex, wanted: Sequence[tuple[str, int]], dim: int) -> Vectors:
    pv = index.passage_vectors(SearchFilters(document_ids=tuple(dict.fromkeys(d for d, _ in wanted))))
    pos = {(d, p): i for i, (d, p) in enumerate(zip(pv.document_ids, pv.passage_indexes, strict=True))}
    rows = [pos[w] for w in wanted if w in pos]
    return pv.vectors[rows] if rows else np.zeros((0, dim), np.float32)


# -- recall and exact scoring ---------------------------------------------------------------------


def _candidates(index: DocumentIndex, seeds: Vectors, query: TraceQuery, threshold: float) -> set[str]:
    found: set[str] = set()
    k = query.max_items * 2
    for v in seeds:
        hits = index.search(SearchQuery(vector=v, k=k, mode="semantic", filters=query.filters, group_by_document=True))
        # Backends report cosine in semantic_score; a small margin lets exact re-scoring decide.
        found.update(h.document_id for h in hits if (h.semantic_score or h.score) >= threshold - 0.02)
    return found


@dataclass(frozen=True)
class _Scored:
    similarity: float
    passage_index: int


def _score(index: DocumentIndex, seeds: Vectors, doc_ids: Sequence[str]) -> dict[str, _Scored]:
    """Exact best-passage cosine of each document against the seeds."""
    out: dict[str, _Scored] = {}
    if not doc_ids or not len(seeds):
        return out
    pv = index.passage_vectors(SearchFilters(document_ids=tuple(doc_ids)))
    if not len(pv):
        return out
    sims = (pv.vectors @ seeds.T).max(axis=1)
    for d, p, s in zip(pv.document_ids, pv.passage_indexes, sims.tolist(), strict=True):
        cur = out.get(d)
        if cur is None or s > cur.similarity:
            out[d] = _Scored(float(s), int(p))
    return out


def _item(doc: Document, scored: _Scored | None, fixed: float | None) -> TraceItem:
    sim = scored.similarity if scored is not None else (fixed or 0.0)
    pidx = scored.passage_index if scored is not None else 0
    text = next((p.text for p in doc.passages if p.index == pidx), doc.passages[0].text if doc.passages else "")
    return TraceItem(
        document_id=doc.id,
        url=doc.url,
        title=doc.title,
        source_id=doc.source_id,
        outlet=doc.outlet,
        platform=platform_of(doc.kind),
        kind=doc.kind,
        language=doc.language,
        published=doc.published,
        similarity=max(sim, fixed) if fixed is not None else sim,
        passage_index=pidx,
        passage_text=text,
        links=doc.links,
        forwarded_from=doc.forwarded_from,
        forwarded_from_url=str(doc.extra.get("forwarded_from_url", "") or ""),
        fingerprint=doc.fingerprint,
    )


def trace(
    index: DocumentIndex,
    embedder: Embedder,
    query: TraceQuery,
    *,
    matches: MatchStore | None = None,
    narrative: Narrative | None = None,
    sightings: SightingLookup | None = None,
) -> TraceResult:
    """Trace a claim, URL, document or narrative through the index; see the module docstring.

    With ``sightings``, each item lists the other sources that carried its URL
    (:attr:`TraceItem.carriers`, earliest first): a second feed linking to an outlet's article
    is shown as a carrier of that outlet's record, never as its author.

    Raises :class:`~core.errors.UnknownNameError` when a URL or document id is not indexed and
    ``ValueError`` for a narrative query with neither ``matches`` nor ``narrative``.
    """
    space = index.embedding_space
    defaults = default_thresholds(space)
    seeds = _seeds(index, embedder, query, matches, narrative)
    by_claim = seeds.seed_document is None and (bool(query.claim.strip()) or narrative is not None)
    threshold = query.threshold if query.threshold is not None else (defaults.claim if by_claim else defaults.document)
    edge_threshold = query.edge_threshold if query.edge_threshold is not None else defaults.document
    translation = query.translation_threshold if query.translation_threshold is not None else defaults.translation
    cand = _candidates(index, seeds.vectors, query, threshold) | set(seeds.fixed)
    scored = _score(index, seeds.vectors, sorted(cand))
    keep: list[tuple[float, str]] = []
    for doc_id in cand:
        s = scored.get(doc_id)
        fixed = seeds.fixed.get(doc_id)
        sim = max(s.similarity if s else -1.0, fixed if fixed is not None else -1.0)
        if fixed is not None or sim >= threshold:
            keep.append((sim, doc_id))
    keep.sort(key=lambda t: (-t[0], t[1]))
    truncated = len(keep) > query.max_items
    items: list[TraceItem] = []
    filters = query.filters
    for _, doc_id in keep[: query.max_items]:
        doc = index.get(doc_id)
        if doc is None:
            continue
        # Fixed items (a narrative's matches) bypassed search filters; the seed document always stays.
        is_seed = seeds.seed_document is not None and doc_id == seeds.seed_document.id
        if doc_id in seeds.fixed and not is_seed and not in_filters(doc, filters):
            continue
        items.append(_item(doc, scored.get(doc_id), seeds.fixed.get(doc_id)))
    items.sort(key=lambda it: (it.published, it.document_id))
    if sightings is not None and items:
        seen = sightings.for_documents([it.document_id for it in items])
        items = [
            replace(it, carriers=tuple(c for c in seen.get(it.document_id, ()) if c.source_id != it.source_id))
            for it in items
        ]
    log.info(
        "trace: %d seeds, %d candidates, %d items (threshold %.2f)",
        len(seeds.vectors),
        len(cand),
        len(items),
        threshold,
    )
    a = analyse(
        items,
        threshold=edge_threshold,
        translation_threshold=translation,
        copy_threshold=query.copy_threshold,
        window=query.edge_window,
        pair_similarity=pair_similarity_from_index(index, items),
    )
    return TraceResult(
        query=query,
        model=space.key,
        threshold=threshold,
        edge_threshold=edge_threshold,
        translation_threshold=translation,
        items=tuple(items),
        copy_groups=a.copy_groups,
        translation_groups=a.translation_groups,
        first=a.first,
        edges=a.edges,
        timeline=a.timeline,
        graph=a.graph,
        seed_document_id=seeds.seed_document.id if seeds.seed_document else None,
        truncated=truncated,
    )
