"""Parse RSS 0.9x/1.0/2.0, Atom and JSON Feed bodies into frozen records (pure: no network).

XML feeds go through feedparser with the response's Content-Type, so it applies the usual
HTTP/XML-declaration encoding rules. Two repairs are layered on top, because mislabelled
Cyrillic feeds are common in our sources:

* a body that is valid UTF-8 (and not plain ASCII) is read as UTF-8 whatever the labels say:
  legacy 8-bit text that happens to be valid UTF-8 is vanishingly rare;
* when feedparser had to fall back to its last-resort encodings (windows-1252/iso-8859-2,
  i.e. every declared charset failed), the charset is guessed with charset-normalizer and the
  body is parsed again.

JSON Feed (https://jsonfeed.org/version/1.1) is not supported by feedparser and is parsed here.
"""

from __future__ import annotations

import email.utils
import io
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import urljoin

import feedparser

from core.errors import ParseError

__all__ = ["FeedEntry", "ParsedFeed", "parse_date_lenient", "parse_feed"]

log = logging.getLogger(__name__)

_UTF8_NAMES = frozenset({"utf-8", "utf8", "utf_8"})
# feedparser's own fallbacks when every declared/sniffed encoding failed to decode the body.
_FALLBACK_ENCODINGS = frozenset({"windows-1252", "iso-8859-2", "iso-8859-1", "cp1252"})
_XML_DECL_ENCODING = re.compile(rb"""^(\s*<\?xml[^>]*?encoding\s*=\s*)(["'])[^"']*\2""", re.IGNORECASE)
_GMT_OFFSET = re.compile(r"\b(?:GMT|UTC)\s*([+-])(\d{1,2})(?::?(\d{2}))?\s*$", re.IGNORECASE)
_TAG = re.compile(r"<[^<>]+>")  # [^<>]: a run of "<" without ">" stays linear
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class FeedEntry:
    """One item of a feed.

    ``key`` is the entry's guid/id when it has one, else its absolute link: stable per feed,
    use it (with the source id) to recognise entries already seen. ``published`` is aware UTC
    or None when the feed gives no parseable date.
    """

    key: str
    link: str
    title: str
    published: datetime | None
    author: str
    content_html: str
    summary_html: str
    categories: tuple[str, ...]


@dataclass(frozen=True)
class ParsedFeed:
    """A parsed feed: channel metadata, entries in feed order, and non-fatal problems found."""

    title: str
    link: str
    format: str
    entries: tuple[FeedEntry, ...]
    warnings: tuple[str, ...]


def parse_feed(body: bytes, url: str, content_type: str | None = None) -> ParsedFeed:
    """Parse a fetched feed body.

    ``url`` is the feed's URL (relative links are resolved against it); ``content_type`` is
    the response's Content-Type header, used for charset and JSON Feed detection.
    Raises :class:`~core.errors.ParseError` when the body is not a feed at all (empty, HTML,
    garbage, XML broken before any entry).
    """
    if not body or not body.strip():
        raise ParseError(f"{url}: empty body, not a feed")
    if _looks_like_json_feed(body, content_type):
        return _parse_json_feed(body, url)
    return _parse_xml_feed(body, url, content_type)


# --- XML feeds (feedparser) -------------------------------------------------------------------


def _feedparser(body: bytes, url: str, content_type: str | None) -> Any:
    # Without a header, feedparser flags every feed as bozo ("no Content-type") and guesses
    # latin-1; plain application/xml means "XML declaration, else UTF-8" (RFC 7303).
    headers = {"content-location": url, "content-type": content_type or "application/xml"}
    # A BytesIO, never the bytes themselves: feedparser treats strings as URLs or file paths.
    return feedparser.parse(io.BytesIO(body), response_headers=headers)


def _parse_xml_feed(body: bytes, url: str, content_type: str | None) -> ParsedFeed:
    warnings: list[str] = []
    parsed = _feedparser(body, url, content_type)
    charset = _better_charset(body, parsed)
    if charset is not None:
        warnings.append(
            f"{url}: declared/guessed charset {parsed.get('encoding')!r} did not fit the body; re-read as {charset}"
        )
        log.info("%s: re-reading feed as %s (feedparser chose %s)", url, charset, parsed.get("encoding"))
        parsed = _feedparser(_transcode_to_utf8(body, charset), url, "application/xml; charset=utf-8")

    version = str(parsed.get("version") or "")
    raw_entries = list(parsed.get("entries") or [])
    bozo_exc = parsed.get("bozo_exception") if parsed.get("bozo") else None
    if not raw_entries and (bozo_exc is not None or not version):
        reason = f"{type(bozo_exc).__name__}: {bozo_exc}" if bozo_exc is not None else "no RSS/Atom elements found"
        raise ParseError(f"{url}: not a feed ({reason}; content type {content_type!r})")
    if bozo_exc is not None and not _is_encoding_note(bozo_exc, charset):
        warnings.append(f"{url}: feedparser flagged the feed ({type(bozo_exc).__name__}: {bozo_exc}); parsed anyway")
    found = len(raw_entries)
    if bozo_exc is not None and raw_entries and _last_entry_cut(body):
        # A body cut off inside an entry: that entry's text is cut too. Indexed, it would be
        # marked seen and never completed; leave it for the next, complete fetch.
        warnings.append(f"{url}: entry #{found - 1} is cut off by the end of the body; skipped")
        raw_entries = raw_entries[:-1]

    feed_meta = parsed.get("feed") or {}
    entries: list[FeedEntry] = []
    undated = 0
    for index, raw in enumerate(raw_entries):
        entry = _xml_entry(raw, url)
        if entry is None:
            warnings.append(f"{url}: entry #{index} has neither link nor id; skipped")
            continue
        undated += entry.published is None
        entries.append(entry)
    if found and not entries:
        if bozo_exc is not None:  # e.g. truncated inside the first entry: nothing usable, not a feed to trust
            raise ParseError(
                f"{url}: broken feed: {found} entries, none complete"
                f" ({type(bozo_exc).__name__}: {bozo_exc}; content type {content_type!r})"
            )
        warnings.append(f"{url}: {found} entries in a non-empty body, none usable (no link or id)")
    if undated:
        warnings.append(f"{url}: {undated} of {len(entries)} entries have no parseable date")
    return ParsedFeed(
        title=_plain(str(feed_meta.get("title") or "")),
        link=_absolute(url, feed_meta.get("link")),
        format=version or "unknown",
        entries=tuple(entries),
        warnings=tuple(warnings),
    )


def _last_entry_cut(body: bytes) -> bool:
    """The body ends inside an entry: an ``<item``/``<entry`` opens after the last one closed."""
    opened = max(body.rfind(b"<item"), body.rfind(b"<entry"))
    closed = max(body.rfind(b"</item>"), body.rfind(b"</entry>"))
    return opened > closed


def _is_encoding_note(exc: object, recharset: str | None) -> bool:
    """A charset override after our own repair is already reported; don't report it twice."""
    return recharset is not None and type(exc).__name__ == "CharacterEncodingOverride"


def _better_charset(body: bytes, parsed: Any) -> str | None:
    """The charset to re-read ``body`` with, or None when feedparser's choice is fine."""
    if body.isascii():
        return None
    used = str(parsed.get("encoding") or "").lower().replace("_", "-")
    if _is_utf8(body):
        return None if used in _UTF8_NAMES or used.startswith("utf-16") or used.startswith("utf-32") else "utf-8"
    if used not in _FALLBACK_ENCODINGS:
        return None
    guess = _guess_charset(body)
    if guess is None or guess.lower().replace("_", "-") in _FALLBACK_ENCODINGS:
        return None
    return guess


def _is_utf8(body: bytes) -> bool:
    """Valid UTF-8, also when a truncated body ends inside a multi-byte character."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A transfer cut mid-character is still UTF-8; guessing another charset would garble every entry.
        return exc.reason == "unexpected end of data" and exc.start >= len(body) - 3
    return True


def _guess_charset(body: bytes) -> str | None:
    import charset_normalizer  # imported lazily: only mislabelled feeds need it

    best = charset_normalizer.from_bytes(body).best()
    return None if best is None else str(best.encoding)


def _transcode_to_utf8(body: bytes, charset: str) -> bytes:
    text = body.decode(charset, errors="replace").lstrip("\ufeff").encode("utf-8")
    return _XML_DECL_ENCODING.sub(rb"\1\2utf-8\2", text, count=1)


def _xml_entry(raw: Mapping[str, Any], feed_url: str) -> FeedEntry | None:
    link = _absolute(feed_url, raw.get("link"))
    # feedparser resolves a relative guid against the feed URL (RSS guids default to
    # isPermaLink); the result is still stable and unique within the feed, so it is a fine key.
    ident = str(raw.get("id") or "").strip()
    if not link and not ident:
        return None
    title_detail = raw.get("title_detail") or {}
    title = str(raw.get("title") or "")
    if "html" in str(title_detail.get("type") or ""):
        title = _TAG.sub(" ", title)
    contents = [c for c in raw.get("content") or [] if c.get("value")]
    html_contents = [c for c in contents if "html" in str(c.get("type") or "")]
    content_html = str((html_contents or contents)[0]["value"]) if contents else ""
    return FeedEntry(
        key=ident or link,
        link=link,
        title=_plain(title),
        published=_entry_date(raw),
        author=_plain(str(raw.get("author") or "")),
        content_html=content_html,
        summary_html=str(raw.get("summary") or ""),
        categories=_unique(str(t.get("term") or "") for t in raw.get("tags") or []),
    )


def _entry_date(raw: Mapping[str, Any]) -> datetime | None:
    for field in ("published", "updated", "created"):
        parsed = raw.get(f"{field}_parsed")
        if parsed:  # feedparser's struct_time is already normalised to UTC
            year, month, day, hour, minute, second = parsed[:6]
            second = min(second, 59)  # struct_time allows leap seconds, datetime does not
            return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    for field in ("published", "updated", "created"):
        value = raw.get(field)
        if value:
            when = parse_date_lenient(str(value))
            if when is not None:
                return when
    return None


def parse_date_lenient(value: str) -> datetime | None:
    """Parse an RFC 822 or ISO 8601 date as aware UTC, tolerating common feed sloppiness.

    Handles ``GMT+9``-style offsets, missing spaces after the weekday comma and single-digit
    time fields; a date without a zone is taken as UTC. Returns None when nothing fits.
    """
    text = _SPACE.sub(" ", value.strip())
    if not text:
        return None
    try:
        iso = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        pass
    else:
        return _as_utc(iso)
    offset = _GMT_OFFSET.search(text)
    if offset:
        sign, hours, minutes = offset.groups()
        text = f"{text[: offset.start()].rstrip()} {sign}{int(hours):02d}{int(minutes or 0):02d}"
    text = re.sub(r"^([A-Za-z]{3}),(?=\S)", r"\1, ", text)
    try:
        rfc = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return _as_utc(rfc)


def _as_utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


# --- JSON Feed --------------------------------------------------------------------------------


def _looks_like_json_feed(body: bytes, content_type: str | None) -> bool:
    head = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:4096]
    if not head.startswith(b"{"):  # an XML feed served as JSON still goes to feedparser
        return False
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    return mime in ("application/feed+json", "application/json") or b"jsonfeed.org/version" in head.replace(
        b"\\/", b"/"
    )


def _parse_json_feed(body: bytes, url: str) -> ParsedFeed:
    try:
        doc = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(f"{url}: not a JSON Feed ({type(exc).__name__}: {exc})") from exc
    if not isinstance(doc, dict) or not str(doc.get("version", "")).startswith("https://jsonfeed.org/version/"):
        raise ParseError(f"{url}: JSON body without a https://jsonfeed.org/version/ 'version' key, not a JSON Feed")
    version = str(doc["version"]).rstrip("/").rsplit("/", 1)[-1]
    warnings: list[str] = []
    items = doc.get("items")
    if not isinstance(items, list):
        raise ParseError(f"{url}: JSON Feed without an 'items' list")
    feed_authors = _json_authors(doc)
    entries: list[FeedEntry] = []
    undated = 0
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            warnings.append(f"{url}: item #{index} is not an object; skipped")
            continue
        entry = _json_entry(item, url, feed_authors)
        if entry is None:
            warnings.append(f"{url}: item #{index} has neither url nor id; skipped")
            continue
        undated += entry.published is None
        entries.append(entry)
    if items and not entries:
        warnings.append(f"{url}: {len(items)} items in a non-empty body, none usable (no url or id)")
    if undated:
        warnings.append(f"{url}: {undated} of {len(entries)} items have no parseable date")
    return ParsedFeed(
        title=_plain(str(doc.get("title") or "")),
        link=_absolute(url, doc.get("home_page_url")),
        format="json" + version.replace(".", ""),
        entries=tuple(entries),
        warnings=tuple(warnings),
    )


def _json_entry(item: Mapping[str, Any], feed_url: str, feed_authors: str) -> FeedEntry | None:
    link = _absolute(feed_url, item.get("url") or item.get("external_url"))
    ident = item.get("id")
    key = "" if ident is None else str(ident).strip()  # 1.0 feeds sometimes use numbers
    if not link and not key:
        return None
    content_html = str(item.get("content_html") or "")
    if not content_html and item.get("content_text"):
        content_html = escape(str(item["content_text"])).replace("\n", "<br/>\n")
    published = None
    for field in ("date_published", "date_modified"):
        if item.get(field):
            published = parse_date_lenient(str(item[field]))
            if published is not None:
                break
    return FeedEntry(
        key=key or link,
        link=link,
        title=_plain(str(item.get("title") or "")),
        published=published,
        author=_json_authors(item) or feed_authors,
        content_html=content_html,
        summary_html=escape(str(item.get("summary") or "")),
        categories=_unique(str(t) for t in item.get("tags") or [] if isinstance(t, str | int)),
    )


def _json_authors(obj: Mapping[str, Any]) -> str:
    """Names from 1.1 ``authors`` or 1.0 ``author``, comma-joined."""
    authors = obj.get("authors")
    if not isinstance(authors, list):
        authors = [obj["author"]] if isinstance(obj.get("author"), dict) else []
    names = (str(a.get("name") or "").strip() for a in authors if isinstance(a, dict))
    return ", ".join(n for n in names if n)


# --- helpers ----------------------------------------------------------------------------------


def _absolute(base: str, link: object) -> str:
    text = str(link or "").strip()
    return urljoin(base, text) if text else ""


def _plain(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for value in values:
        clean = _plain(value)
        if clean:
            seen.setdefault(clean, None)
    return tuple(seen)
