"""One stored document with its passages (the document page, ``GET /api/v1/documents/{id}``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.documents import Document
from core.errors import NotFoundError
from core.evidence import Version
from core.timefmt import iso_utc
from narrawatch.app import App
from narrawatch.read.history import NO_HISTORY, History, deletion_dict, histories, version_dicts, versions_of

__all__ = ["DocumentView", "document"]


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
