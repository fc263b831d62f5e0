"""One stored document (the document page, ``GET /api/v1/documents/{id}``): its passages, versions
and deletion, and with :func:`document_context` what analysts ask next: its matches (narrative,
score, verdict), its reach (views, forwards, reactions when the platform reports them), the
copies of its text and the sources that carried its URL (sightings)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from core.documents import Document
from core.errors import InvalidRequestError, NotFoundError
from core.evidence import Version
from core.matches import match_id
from core.timefmt import iso_utc
from crawlers.sightings import sightings_path
from monitors.spread import TraceQuery
from monitors.spread import trace as _trace
from monitors.verdicts import verdicts_for
from narrawatch.app import App
from narrawatch.read.history import NO_HISTORY, History, deletion_dict, histories, version_dicts, versions_of
from narrawatch.read.labels import label_items, source_labels
from narrawatch.read.narratives import MatchView

__all__ = ["DocumentContext", "DocumentView", "document", "document_context", "reach_of"]

log = logging.getLogger(__name__)

COPIES_TRACE_ITEMS = 200
"""How many similar documents the copy lookup of :func:`document_context` considers."""


@dataclass(frozen=True)
class DocumentView:
    """A stored document as the surfaces show it."""

    doc: Document
    versions: tuple[Version, ...] = ()
    """Every kept version of the text, version 1 first (re-checks add one per edit)."""
    history: History = NO_HISTORY

    def as_dict(self) -> dict[str, Any]:
        """Metadata, full text, passages (``index``, ``start``, ``text``), versions and deletion."""
        doc = self.doc
        return {
            "id": doc.id,
            "source_id": doc.source_id,
            "kind": doc.kind,
            "url": doc.url,
            "title": doc.title,
            "language": doc.language,
            "published": iso_utc(doc.published),
            "fetched": iso_utc(doc.fetched),
            "outlet": doc.outlet,
            "author": doc.author,
            "forwarded_from": doc.forwarded_from,
            "views": doc.views,
            "reach": reach_of(doc),
            "links": list(doc.links),
            "media": list(doc.media),
            "text": doc.text,
            "passages": [{"index": p.index, "start": p.start, "text": p.text} for p in doc.passages],
            "versions": version_dicts(self.versions),
            "edited": self.history.edited,
            "deleted": deletion_dict(self.history.deletion),
        }


def document(app: App, doc_id: str) -> DocumentView:
    """The stored document ``doc_id``; :class:`~core.errors.NotFoundError` if absent."""
    doc = app.index.get(doc_id)
    if doc is None:
        raise NotFoundError(f"no document {doc_id!r}")
    versions = tuple(versions_of(app, doc_id))
    history = histories(app, [doc_id])[doc_id]
    return DocumentView(doc, versions, History(len(versions), history.deletion))


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def reach_of(doc: Document) -> dict[str, Any]:
    """``views``, ``forwards``, ``replies`` and ``reactions`` (total, and ``by_reaction``) when the
    platform reported them; absent counters are left out (not 0: unknown is not none)."""
    out: dict[str, Any] = {}
    if doc.views is not None:
        out["views"] = doc.views
    extra = doc.extra or {}
    for key in ("forwards", "replies"):
        n = _count(extra.get(key))
        if n is not None:
            out[key] = n
    reactions = extra.get("reactions")
    if isinstance(reactions, dict):
        by = {str(k): c for k, v in reactions.items() if (c := _count(v)) is not None}
        if by:
            out["reactions"] = sum(by.values())
            out["by_reaction"] = dict(sorted(by.items(), key=lambda kv: -kv[1]))
    else:
        n = _count(reactions)
        if n is not None:
            out["reactions"] = n
    return out


@dataclass(frozen=True)
class DocumentContext:
    """What surrounds a document: its matches, copies and sightings (the document page)."""

    matches: tuple[MatchView, ...] = ()
    copies: tuple[dict[str, Any], ...] = ()
    """The document's copy group, original first: ``document_id``, ``outlet``, ``source_id``,
    ``published``, ``language``, ``role`` (original | copy), ``this`` (the document itself)."""
    sightings: tuple[dict[str, Any], ...] = ()
    titles: dict[str, str] = field(default_factory=dict)
    """Narrative titles by id."""

    def as_dict(self) -> dict[str, Any]:
        """``matches`` (each with ``narrative_title`` and ``verdict``), ``copies``, ``sightings``."""
        matches = []
        for m in self.matches:
            d = m.as_dict()
            d["narrative_title"] = self.titles.get(m.match.narrative_id, m.match.narrative_id)
            matches.append(d)
        return {"matches": matches, "copies": list(self.copies), "sightings": list(self.sightings)}


def _copies(app: App, doc: Document) -> tuple[dict[str, Any], ...]:
    """The copy group holding ``doc`` (near-duplicate texts and forwards), from a document trace."""
    try:
        result = _trace(app.index, app.embedder, TraceQuery(document_id=doc.id, max_items=COPIES_TRACE_ITEMS))
    except (ValueError, InvalidRequestError, NotFoundError) as exc:
        log.info("document %s: no copy lookup: %s", doc.id, exc)
        return ()
    group = next((g for g in result.copy_groups if doc.id in g.members), None)
    if group is None:
        return ()
    items = {it.document_id: it for it in result.items}
    out = []
    for i, member in enumerate(group.members):
        it = items.get(member)
        if it is None:
            continue
        out.append(
            {
                "document_id": member,
                "source_id": it.source_id,
                "outlet": it.outlet,
                "language": it.language,
                "published": iso_utc(it.published),
                "url": it.url,
                "role": "original" if i == 0 else "copy",
                "this": member == doc.id,
            }
        )
    return tuple(out)


def _sightings(app: App, doc_id: str) -> tuple[dict[str, Any], ...]:
    # A read-only App (serve) must not create the sightings file; before the first crawl there is none.
    if app.read_only and not app.is_open("sightings") and not sightings_path(app.config.data_dir).exists():
        return ()
    found = app.sightings.for_documents([doc_id]).get(doc_id, ())
    return tuple(s.as_dict() for s in found)


def document_context(app: App, doc_id: str, *, copies: bool = True) -> DocumentContext:
    """The matches (every narrative, rejected ones with their verdict), copies (with ``copies``)
    and sightings of the stored document ``doc_id``; :class:`~core.errors.NotFoundError` if absent."""
    doc = app.index.get(doc_id)
    if doc is None:
        raise NotFoundError(f"no document {doc_id!r}")
    titles = {n.id: n.title for n in app.catalogue.narratives}
    ids = list(dict.fromkeys([*titles, *app.matches.narrative_ids()]))
    found = [m for m in (app.matches.get(match_id(doc_id, nid)) for nid in ids) if m is not None]
    found.sort(key=lambda m: -m.score)
    verdicts = verdicts_for(app.matches, [m.id for m in found])
    views = tuple(MatchView(m, verdicts.get(m.id), judged=True) for m in found)
    groups = _copies(app, doc) if copies else ()
    if groups:
        label_items(app, groups)
    sightings = _sightings(app, doc_id)
    labels = source_labels(app)
    for s in sightings:
        label = labels.get(str(s.get("source", "")))
        if label is not None:
            s.update(label.as_dict())
    return DocumentContext(views, groups, sightings, titles)
