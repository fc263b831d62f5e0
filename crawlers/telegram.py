"""Parse public Telegram channel web previews (``https://t.me/s/<channel>``) into frozen records.

Pure functions, no network. The page lists the newest ~20 posts oldest first; older ones are
fetched with ``?before=<id>`` (see :attr:`TelegramPage.before`).

Service messages ("Channel created", "Channel photo updated", ...) are skipped: they carry no
content to monitor. They still count for paging, so a page made only of them does not stall it.

:func:`screen_page` applies a source's trust rules to a parsed page: message ids of another
channel, and ids that jump implausibly far from the page's other ids (and the stored watermark),
are rejected so that one forged ``data-post`` cannot move the watermark past every real post.
"""

from __future__ import annotations

import logging
import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from html import escape
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import lxml.etree
import lxml.html

from core.errors import ParseError

__all__ = [
    "MAX_ID_DISTANCE",
    "RejectedId",
    "ScreenedPage",
    "TelegramPage",
    "TelegramPost",
    "parse_channel_page",
    "parse_reactions",
    "parse_views",
    "screen_page",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TelegramPost:
    """One channel post as shown on the web preview.

    ``text`` is plain text with line breaks kept (``<br>`` -> newline); ``html`` is the message
    text's inner HTML as Telegram rendered it. ``links`` are the absolute hrefs in the text,
    in order, without duplicates. ``forwarded_from``/``forwarded_from_url`` name the origin of a
    forwarded post (empty when not forwarded or the origin hides its link). ``media`` holds one
    marker per attachment in page order: photo, video, round_video, voice, audio, document,
    poll, location, sticker. ``author`` is the post's signature, if the channel signs posts.

    ``reactions`` maps each reaction shown under the post to its count, in page order: the emoji
    itself (``"👍"``), ``"custom:<emoji-id>"`` for a custom emoji (the page carries only its id)
    and ``"paid"`` for paid Telegram Stars reactions; empty when the page shows none (channels
    can turn reactions off). The preview page shows no forward count: forwards are known only
    as the ``forwarded_from`` edges of posts we crawl.
    """

    channel: str
    message_id: int
    url: str
    date: datetime
    text: str
    html: str
    views: int | None
    links: tuple[str, ...]
    forwarded_from: str
    forwarded_from_url: str
    media: tuple[str, ...]
    author: str
    reactions: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class TelegramPage:
    """One preview page: the channel's title, its posts in page order and the paging cursor.

    ``before`` is the id to request older posts with (``?before=<id>``), None when the page
    shows no messages or its oldest message is the channel's first. ``message_ids`` lists every
    message block's ``(channel, id)`` from ``data-post`` in page order, service messages included.
    """

    channel: str
    title: str
    posts: tuple[TelegramPost, ...]
    before: int | None
    message_ids: tuple[tuple[str, int], ...] = ()


MAX_ID_DISTANCE = 1000
"""How far (in message ids) an id may lie from the median of its page to be believed.

A page shows ~20 consecutive posts; even a page of 10-photo albums spans only ~200 ids."""


@dataclass(frozen=True)
class RejectedId:
    """A ``data-post`` the source's rules refused: ``reason`` is ``foreign_channel`` or ``implausible_id``."""

    channel: str
    message_id: int
    reason: str
    detail: str


@dataclass(frozen=True)
class ScreenedPage:
    """A page after :func:`screen_page`: believed posts, believed ids (ascending) and the rejects."""

    posts: tuple[TelegramPost, ...]
    ids: tuple[int, ...]
    rejected: tuple[RejectedId, ...]


def _has_class(name: str) -> str:
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"


_MESSAGES = f"//div[{_has_class('tgme_widget_message')}][@data-post]"
_TEXT = (
    f".//div[{_has_class('tgme_widget_message_text')}]"
    f"[not(ancestor::*[{_has_class('tgme_widget_message_reply')} or {_has_class('tgme_widget_message_link_preview')}])]"
)
# (xpath predicate, marker); matched on wrapper elements only so nested parts are not counted twice.
_MEDIA_KINDS: tuple[tuple[str, str], ...] = (
    ("tgme_widget_message_photo_wrap", "photo"),
    ("tgme_widget_message_video_player", "video"),
    ("tgme_widget_message_roundvideo_player", "round_video"),
    ("tgme_widget_message_voice_player", "voice"),
    ("tgme_widget_message_document_wrap", "document"),
    ("tgme_widget_message_poll", "poll"),
    ("tgme_widget_message_location_wrap", "location"),
    ("tgme_widget_message_sticker_wrap", "sticker"),
)
_MEDIA = ".//*[" + " or ".join(_has_class(cls) for cls, _ in _MEDIA_KINDS) + "]"
_INDENT = re.compile(r"(?<![ \t\r\f])[ \t\r\f]*\n\s*")  # starts only where a run starts: linear
_VIEWS = re.compile(r"^([0-9]+(?:[.,][0-9]+)?)\s*([KMB]?)$", re.IGNORECASE)
_SCALE = {"": 1, "K": 1_000, "M": 1_000_000, "B": 1_000_000_000}


def parse_channel_page(html: str | bytes, channel: str, base_url: str = "https://t.me") -> TelegramPage:
    """Parse a ``t.me/s/<channel>`` page (or a fragment of one holding its message blocks).

    Raises :class:`~core.errors.ParseError` when the document is not a channel preview: no
    message blocks and no channel header (e.g. the plain ``t.me/<channel>`` landing page that
    channels with previews disabled redirect to, or any other HTML).
    """
    channel = channel.strip().lstrip("@")
    text = html.decode("utf-8", errors="replace") if isinstance(html, bytes) else html
    if not text.strip():
        raise ParseError(f"t.me/s/{channel}: empty page")
    try:
        doc = lxml.html.document_fromstring(text)
    except (lxml.etree.ParserError, ValueError) as exc:
        raise ParseError(f"t.me/s/{channel}: unparseable HTML ({exc})") from exc
    nodes = doc.xpath(_MESSAGES)
    has_header = bool(doc.xpath("//*[starts-with(@class, 'tgme_channel_info')]"))
    if not nodes and not has_header:
        raise ParseError(f"t.me/s/{channel}: not a channel preview page (no messages, no channel header)")
    page_url = f"{base_url.rstrip('/')}/s/{channel}"

    posts: list[TelegramPost] = []
    ids: list[int] = []
    idents: list[tuple[str, int]] = []
    for node in nodes:
        ident = _post_ident(node)
        if ident is None:
            log.warning("%s: message without a usable data-post %r; skipped", page_url, node.get("data-post"))
            continue
        ids.append(ident[1])
        idents.append(ident)
        if "service_message" in (node.get("class") or "").split():
            continue
        post = _post(node, ident, page_url)
        if post is not None:
            posts.append(post)
    return TelegramPage(
        channel=channel, title=_title(doc), posts=tuple(posts), before=_before(doc, ids), message_ids=tuple(idents)
    )


def screen_page(page: TelegramPage, channel: str, watermark: int | None = None) -> ScreenedPage:
    """Keep the page's messages that belong to ``channel`` and whose ids are plausible.

    Rules (a rejected id is neither emitted nor used for the watermark or the paging cursor):

    * ``foreign_channel``: the ``data-post`` names another channel (usernames compare
      case-insensitively, as Telegram treats them).
    * ``implausible_id``: the id lies more than :data:`MAX_ID_DISTANCE` from the lower median
      of the page's own-channel ids together with the stored ``watermark``. Channel ids are
      sequential, so genuine ids cluster; a forged ``channel/999999999`` does not. The watermark
      counts as one more id so that a page holding one real post and one forged id still
      anchors on the real one. A genuine post rejected after a mass deletion is taken by a
      later run, once newer posts surround it.
    """
    want = channel.strip().lstrip("@").lower()
    rejected: list[RejectedId] = []
    own: list[int] = []
    for name, message_id in page.message_ids:
        if name.lower() != want:
            rejected.append(
                RejectedId(name, message_id, "foreign_channel", f"data-post {name}/{message_id} is not channel {want}")
            )
        else:
            own.append(message_id)
    accepted: set[int] = set()
    if own:
        anchor = statistics.median_low(own + ([watermark] if watermark is not None else []))
        for message_id in own:
            if abs(message_id - anchor) > MAX_ID_DISTANCE:
                rejected.append(
                    RejectedId(
                        want,
                        message_id,
                        "implausible_id",
                        f"data-post {want}/{message_id} is {abs(message_id - anchor)} ids from the page's"
                        f" median id {anchor} (limit {MAX_ID_DISTANCE})",
                    )
                )
            else:
                accepted.add(message_id)
    posts = tuple(p for p in page.posts if p.channel.lower() == want and p.message_id in accepted)
    return ScreenedPage(posts=posts, ids=tuple(sorted(accepted)), rejected=tuple(rejected))


def parse_views(text: str) -> int | None:
    """``"2"`` -> 2, ``"1.2K"`` -> 1200, ``"3.4M"`` -> 3400000; None when not a count."""
    match = _VIEWS.match(text.replace("\xa0", "").replace(" ", "").strip())
    if not match:
        return None
    number, suffix = match.groups()
    try:
        value = Decimal(number.replace(",", "."))
    except InvalidOperation:  # pragma: no cover - the regex only lets numbers through
        return None
    return int(value * _SCALE[suffix.upper()])


def parse_reactions(node: lxml.html.HtmlElement) -> tuple[tuple[str, int], ...]:
    """The reactions under one message block: ``((key, count), ...)`` in page order.

    Real markup (t.me/s, 2024-2025) is one ``span.tgme_reaction`` per reaction inside
    ``div.tgme_widget_message_reactions``: ``<i class="emoji"><b>👍</b></i>1.2K`` for an emoji,
    ``<tg-emoji emoji-id="..."></tg-emoji>194K`` for a custom one and, with the extra class
    ``tgme_reaction_paid``, ``<i class="icon icon-telegram-stars"></i>16.8K`` for paid Stars. The
    count is the span's text after the emoji, in the same compact form as views. Spans without a
    readable count are skipped; the same key twice is summed.
    """
    out: dict[str, int] = {}
    for span in node.xpath(f".//*[{_has_class('tgme_widget_message_reactions')}]//*[{_has_class('tgme_reaction')}]"):
        classes = set((span.get("class") or "").split())
        glyph = _first(span.xpath(".//i[contains(concat(' ', normalize-space(@class), ' '), ' emoji ')]//b"))
        custom = _first(span.xpath(".//tg-emoji/@emoji-id"))
        if "tgme_reaction_paid" in classes:
            key = "paid"
        elif glyph is not None and glyph.text_content().strip():
            key = glyph.text_content().strip()
        elif custom:
            key = f"custom:{custom}"
        else:
            continue
        # The count is the text that is not inside the emoji's own element.
        parts = [span.text or ""] + [child.tail or "" for child in span]
        count = parse_views("".join(parts).replace("\u202f", ""))
        if count is None:
            continue
        out[key] = out.get(key, 0) + count
    return tuple(out.items())


# --- one message --------------------------------------------------------------------------------


def _post_ident(node: lxml.html.HtmlElement) -> tuple[str, int] | None:
    name, _, number = (node.get("data-post") or "").rpartition("/")
    if not name or not number.isdigit():
        return None
    return name, int(number)


def _post(node: lxml.html.HtmlElement, ident: tuple[str, int], page_url: str) -> TelegramPost | None:
    name, message_id = ident
    # Relative hrefs (hashtag searches "?q=%23tag") are relative to the post's own channel page.
    page_url = urljoin(page_url, f"/s/{name}")
    date_link = _first(node.xpath(f".//a[{_has_class('tgme_widget_message_date')}]"))
    stamp = _first(node.xpath(f".//a[{_has_class('tgme_widget_message_date')}]//time/@datetime")) or _first(
        node.xpath(".//time[@datetime]/@datetime")
    )
    date = _iso_utc(str(stamp or ""))
    if date is None:
        log.warning("%s: post %s has no readable date; skipped", page_url, message_id)
        return None
    url = urljoin(page_url, date_link.get("href")) if date_link is not None and date_link.get("href") else ""
    url = url or urljoin(page_url, f"/{name}/{message_id}")

    text_el = _message_text_element(node)
    text = _plain_text(text_el) if text_el is not None else ""
    inner = _inner_html(text_el) if text_el is not None else ""
    links = _links(text_el, page_url) if text_el is not None else ()
    media = tuple(_media_kind(el) for el in node.xpath(_MEDIA))
    if not text and "poll" in media:  # a poll's question is its content
        text = _node_text(node, "tgme_widget_message_poll_question")

    forwarded = _first(node.xpath(f".//*[{_has_class('tgme_widget_message_forwarded_from_name')}]"))
    forwarded_href = forwarded.get("href") if forwarded is not None else None
    views_text = _node_text(node, "tgme_widget_message_views")
    return TelegramPost(
        channel=name,
        message_id=message_id,
        url=url,
        date=date,
        text=text,
        html=inner,
        views=parse_views(views_text) if views_text else None,
        links=links,
        forwarded_from=_squash(forwarded.text_content()) if forwarded is not None else "",
        forwarded_from_url=urljoin(page_url, forwarded_href) if forwarded_href else "",
        media=media,
        author=_node_text(node, "tgme_widget_message_from_author"),
        reactions=parse_reactions(node),
    )


def _message_text_element(node: lxml.html.HtmlElement) -> lxml.html.HtmlElement | None:
    candidates = node.xpath(_TEXT)
    # Album captions come as a text div wrapped in another one: take the innermost.
    innermost = [c for c in candidates if not c.xpath(f".//div[{_has_class('tgme_widget_message_text')}]")]
    chosen = _first(innermost)
    return chosen if chosen is not None else _first(candidates)


def _plain_text(element: lxml.html.HtmlElement) -> str:
    """Text with ``<br>`` as newline; source-indentation whitespace (raw newlines) collapsed."""
    parts: list[str] = []

    def walk(el: lxml.html.HtmlElement, pre: bool) -> None:
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag == "br":
            parts.append("\n")
        elif el.text and tag:
            parts.append(el.text if pre else _INDENT.sub(" ", el.text))
        for child in el:
            if isinstance(child.tag, str):  # skip comments and processing instructions
                walk(child, pre or child.tag in ("pre", "code"))
            if child.tail:
                parts.append(child.tail if pre else _INDENT.sub(" ", child.tail))

    walk(element, element.tag == "pre")
    return "".join(parts).strip()


def _inner_html(element: lxml.html.HtmlElement) -> str:
    head = escape(element.text or "", quote=False)
    body = "".join(lxml.html.tostring(child, encoding="unicode", with_tail=True) for child in element)
    return (head + body).strip()


def _links(element: lxml.html.HtmlElement, page_url: str) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for href in element.xpath(".//a/@href"):
        href = str(href).strip()
        if not href or href.lower().startswith(("javascript:", "mailto:", "tel:")):
            continue
        seen.setdefault(urljoin(page_url, href), None)
    return tuple(seen)


def _media_kind(element: lxml.html.HtmlElement) -> str:
    classes = set((element.get("class") or "").split())
    for cls, kind in _MEDIA_KINDS:
        if cls in classes:
            if kind == "document" and element.xpath(
                f".//*[{_has_class('tgme_widget_message_document_icon')}][{_has_class('audio')}]"
            ):
                return "audio"
            return kind
    return "unknown"  # pragma: no cover - _MEDIA selects only the classes above


# --- page-level ---------------------------------------------------------------------------------


def _title(doc: lxml.html.HtmlElement) -> str:
    header = _node_text(doc, "tgme_channel_info_header_title")
    if header:
        return header
    og = _first(doc.xpath("//meta[@property='og:title']/@content"))
    if og:
        return _squash(str(og))
    title = _first(doc.xpath("//title/text()"))
    return _squash(str(title or "")).removesuffix("– Telegram").strip()


def _before(doc: lxml.html.HtmlElement, ids: list[int]) -> int | None:
    if not ids:
        return None
    for value in doc.xpath(f"//a[{_has_class('tme_messages_more')}]/@data-before"):
        if str(value).isdigit():
            return int(value)
    hrefs = doc.xpath(f"//a[{_has_class('tme_messages_more')}]/@href") + doc.xpath("//link[@rel='prev']/@href")
    for href in hrefs:
        values = parse_qs(urlsplit(str(href)).query).get("before", [])
        if values and values[0].isdigit():
            return int(values[0])
    oldest = min(ids)
    return oldest if oldest > 1 else None  # message 1 is the channel's first: nothing older


# --- helpers ------------------------------------------------------------------------------------


def _first(values: Iterable[Any]) -> Any:
    """The first item of an XPath result (element or string), or None."""
    for value in values:
        return value
    return None


def _node_text(root: lxml.html.HtmlElement, cls: str) -> str:
    element = _first(root.xpath(f".//*[{_has_class(cls)}]"))
    return _squash(element.text_content()) if element is not None else ""


def _squash(text: str) -> str:
    return " ".join(text.split())


def _iso_utc(value: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
