"""YouTube without an account: a channel's Atom feed, a watch page's caption tracks, a transcript.

Pure functions, no network:

* :func:`parse_channel_feed`: ``/feeds/videos.xml?channel_id=<id>`` (feedparser) -> videos with
  ``yt:videoId``, ``media:description`` and ``media:statistics`` views;
* :func:`detect_block`: the consent interstitial (a redirect to ``consent.youtube.com`` or its
  form, whatever the page's language) and rate-limit pages (HTTP 429, ``/sorry/``, the reCAPTCHA
  page) that YouTube answers instead of the content;
* :func:`parse_watch_page` / :func:`player_from_json`: ``ytInitialPlayerResponse`` of a watch
  page (or the ``youtubei/v1/player`` JSON) -> video details and caption tracks;
* :func:`choose_track`: the original-language track (see its docstring);
* :func:`transcript_path`: a track's ``baseUrl`` reduced to path and query on the configured
  host (content never chooses the host we connect to);
* :func:`parse_transcript`: the timedtext XML (``<transcript><text ...>``) -> plain text.
"""

from __future__ import annotations

import calendar
import html
import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import feedparser
import lxml.etree

from core.errors import ParseError

__all__ = [
    "Block",
    "CaptionTrack",
    "WatchPage",
    "YouTubeFeed",
    "YouTubeVideo",
    "choose_track",
    "detect_block",
    "parse_channel_feed",
    "parse_transcript",
    "parse_watch_page",
    "player_from_json",
    "transcript_path",
]


@dataclass(frozen=True)
class YouTubeVideo:
    """One feed entry: a video of the channel."""

    video_id: str
    channel_id: str
    title: str
    description: str
    published: datetime | None
    views: int | None
    author: str
    thumbnail: str


@dataclass(frozen=True)
class YouTubeFeed:
    """A channel feed: its title and videos, newest first as the feed lists them."""

    title: str
    videos: tuple[YouTubeVideo, ...]


_VIDEO_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")


def _int(value: Any) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


def parse_channel_feed(body: bytes, content_type: str | None = None) -> YouTubeFeed:
    """Parse a channel's Atom feed. Raises :class:`ParseError` when it is not a YouTube feed.

    Entries without a well-formed ``yt:videoId`` are skipped.
    """
    headers = {"content-type": content_type or "application/atom+xml"}
    parsed: Any = feedparser.parse(io.BytesIO(body), response_headers=headers)
    version = str(parsed.get("version") or "")
    if not version.startswith("atom"):
        raise ParseError("not an Atom feed")
    feed = parsed.get("feed") or {}
    entries = parsed.get("entries") or []
    if "yt_channelid" not in feed and not any("yt_videoid" in e for e in entries):
        raise ParseError("an Atom feed, but not a YouTube channel feed (no yt:channelId, no yt:videoId)")
    videos: list[YouTubeVideo] = []
    for entry in entries:
        video_id = str(entry.get("yt_videoid") or "").strip()
        if not _VIDEO_ID.match(video_id):
            continue
        stamp = entry.get("published_parsed") or entry.get("updated_parsed")
        published = datetime.fromtimestamp(calendar.timegm(stamp), UTC) if stamp else None
        stats = entry.get("media_statistics") or {}
        thumbs = entry.get("media_thumbnail") or [{}]
        videos.append(
            YouTubeVideo(
                video_id=video_id,
                channel_id=str(entry.get("yt_channelid") or "").strip(),
                title=str(entry.get("title") or "").strip(),
                # feedparser maps media:group/media:description to the entry's summary (plain text).
                description=str(entry.get("summary") or "").strip(),
                published=published,
                views=_int(stats.get("views")) if isinstance(stats, dict) else None,
                author=str(entry.get("author") or feed.get("author") or "").strip(),
                thumbnail=str(thumbs[0].get("url") or "") if isinstance(thumbs[0], dict) else "",
            )
        )
    return YouTubeFeed(title=str(feed.get("title") or "").strip(), videos=tuple(videos))


# --- consent and rate-limit pages ---------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """YouTube answered with an interstitial instead of content: ``consent`` or ``rate_limited``."""

    reason: str
    message: str


_CONSENT_FORM = re.compile(rb"""<form[^>]+action=["']?https://consent\.(?:youtube|google)\.[a-z.]+/""", re.I)
_CAPTCHA = re.compile(rb"""id=["']?captcha-page\b|/das_captcha\b|action=["']?/sorry/""", re.I)


def detect_block(status: int, location: str, body: bytes) -> Block | None:
    """The interstitial a response is, if any (``location``: a redirect's target, else "").

    * consent: a redirect to ``consent.youtube.com``/``consent.google.com``, or a page whose form
      posts there (the "Before you continue" page, in whatever language it is shown);
    * rate-limited: HTTP 429, a redirect to ``/sorry/`` (Google's block page), or the reCAPTCHA
      page ("unusual traffic from your network").
    """
    host = (urlsplit(location).hostname or "").lower() if location else ""
    if host.startswith("consent."):
        return Block("consent", f"redirected to the cookie-consent page {host}")
    if location and urlsplit(location).path.startswith("/sorry/"):
        return Block("rate_limited", "redirected to Google's /sorry/ block page (too many requests)")
    if status == 429:
        return Block("rate_limited", "HTTP 429 Too Many Requests")
    head = body[:400_000]
    if _CONSENT_FORM.search(head):
        return Block("consent", "a cookie-consent page (consent.youtube.com form) instead of the content")
    if _CAPTCHA.search(head):
        return Block("rate_limited", "a reCAPTCHA block page (too many requests from this network)")
    return None


# --- watch page ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaptionTrack:
    """One caption track offered by the player: ``kind`` is ``asr`` for automatic captions, else ""."""

    base_url: str
    language: str
    kind: str
    name: str


@dataclass(frozen=True)
class WatchPage:
    """What the player response says about a video."""

    video_id: str
    title: str
    channel_id: str
    author: str
    description: str
    views: int | None
    playable: str
    """``playabilityStatus.status``: ``OK``, ``ERROR``, ``LOGIN_REQUIRED``, ``UNPLAYABLE`` ..."""
    tracks: tuple[CaptionTrack, ...]
    default_track: int | None
    """The player's default caption track index for the default audio track, if it names one."""


_PLAYER_START = re.compile(r"ytInitialPlayerResponse\s*=\s*(?=\{)")


def parse_watch_page(text: str) -> WatchPage:
    """The ``ytInitialPlayerResponse`` of a watch page. Raises :class:`ParseError` without one."""
    decoder = json.JSONDecoder()
    for m in _PLAYER_START.finditer(text):
        try:
            obj, _end = decoder.raw_decode(text, m.end())
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            return player_from_json(obj)
    raise ParseError("no ytInitialPlayerResponse in the page (not a watch page)")


def _text(value: Any) -> str:
    if isinstance(value, dict):
        if "simpleText" in value:
            return str(value["simpleText"])
        return "".join(str(r.get("text", "")) for r in value.get("runs") or () if isinstance(r, dict))
    return str(value or "")


def player_from_json(obj: dict[str, Any]) -> WatchPage:
    """A player response (``ytInitialPlayerResponse`` or ``youtubei/v1/player``) as a :class:`WatchPage`."""
    details = obj.get("videoDetails") or {}
    if not isinstance(details, dict):
        details = {}
    renderer = (obj.get("captions") or {}).get("playerCaptionsTracklistRenderer") or {}
    tracks = []
    for raw in renderer.get("captionTracks") or ():
        if not isinstance(raw, dict) or not raw.get("baseUrl"):
            continue
        tracks.append(
            CaptionTrack(
                base_url=str(raw["baseUrl"]),
                language=str(raw.get("languageCode") or ""),
                kind=str(raw.get("kind") or ""),
                name=_text(raw.get("name")),
            )
        )
    default_track = None
    audio = renderer.get("audioTracks") or []
    index = renderer.get("defaultAudioTrackIndex", 0)
    if (
        isinstance(audio, list)
        and isinstance(index, int)
        and 0 <= index < len(audio)
        and isinstance(audio[index], dict)
    ):
        value = audio[index].get("defaultCaptionTrackIndex")
        if isinstance(value, int) and 0 <= value < len(tracks):
            default_track = value
    status = obj.get("playabilityStatus") or {}
    return WatchPage(
        video_id=str(details.get("videoId") or ""),
        title=str(details.get("title") or ""),
        channel_id=str(details.get("channelId") or ""),
        author=str(details.get("author") or ""),
        description=str(details.get("shortDescription") or ""),
        views=_int(details.get("viewCount")),
        playable=str(status.get("status") or "") if isinstance(status, dict) else "",
        tracks=tuple(tracks),
        default_track=default_track,
    )


def _base_language(code: str) -> str:
    return code.split("-", 1)[0].lower()


def choose_track(page: WatchPage, language_hint: str | None = None) -> CaptionTrack | None:
    """The transcript to read: the original language first.

    The video's language is taken from its automatic (``asr``) track, which YouTube generates in
    the spoken language; without one, from ``language_hint`` (the source's ``language``), else the
    player's default track. In that language a human-made track beats the automatic one; with no
    track in it, the player's default track, else the first human-made track, else the first.
    """
    if not page.tracks:
        return None
    asr = next((t for t in page.tracks if t.kind == "asr"), None)
    default = page.tracks[page.default_track] if page.default_track is not None else None
    if asr is not None:
        original = _base_language(asr.language)
    elif language_hint:
        original = _base_language(language_hint)
    else:
        original = _base_language(default.language) if default else ""
    same = [t for t in page.tracks if _base_language(t.language) == original]
    manual = [t for t in same if t.kind != "asr"]
    if manual:
        return manual[0]
    if same:
        return same[0]
    if default is not None:
        return default
    return next((t for t in page.tracks if t.kind != "asr"), page.tracks[0])


def transcript_path(track: CaptionTrack, video_id: str) -> str | None:
    """The track's timedtext request as a path and query for the configured host, or None.

    Only ``/api/timedtext`` for this ``video_id`` is accepted; the host, scheme and port of the
    ``baseUrl`` are ignored (so a tampered page cannot send the crawler elsewhere), and ``fmt`` is
    dropped so the classic ``<transcript><text>`` format comes back.
    """
    parts = urlsplit(track.base_url)
    if parts.path != "/api/timedtext":
        return None
    if dict(parse_qsl(parts.query, keep_blank_values=True)).get("v") != video_id:
        return None
    query = "&".join(p for p in parts.query.split("&") if p and not p.startswith("fmt="))
    return "/api/timedtext?" + query


# --- transcript ---------------------------------------------------------------------------------

_PARSER = lxml.etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, recover=False)


def parse_transcript(body: bytes) -> str:
    """Plain text of a timedtext transcript (``<transcript><text start dur>...</text>...``).

    Line texts are unescaped once more (YouTube escapes HTML inside the XML) and joined with
    spaces. Raises :class:`ParseError` for anything else (an empty body, HTML, another format).
    """
    if not body.strip():
        raise ParseError("empty transcript")
    try:
        root = lxml.etree.fromstring(body, _PARSER)
    except lxml.etree.XMLSyntaxError as exc:
        raise ParseError(f"transcript is not XML: {exc}") from exc
    if root.tag != "transcript":
        raise ParseError(f"not a timedtext transcript (root <{root.tag}>)")
    lines = []
    for el in root.iter("text"):
        line = " ".join(html.unescape("".join(el.itertext())).split())
        if line:
            lines.append(line)
    return " ".join(lines)
