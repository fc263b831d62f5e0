"""Source health: ONE reading of the crawl state for ``narrawatch sources``, ``GET /api/v1/sources``,
the sources page and the source-silence detector (:func:`detector_health`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from core.events import SourceHealth
from core.settings import SourceBase
from narrawatch.app import App

__all__ = ["STATUS_ORDER", "SourceStatus", "detector_health", "source_health"]

log = logging.getLogger(__name__)

Status = Literal["failing", "never", "quiet", "ok", "disabled"]
STATUS_ORDER: dict[str, int] = {"failing": 0, "never": 1, "quiet": 2, "ok": 3, "disabled": 4}
"""Sources are listed failing first, then never crawled, then quiet (nothing in 24 h), then ok,
then disabled (valid but lacking a prerequisite such as a token: not crawled, not an error)."""


@dataclass(frozen=True)
class SourceStatus:
    """One configured source: its config, its crawl health and documents indexed."""

    source: SourceBase
    health: SourceHealth
    details: dict[str, Any]
    """The crawl state's JSON-ready health (:meth:`crawlers.state.CrawlStateStore.health`)."""
    documents: int | None
    """Documents indexed (None when not counted or the index did not answer)."""

    @property
    def status(self) -> Status:
        """``disabled`` (a missing token: not crawled), ``failing`` (failures in a row), ``never`` (no
        success yet), ``quiet`` (no item in 24 h) or ``ok``."""
        if self.source.disabled_reason:
            return "disabled"
        h = self.health
        if h.consecutive_failures > 0:
            return "failing"
        if h.last_success is None:
            return "never"
        return "quiet" if h.items_24h == 0 else "ok"

    def as_dict(self) -> dict[str, Any]:
        """The health fields plus ``kind``, ``outlet``, ``enabled``, ``every``, ``documents``, ``status``."""
        s = self.source
        return {
            **self.details,
            "kind": s.kind,
            "outlet": self.health.outlet,
            "enabled": s.enabled,
            "every": str(s.every),
            "documents": self.documents or 0,
            "status": self.status,
            "disabled": self.source.disabled_reason or None,
            "notes": "; ".join(n for n in (self.source.disabled_reason, self.details.get("notes", "")) if n),
        }


def source_health(app: App, now: datetime | None = None, *, count_documents: bool = True) -> list[SourceStatus]:
    """Every configured source's crawl health, failing first, then never, quiet, ok (then by
    failures in a row, most first, then id).

    ``count_documents`` asks the index how many documents each source has (opening it, and so
    the embedding model, if the App has not yet); health renders even when the index is down.
    """
    now = now or datetime.now(UTC)
    indexed: dict[str, int] | None = None
    if count_documents:
        try:
            indexed = app.index.count("source")
        except Exception as exc:  # health must render even when the index is down
            log.warning("source health: index did not answer: %s", exc)
    out = []
    for s in app.config.sources:
        h = app.state.source_health(s.id, now, s.outlet_label)
        docs = None if indexed is None else indexed.get(s.id, 0)
        out.append(SourceStatus(s, h, app.state.health(s.id, now), docs))
    out.sort(key=lambda r: (STATUS_ORDER[r.status], -r.health.consecutive_failures, r.source.id))
    return out


def detector_health(app: App, now: datetime) -> list[SourceHealth]:
    """The source-silence detector's input: :func:`source_health` without the index."""
    return [s.health for s in source_health(app, now, count_documents=False) if s.status != "disabled"]
