"""The ``deleted_after_spread`` detector: an item that matched a narrative was deleted.

Deletions are found by re-checks (:mod:`narrawatch.recheck`) and kept in the evidence store;
this package cannot import it, so the detector reads them through :class:`DeletionFeed`, which
the store the monitoring pass hands to detectors provides (:class:`StoreWithDeletions`: the
match store plus ``deleted_since``). Given a plain match store the detector finds nothing.

One event per deleted item (``key`` = the document id, evidence = its matches, so the event's
identity is stable and a deletion alerts once however many passes see it): a deletion noticed
in ``[now - lookback, now]`` of a document that had a match of ``min_tier`` or stronger first
seen before the deletion. Its window runs from when the item was last seen to when it was found
gone. A verbatim copy elsewhere is a different item: only its own deletion would count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from core.events import DetectorEvent, SourceHealth
from core.evidence import Deletion
from core.matches import Match
from core.settings import Duration
from monitors.detectors import DetectorBase, MatchOptions, first_seen
from monitors.store import MatchStore

__all__ = ["DeletedAfterSpreadDetector", "DeletedAfterSpreadOptions", "DeletionFeed", "StoreWithDeletions"]

_REASONS = {"gone": "the page answers 404/410", "redirected": "the page redirects to the front page",
            "missing": "the post is missing from its channel page"}  # fmt: skip


@runtime_checkable
class DeletionFeed(Protocol):
    """Where deletions are read from (the evidence store has this method)."""

    def deleted_since(self, when: datetime) -> list[Deletion]:
        """Deletions noticed at or after ``when``, earliest first."""
        ...


class StoreWithDeletions:
    """A match store that also answers :meth:`deleted_since` (what the monitoring pass hands detectors).

    Every other attribute is the match store's, so every detector works on it unchanged.
    """

    def __init__(self, matches: MatchStore, deletions: DeletionFeed) -> None:
        self.matches_store = matches
        self._deletions = deletions

    def deleted_since(self, when: datetime) -> list[Deletion]:
        """Deletions noticed at or after ``when``."""
        return self._deletions.deleted_since(when)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.matches_store, name)


class DeletedAfterSpreadOptions(MatchOptions):
    """Which deletions count: noticed within ``lookback``, of items with a match of ``min_tier``."""

    lookback: Duration = timedelta(days=7)
    """Deletions noticed this long before ``now`` still raise their (one) event."""


class DeletedAfterSpreadDetector(DetectorBase):
    """An item that matched a narrative was deleted (404/410, redirected away, or a Telegram post removed)."""

    name = "deleted_after_spread"
    Options = DeletedAfterSpreadOptions
    options: DeletedAfterSpreadOptions

    def detect(
        self, store: MatchStore, health: Sequence[SourceHealth], now: datetime, narratives: Mapping[str, str]
    ) -> list[DetectorEvent]:
        """One event per matched item deleted in ``[now - lookback, now]``."""
        if not isinstance(store, DeletionFeed):
            return []
        deleted = {d.document_id: d for d in store.deleted_since(now - self.options.lookback) if d.deleted_at <= now}
        if not deleted:
            return []
        by_doc: dict[str, list[Match]] = {}
        for nid in self._narratives(store, narratives):
            for m in self._keep(store.matches(nid, until=now), now):
                d = deleted.get(m.document_id)
                if d is not None and first_seen(m) <= d.deleted_at:
                    by_doc.setdefault(m.document_id, []).append(m)
        out = []
        for doc_id in sorted(by_doc, key=lambda i: (deleted[i].deleted_at, i)):
            d, matches = deleted[doc_id], sorted(by_doc[doc_id], key=lambda m: (-m.score, m.narrative_id))
            out.append(self._deletion_event(d, matches, narratives, now))
        return out

    def _deletion_event(
        self, d: Deletion, matches: list[Match], narratives: Mapping[str, str], now: datetime
    ) -> DetectorEvent:
        best = matches[0]
        names = sorted({m.narrative_id for m in matches})
        why = _REASONS.get(d.reason, d.reason)
        summary = (
            f"{best.url} ({best.outlet}) was deleted: {why}. Found gone {d.deleted_at.isoformat()}, "
            f"last seen {d.last_seen.isoformat()}; it matched {', '.join(names)} (best score {best.score:.3f})."
        )
        return self._event(
            key=d.document_id,
            narrative_id=best.narrative_id,
            narratives=narratives,
            title=f"Deleted after matching: {best.title or best.url}"[:200],
            summary=summary,
            evidence=matches,
            counts={"narratives": len(names), "matches": len(matches)},
            score=best.score,
            now=now,
            source_id=best.source_id,
            window=(min(d.last_seen, d.deleted_at), d.deleted_at),
        )
