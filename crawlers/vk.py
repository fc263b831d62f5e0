"""VKontakte's official API ``wall.get`` (``extended=1``): responses -> frozen records, errors -> reasons.

Pure functions, no network. A response is either ``{"response": {"count", "items", "profiles",
"groups"}}`` or ``{"error": {"error_code", "error_msg", "request_params"}}``; the error's
``request_params`` echo the request, the access token included, so nothing from them is kept.

A repost's ``copy_history`` (the reposted post first, then what *it* reposted) becomes
:attr:`VkPost.origins`; the spider turns the first into the document's ``forwarded_from`` /
``extra["forwarded_from_url"]``, the spread edge Telegram forwards use.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.errors import ParseError
from crawlers.platform_text import text_links

__all__ = [
    "VK_WEB",
    "VkApiError",
    "VkOrigin",
    "VkPost",
    "VkWallPage",
    "owner_outlet",
    "parse_wall_response",
    "post_url",
]

VK_WEB = "https://vk.com"
"""Where a post is shown (documents' URLs); never fetched."""


@dataclass(frozen=True)
class VkApiError:
    """An ``{"error": ...}`` answer. ``reason``: ``rate_limited`` (``retry``), ``auth_failed``,
    ``access_denied``, ``bad_request`` or ``api_error``."""

    code: int
    message: str
    reason: str
    retry: bool


@dataclass(frozen=True)
class VkOrigin:
    """A post a repost carries (one ``copy_history`` entry)."""

    owner_id: int
    post_id: int
    url: str
    outlet: str
    date: datetime | None
    text: str


@dataclass(frozen=True)
class VkPost:
    """One wall post with its reach counters (``None`` when the API did not say)."""

    owner_id: int
    post_id: int
    from_id: int
    url: str
    date: datetime
    text: str
    author: str
    pinned: bool
    ads: bool
    post_type: str
    views: int | None
    likes: int | None
    reposts: int | None
    comments: int | None
    media: tuple[str, ...]
    links: tuple[str, ...]
    origins: tuple[VkOrigin, ...]

    @property
    def key(self) -> str:
        """The seen-key: ``<owner_id>_<post_id>``."""
        return f"{self.owner_id}_{self.post_id}"


@dataclass(frozen=True)
class VkWallPage:
    """One ``wall.get`` page: the wall's total ``count`` and its posts in API order."""

    count: int
    posts: tuple[VkPost, ...]
    skipped: int = 0
    """Items without a usable id, owner or date."""
    owner_names: Mapping[int, str] | None = None
    """``vk.com/<screen_name>`` per owner id the response's profiles and groups name."""


_RATE = {6, 9, 29}
_DENIED = {7, 15, 18, 19, 30, 203}
_BAD = {100, 113}
_TRANSIENT = {1, 10}


def _error(raw: Mapping[str, Any]) -> VkApiError:
    try:
        code = int(raw.get("error_code", 0))
    except (TypeError, ValueError):
        code = 0
    text = " ".join(str(raw.get("error_msg") or "no message").split())[:300]
    if code in _RATE:
        return VkApiError(code, f"VK API error {code} ({text}): rate-limited, retry later", "rate_limited", True)
    if code == 5:
        return VkApiError(
            code, f"VK API error 5 ({text}): the service token was refused; check the token", "auth_failed", False
        )
    if code in _DENIED:
        return VkApiError(
            code, f"VK API error {code} ({text}): the wall is private, closed or deleted", "access_denied", False
        )
    if code in _BAD:
        return VkApiError(code, f"VK API error {code} ({text}): check domain/owner_id", "bad_request", False)
    return VkApiError(code, f"VK API error {code} ({text})", "api_error", code in _TRANSIENT)


def owner_outlet(owner_id: int, names: Mapping[int, str] | None = None) -> str:
    """``vk.com/<screen_name>`` when known, else ``vk.com/club<id>`` (communities) or ``vk.com/id<id>``."""
    if names and owner_id in names:
        return names[owner_id]
    return f"vk.com/club{-owner_id}" if owner_id < 0 else f"vk.com/id{owner_id}"


def post_url(owner_id: int, post_id: int) -> str:
    """``https://vk.com/wall<owner>_<id>``."""
    return f"{VK_WEB}/wall{owner_id}_{post_id}"


def _names(response: Mapping[str, Any]) -> tuple[dict[int, str], dict[int, str]]:
    """Outlets (``vk.com/<screen_name>``) and display names per owner id."""
    outlets: dict[int, str] = {}
    people: dict[int, str] = {}
    for group in response.get("groups") or ():
        if isinstance(group, dict) and isinstance(group.get("id"), int):
            gid = -abs(group["id"])
            if group.get("screen_name"):
                outlets[gid] = f"vk.com/{group['screen_name']}"
            people[gid] = " ".join(str(group.get("name") or "").split())
    for profile in response.get("profiles") or ():
        if isinstance(profile, dict) and isinstance(profile.get("id"), int):
            pid = profile["id"]
            if profile.get("screen_name"):
                outlets[pid] = f"vk.com/{profile['screen_name']}"
            name = f"{profile.get('first_name') or ''} {profile.get('last_name') or ''}"
            people[pid] = " ".join(name.split())
    return outlets, people


_MEDIA = {
    "photo": "photo",
    "posted_photo": "photo",
    "album": "photo",
    "graffiti": "photo",
    "video": "video",
    "audio": "audio",
    "podcast": "audio",
    "audio_playlist": "audio",
    "doc": "document",
    "poll": "poll",
    "link": "link",
    "article": "article",
    "note": "note",
    "page": "page",
    "market": "market",
}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _count(raw: Mapping[str, Any], name: str) -> int | None:
    value = raw.get(name)
    return _int(value.get("count")) if isinstance(value, dict) else None


def _when(value: Any) -> datetime | None:
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _attachments(raw: Mapping[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """Media markers, link URLs and extra text (poll questions, article titles) of a post."""
    media: list[str] = []
    links: list[str] = []
    texts: list[str] = []
    for att in raw.get("attachments") or ():
        if not isinstance(att, dict):
            continue
        kind = str(att.get("type") or "")
        media.append(_MEDIA.get(kind, re.sub(r"[^a-z_]", "", kind.lower()) or "unknown"))
        body = att.get(kind)
        if not isinstance(body, dict):
            continue
        if kind == "poll" and body.get("question"):
            texts.append(str(body["question"]))
        if kind in ("link", "article") and str(body.get("url") or "").startswith(("http://", "https://")):
            links.append(str(body["url"]))
        if kind == "article" and body.get("title"):
            texts.append(str(body["title"]))
    return media, links, texts


def _post(raw: Mapping[str, Any], outlets: Mapping[int, str], people: Mapping[int, str]) -> VkPost | None:
    owner, pid, date = _int(raw.get("owner_id")), _int(raw.get("id")), _when(raw.get("date"))
    if owner is None or pid is None or date is None or owner == 0 or pid <= 0:
        return None
    media, links, extra_texts = _attachments(raw)
    own = str(raw.get("text") or "").strip()
    parts = [own, *extra_texts]
    origins: list[VkOrigin] = []
    for copy in raw.get("copy_history") or ():
        if not isinstance(copy, dict):
            continue
        o_owner, o_id = _int(copy.get("owner_id")), _int(copy.get("id"))
        if o_owner is None or o_id is None or o_owner == 0:
            continue
        o_media, o_links, o_texts = _attachments(copy)
        o_text = str(copy.get("text") or "").strip()
        media.extend(o_media)
        links.extend(o_links + list(text_links(o_text)))
        parts.extend([o_text, *o_texts])
        origins.append(
            VkOrigin(
                o_owner, o_id, post_url(o_owner, o_id), owner_outlet(o_owner, outlets), _when(copy.get("date")), o_text
            )
        )
    from_id = _int(raw.get("from_id")) or owner
    signer = _int(raw.get("signer_id"))
    author_id = signer or (from_id if from_id != owner else None)
    return VkPost(
        owner_id=owner,
        post_id=pid,
        from_id=from_id,
        url=post_url(owner, pid),
        date=date,
        text="\n\n".join(p for p in parts if p),
        author=people.get(author_id, "") if author_id is not None else "",
        pinned=bool(raw.get("is_pinned")),
        ads=bool(raw.get("marked_as_ads")),
        post_type=str(raw.get("post_type") or "post"),
        views=_count(raw, "views"),
        likes=_count(raw, "likes"),
        reposts=_count(raw, "reposts"),
        comments=_count(raw, "comments"),
        media=tuple(media),
        links=tuple(dict.fromkeys(links + list(text_links(own)))),
        origins=tuple(origins),
    )


def parse_wall_response(body: bytes) -> VkWallPage | VkApiError:
    """A ``wall.get`` answer: its page, or the API error. Raises :class:`ParseError` for anything else."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(f"not a VK API answer (not JSON: {exc})") from exc
    if not isinstance(data, dict):
        raise ParseError("not a VK API answer (not a JSON object)")
    if isinstance(data.get("error"), dict):
        return _error(data["error"])
    response = data.get("response")
    if not isinstance(response, dict) or not isinstance(response.get("items"), list):
        raise ParseError("not a wall.get answer (no response.items)")
    outlets, people = _names(response)
    posts: list[VkPost] = []
    skipped = 0
    for raw in response["items"]:
        post = _post(raw, outlets, people) if isinstance(raw, dict) else None
        if post is None:
            skipped += 1
        else:
            posts.append(post)
    count = _int(response.get("count"))
    return VkWallPage(
        count=count if count is not None else len(posts), posts=tuple(posts), skipped=skipped, owner_names=outlets
    )
