"""Emerging themes (clusters of recent passages no narrative matched) and their promotion.

A promoted theme becomes a disabled draft narrative in ONE place for every surface:
``<data_dir>/narrative_drafts/<narrative_id>.yaml`` (:func:`drafts_dir`). An operator reviews
the draft and moves it into ``config/narratives/`` to load it; nothing an analyst clicks changes
the running catalogue.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from core.errors import ConflictError, NotFoundError
from monitors.themes import Theme, discover_themes, promote_theme
from narrawatch.app import App

__all__ = [
    "DEFAULT_THEME_WINDOW",
    "THEMES_CACHE_SECONDS",
    "Promotion",
    "ThemeWindow",
    "data_end",
    "drafts_dir",
    "list_themes",
    "newest_day",
    "promote",
    "promote_theme_to_draft",
    "theme_window",
]

log = logging.getLogger(__name__)

THEMES_CACHE_SECONDS = 300.0
DEFAULT_THEME_WINDOW = timedelta(days=7)
DEFAULT_MIN_SIZE = 5
DEFAULT_MAX_THEMES = 20

_lock = threading.Lock()
_CacheKey = tuple[str, str, int, int]
# Per App (weakly held: a closed, dropped App takes its themes with it): key -> (monotonic time, themes).
_cache: weakref.WeakKeyDictionary[App, dict[_CacheKey, tuple[float, list[Theme]]]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Promotion:
    """A theme written as a draft narrative."""

    theme_id: str
    narrative_id: str
    path: Path

    def as_dict(self) -> dict[str, Any]:
        """theme_id, narrative_id, path (of the draft YAML)."""
        return {"theme_id": self.theme_id, "narrative_id": self.narrative_id, "path": str(self.path)}


@dataclass(frozen=True)
class ThemeWindow:
    """The ``[since, until)`` themes were looked for in, and whether it followed the data."""

    since: datetime
    until: datetime
    relative_to_data: bool

    def as_dict(self) -> dict[str, Any]:
        """since, until (ISO), relative_to_data."""
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "relative_to_data": self.relative_to_data,
        }


STRAGGLER_SHARE = 0.01
"""Documents dated after a gap longer than the window, and fewer than this share of all, are
stragglers (mis-dated items, a feed's odd entry): the data's end is before them."""


def newest_day(days: dict[str, int], gap: timedelta = DEFAULT_THEME_WINDOW) -> str | None:
    """The newest day of the per-day histogram ``days`` that is not a straggler (see
    :data:`STRAGGLER_SHARE`): a handful of items months after the rest do not move the window."""
    ordered = sorted((d, n) for d, n in days.items() if n > 0)
    if not ordered:
        return None
    total = sum(n for _, n in ordered)
    tail = 0
    end = len(ordered) - 1
    for i in range(len(ordered) - 1, 0, -1):
        tail += ordered[i][1]
        if tail >= STRAGGLER_SHARE * total:
            break
        later = datetime.strptime(ordered[i][0], "%Y-%m-%d")
        earlier = datetime.strptime(ordered[i - 1][0], "%Y-%m-%d")
        if later - earlier > gap:
            end = i - 1
    return ordered[end][0]


def data_end(app: App) -> datetime | None:
    """The end of the UTC day of the newest stored document (``None`` for an empty index).

    Read from the per-day histogram every backend has, so it is one cheap aggregation. Stragglers
    (a few items dated long after the rest, :func:`newest_day`) are passed over, and a date beyond
    tomorrow is clamped, so the window covers where the data is."""
    day = newest_day(app.index.count("day"))
    if day is None:
        return None
    newest = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC) + timedelta(days=1)
    return min(newest, datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=2))


def theme_window(app: App, since: datetime | None = None, until: datetime | None = None) -> ThemeWindow:
    """The window themes are computed over. Without ``since``: the :data:`DEFAULT_THEME_WINDOW`
    ending at ``until``, else at the newest stored document (:func:`data_end`), so an archive or
    the bundled demo (whose posts are from the past) shows its themes; the wall clock is only
    the fallback for an empty index. ``until`` defaults to the data's end too (growth compares
    the two halves of the window, so the window must end where the data does)."""
    end = data_end(app)
    relative = until is None and end is not None
    stop = until or end or datetime.now(UTC)
    start = since or stop - DEFAULT_THEME_WINDOW
    if start >= stop:  # a ``since`` after the newest document: an empty window up to now
        stop, relative = max(datetime.now(UTC), start + timedelta(minutes=1)), False
    return ThemeWindow(start, stop, relative)


def drafts_dir(app: App) -> Path:
    """Where promoted themes are written: ``<data_dir>/narrative_drafts``."""
    return app.config.data_dir / "narrative_drafts"


def list_themes(
    app: App,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    min_size: int = DEFAULT_MIN_SIZE,
    max_themes: int = DEFAULT_MAX_THEMES,
) -> list[Theme]:
    """Themes among documents published in ``[since, until)`` (default: :func:`theme_window`, the
    7 days up to the newest stored document), best first; cached per App for
    :data:`THEMES_CACHE_SECONDS` (clustering is slow)."""
    w = theme_window(app, since, until)
    since, until = w.since, w.until
    key = (
        since.isoformat(timespec="minutes"),
        until.isoformat(timespec="minutes"),
        min_size,
        max_themes,
    )
    with _lock:
        hit = _cache.get(app, {}).get(key)
        if hit and time.monotonic() - hit[0] < THEMES_CACHE_SECONDS:
            return hit[1]
    themes = discover_themes(
        app.index, since=since, until=until, matches=app.matches, min_size=min_size, max_themes=max_themes
    )
    with _lock:
        _cache.setdefault(app, {})[key] = (time.monotonic(), themes)
    return themes


def promote_theme_to_draft(app: App, theme: Theme, narrative_id: str) -> Promotion:
    """Write ``theme`` as the disabled draft narrative ``narrative_id`` into :func:`drafts_dir`;
    :class:`~core.errors.ConflictError` if the catalogue already has that id."""
    if narrative_id in {n.id for n in app.catalogue.narratives}:
        raise ConflictError(f"narrative {narrative_id!r} already exists in the catalogue")
    path = promote_theme(theme, narrative_id, drafts_dir(app))
    log.info("theme %s promoted to draft narrative %s at %s", theme.id, narrative_id, path)
    return Promotion(theme.id, narrative_id, path)


def promote(
    app: App,
    theme_id: str,
    narrative_id: str,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    min_size: int = DEFAULT_MIN_SIZE,
) -> Promotion:
    """Promote the theme ``theme_id`` of the current window (see :func:`promote_theme_to_draft`);
    :class:`~core.errors.NotFoundError` if no current theme has that id."""
    theme = next((t for t in list_themes(app, since, until, min_size=min_size) if t.id == theme_id), None)
    if theme is None:
        raise NotFoundError(f"no theme {theme_id!r} in the current window (themes are recomputed every few minutes)")
    return promote_theme_to_draft(app, theme, narrative_id)
