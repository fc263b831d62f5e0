"""Outlet labels: what kind of outlet a source is, as analysts configured it (``config.sources``).

An independent outlet reporting on a narrative must not read like a state outlet spreading it, so
every page that quotes a post (alert evidence, narrative matches, the document page, trace items)
shows the source's ``actor`` type, ``country`` and ``owner`` beside the outlet name. One reading of
the config for every surface: :func:`source_labels`, merged into JSON by :func:`label_items`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from narrawatch.app import App

__all__ = ["ACTOR_LABELS", "SourceLabel", "label_items", "source_labels"]

ACTOR_LABELS: dict[str, str] = {
    "state_media": "state media",
    "state_affiliated": "state-affiliated",
    "independent": "independent",
    "exile_media": "exile media",
    "official": "official",
    "anonymous_channel": "anonymous channel",
    "blogger": "blogger",
    "other": "other",
}
"""How an actor type reads on a page (the config value is the key)."""


@dataclass(frozen=True)
class SourceLabel:
    """A configured source's labels (None when not configured)."""

    source_id: str
    outlet: str
    actor: str | None = None
    country: str | None = None
    owner: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """``source_outlet``, ``actor``, ``actor_label``, ``country``, ``owner``."""
        return {
            "source_outlet": self.outlet,
            "actor": self.actor,
            "actor_label": ACTOR_LABELS.get(self.actor or "", self.actor or ""),
            "country": self.country,
            "owner": self.owner,
        }


def source_labels(app: App) -> dict[str, SourceLabel]:
    """Every configured source's labels by source id."""
    out: dict[str, SourceLabel] = {}
    for s in app.config.sources:
        out[s.id] = SourceLabel(
            source_id=s.id,
            outlet=s.outlet_label,
            actor=getattr(s, "actor", None),
            country=getattr(s, "country", None),
            owner=getattr(s, "owner", None),
        )
    return out


def label_items(app: App, items: Iterable[dict[str, Any]], key: str = "source_id") -> None:
    """Add :meth:`SourceLabel.as_dict` to each dict in place, by its ``key`` (a source id); a
    source no longer configured gets empty labels."""
    labels = source_labels(app)
    for item in items:
        sid = str(item.get(key) or "")
        label = labels.get(sid) or SourceLabel(sid, "")
        item.update(label.as_dict())
