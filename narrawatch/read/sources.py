"""Sources: ONE reading of the config's source metadata and the crawl state for ``narrawatch sources``,
``GET /api/v1/sources``, the sources page and the source-silence detector (:func:`detector_health`).

Each row names the source as analysts think of it: actor type (state media, independent, exile
media...), country of focus, owner, platform (from the kind), language and tags, beside its health."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from core.events import SourceHealth
from core.settings import SourceBase
from narrawatch.app import App

__all__ = [
    "PLATFORMS",
    "STATUS_ORDER",
    "SourceStatus",
    "detector_health",
    "platform_of",
    "source_health",
    "source_metadata",
]

log = logging.getLogger(__name__)

Status = Literal["failing", "never", "quiet", "ok", "disabled"]
STATUS_ORDER: dict[str, int] = {"failing": 0, "never": 1, "quiet": 2, "ok": 3, "disabled": 4}
"""Sources are listed failing first, then never crawled, then quiet (nothing in 24 h), then ok,
then disabled (valid but lacking a prerequisite such as a token: not crawled, not an error)."""


PLATFORMS: dict[str, str] = {
    "feed": "web (feed)",
    "site": "web (site)",
    "telegram": "Telegram",
    "youtube": "YouTube",
    "vk": "VK",
    "rutube": "RUTUBE",
}
"""The platform a source kind reads (a plugin kind shows its own name)."""


def platform_of(kind: str) -> str:
    """``telegram`` -> ``Telegram``; an unknown kind is its own platform name."""
    return PLATFORMS.get(kind, kind)


def source_metadata(s: SourceBase) -> dict[str, Any]:
    """``id``, ``kind``, ``platform``, ``outlet``, ``actor`` (+ ``actor_label``), ``country``, ``owner``,
    ``language``, ``tags`` of a configured source (None when not configured)."""
    from narrawatch.read.labels import ACTOR_LABELS

    actor = getattr(s, "actor", None)
    return {
        "id": s.id,
        "kind": s.kind,
        "platform": platform_of(s.kind),
        "outlet": s.outlet_label,
        "actor": actor,
        "actor_label": ACTOR_LABELS.get(actor, actor) if actor else None,
        "country": getattr(s, "country", None),
        "owner": getattr(s, "owner", None),
        "language": s.language,
        "tags": list(s.tags),
    }


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
        """The health fields, the metadata (:func:`source_metadata`) and ``enabled``, ``every``,
        ``documents``, ``status``."""
        s = self.source
        return {
            **self.details,
            **source_metadata(s),
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
