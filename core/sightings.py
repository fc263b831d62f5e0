"""Sightings: every source that carried a document's URL, the publisher and the carriers.

A document id is a hash of its canonical URL, so a second source whose entry links to another
outlet's article names the same document. The first publisher keeps the record; every source
that carried the URL (the publisher included) is a :class:`Sighting`, a spread edge that never
rewrites the record. Stored by ``crawlers.sightings``; read by spread tracing through
:class:`SightingLookup`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

__all__ = ["Sighting", "SightingLookup"]


@dataclass(frozen=True)
class Sighting:
    """One source carrying one document."""

    document_id: str
    source_id: str
    outlet: str
    """The carrier's outlet (its configured outlet, else its own host), not the document's."""
    url: str
    """The canonical URL the carrier linked to."""
    title: str
    """The title the carrier gave the item (may differ from the record's)."""
    published: datetime
    """When the carrier says the item was published (a claim, never copied into the record)."""
    first_seen: datetime
    """When the service first saw this source carry the document."""
    last_seen: datetime

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "document_id": self.document_id,
            "source": self.source_id,
            "outlet": self.outlet,
            "url": self.url,
            "title": self.title,
            "published": self.published.isoformat(),
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
        }


class SightingLookup(Protocol):
    """Read access to sightings (what spread tracing needs)."""

    def for_documents(self, document_ids: Sequence[str]) -> Mapping[str, Sequence[Sighting]]:
        """Sightings per document id, earliest first; ids without sightings are absent."""
        ...
