"""RuTube's public JSON API: a video's ``/api/play/options/<id>/`` answer -> a frozen record.

Pure functions, no network. The endpoint is the one RuTube's own player calls; it needs no
account. It carries title, description, author, duration (milliseconds), category and tags,
but no publication date (see ``docs/platforms.md``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from core.errors import ParseError

__all__ = ["RutubeVideo", "parse_play_options"]


@dataclass(frozen=True)
class RutubeVideo:
    """A video's metadata. ``available`` is False when the API says it cannot be played here
    (``acl_access.allowed`` false, hidden); ``unavailable_reason`` then says why."""

    video_id: str
    title: str
    description: str
    author_id: int | None
    author_name: str
    duration_seconds: float | None
    category: str
    tags: tuple[str, ...]
    thumbnail: str
    is_adult: bool
    available: bool
    unavailable_reason: str


def _str(value: Any) -> str:
    return str(value).strip() if isinstance(value, str | int | float) and not isinstance(value, bool) else ""


def parse_play_options(body: bytes) -> RutubeVideo:
    """Parse a play-options answer. Raises :class:`ParseError` when it is not one (no ``video_id``)."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(f"not a RuTube API answer (not JSON: {exc})") from exc
    if not isinstance(data, dict) or not _str(data.get("video_id")):
        detail = _str(data.get("detail")) if isinstance(data, dict) else ""
        raise ParseError(f"not a RuTube play-options answer{f' ({detail})' if detail else ''}")
    author = data.get("author") if isinstance(data.get("author"), dict) else {}
    assert isinstance(author, dict)
    author_id = author.get("id")
    duration = data.get("duration")
    category = data.get("category") if isinstance(data.get("category"), dict) else {}
    assert isinstance(category, dict)
    acl = data.get("acl_access") if isinstance(data.get("acl_access"), dict) else {}
    assert isinstance(acl, dict)
    allowed = acl.get("allowed", True) is not False
    hidden = bool(data.get("is_hidden"))
    reason = ""
    if not allowed:
        reason = _str(acl.get("err_text")) or _str(acl.get("err_code")) or "access not allowed"
    elif hidden:
        reason = "hidden"
    return RutubeVideo(
        video_id=_str(data["video_id"]).lower(),
        title=" ".join(_str(data.get("title")).split()),
        description=_str(data.get("description")),
        author_id=author_id if isinstance(author_id, int) and not isinstance(author_id, bool) else None,
        author_name=" ".join(_str(author.get("name")).split()),
        duration_seconds=duration / 1000.0
        if isinstance(duration, int | float) and not isinstance(duration, bool) and duration >= 0
        else None,
        category=_str(category.get("name")),
        tags=tuple(_str(t.get("name")) for t in data.get("tags") or () if isinstance(t, dict) and _str(t.get("name"))),
        thumbnail=_str(data.get("thumbnail_url")),
        is_adult=bool(data.get("is_adult")),
        available=allowed and not hidden,
        unavailable_reason=reason,
    )
