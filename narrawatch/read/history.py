"""Edits and deletions of documents as search, the document page and trace show them.

One record per document, :class:`History`: how many versions of its text were kept and, when a
re-check found it gone, when that was and when it was last seen. Read from the evidence store
(:mod:`crawlers.evidence_store`) in one batch per page of results. A read-only App (``serve``
beside a running crawl) does not create the store: before the first crawl there is no history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.evidence import Deletion, Version
from core.timefmt import iso_utc
from crawlers.evidence_store import evidence_path
from narrawatch.app import App

__all__ = ["NO_HISTORY", "History", "deletion_dict", "histories", "version_dicts", "versions_of"]


@dataclass(frozen=True)
class History:
    """A document's versions count and deletion (None: not found deleted)."""

    versions: int = 0
    deletion: Deletion | None = None

    @property
    def edited(self) -> bool:
        """More than one version of the text was seen."""
        return self.versions > 1

    def as_dict(self) -> dict[str, Any]:
        """``{"versions": n, "edited": bool, "deleted": {...} | None}`` (merged into the surfaces' JSON)."""
        return {"versions": self.versions, "edited": self.edited, "deleted": deletion_dict(self.deletion)}


NO_HISTORY = History()
"""One version or none, never deleted: what a document without recorded evidence shows."""


def deletion_dict(d: Deletion | None) -> dict[str, Any] | None:
    """A deletion as JSON: ``{"deleted_at", "last_seen", "reason"}`` (UTC ISO times)."""
    if d is None:
        return None
    return {"deleted_at": iso_utc(d.deleted_at), "last_seen": iso_utc(d.last_seen), "reason": d.reason}


def version_dicts(versions: Sequence[Version]) -> list[dict[str, Any]]:
    """Versions as JSON (number, title, text hash, first/last seen, the capture's URL, time and body hash)."""
    return [
        {
            "number": v.number,
            "title": v.title,
            "text_sha256": v.text_sha256,
            "first_seen": iso_utc(v.first_seen),
            "last_seen": iso_utc(v.last_seen),
            "capture": None
            if v.capture is None
            else {
                "url": v.capture.url,
                "fetched_at": iso_utc(v.capture.fetched_at),
                "status": v.capture.status,
                "sha256": v.capture.sha256,
                "archived": v.capture.archived,
            },
        }
        for v in versions
    ]


def _available(app: App) -> bool:
    return not app.read_only or app.is_open("evidence") or evidence_path(app.config.data_dir).exists()


def histories(app: App, document_ids: Sequence[str]) -> dict[str, History]:
    """The history of each id (every id present; empty history when nothing was recorded)."""
    ids = list(dict.fromkeys(document_ids))
    if not ids or not _available(app):
        return {i: History() for i in ids}
    counts = app.evidence.version_counts(ids)
    deletions = app.evidence.deletions(ids)
    return {i: History(counts.get(i, 0), deletions.get(i)) for i in ids}


def versions_of(app: App, document_id: str) -> list[Version]:
    """Every kept version of a document (none when nothing was recorded)."""
    return app.evidence.versions(document_id) if _available(app) else []
