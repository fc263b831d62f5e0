"""Main-text extraction from HTML pages with trafilatura.

:func:`extract_article` turns one HTML page (``str`` or raw ``bytes``) into an :class:`Extracted`
record: title, main text (paragraphs separated by a blank line), author, publication time (UTC),
site name, the page's declared language and the absolute links found in the main text.

Robustness:

* bytes are decoded by trafilatura (``<meta charset>`` / HTTP-equiv, then detection);
* input larger than :data:`MAX_INPUT_BYTES` (2 MB) is truncated before parsing, which bounds the
  time lxml and trafilatura spend on hostile pages (script or attribute soup); lxml recovers from
  broken markup, and trafilatura strips scripts/styles before it looks for the main text;
* the patterns run over the raw page (``<meta>`` dates, the declared language) and over titles
  never scan past the next ``<`` or backtrack across a long run, so they stay linear on hostile
  input such as thousands of unclosed ``<meta`` or a megabyte without a space;
* a page without usable main text raises :class:`core.errors.ExtractionError`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import trafilatura
from lxml import etree

from core.errors import ExtractionError

__all__ = ["MAX_INPUT_BYTES", "Extracted", "extract_article"]

logger = logging.getLogger(__name__)

MAX_INPUT_BYTES = 2_000_000
"""Pages are truncated to this many bytes (characters for ``str`` input) before parsing."""

_BLOCK_TAGS = frozenset({"p", "head", "quote", "list", "table", "code", "div", "item", "row"})
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_META_DATE_KEYS = (
    "article:published_time",
    "og:article:published_time",
    "datepublished",
    "date",
    "dc.date.issued",
    "pubdate",
    "publishdate",
    "sailthru.date",
)
# Tag bodies stop at the next "<" as well as ">": "<meta <meta <meta ..." is then read once, not
# 2000 characters per "<meta". Attribute names start only where a name can start (the lookbehind).
_META_RE = re.compile(r"<meta\b[^<>]{0,2000}>", re.IGNORECASE)
_HTML_TAG_RE = re.compile(r"<html\b[^<>]{0,2000}", re.IGNORECASE)
_ATTR_RE = re.compile(r"""(?<![a-zA-Z:._-])([a-zA-Z:._-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_JSONLD_DATE_RE = re.compile(r'"datePublished"\s*:\s*"([^"]{8,40})"')


@dataclass(frozen=True)
class Extracted:
    """What :func:`extract_article` found on a page."""

    title: str
    text: str
    """Main text; paragraphs are separated by ``"\\n\\n"``, list items by ``"\\n"``."""
    author: str
    published: datetime | None
    """Publication time in UTC (midnight UTC when only a day is known), or None."""
    sitename: str
    language_hint: str | None
    """The page's declared language (``<html lang>`` / meta), two letters, or None."""
    links: tuple[str, ...]
    """Absolute http(s) links found in the main text, in order, without duplicates."""


def extract_article(html: str | bytes, url: str) -> Extracted:
    """Extract the main article of one HTML page (see the module docstring for limits).

    Raises :class:`core.errors.ExtractionError` when the page has no usable main text.
    """
    if isinstance(html, bytes):
        if len(html) > MAX_INPUT_BYTES:
            logger.info("truncating %s from %d to %d bytes", url, len(html), MAX_INPUT_BYTES)
            html = html[:MAX_INPUT_BYTES]
        if not html.strip():
            raise ExtractionError(f"{url}: empty page")
    else:
        if len(html) > MAX_INPUT_BYTES:
            logger.info("truncating %s from %d to %d characters", url, len(html), MAX_INPUT_BYTES)
            html = html[:MAX_INPUT_BYTES]
        if not html.strip():
            raise ExtractionError(f"{url}: empty page")
    try:
        doc = trafilatura.bare_extraction(
            html,
            url=url,
            favor_precision=True,
            include_comments=False,
            include_tables=True,
            include_links=True,
            with_metadata=True,
            date_extraction_params={"extensive_search": True, "original_date": True},
        )
    except (ValueError, TypeError, etree.LxmlError) as exc:  # trafilatura mostly returns None instead
        raise ExtractionError(f"{url}: extraction failed: {exc}") from exc
    if doc is None or isinstance(doc, dict) or doc.body is None:
        raise ExtractionError(f"{url}: no main text found")
    text, links = _body_text_and_links(doc.body, url)
    if not text:
        raise ExtractionError(f"{url}: no main text found")
    raw = html if isinstance(html, str) else html[:400_000].decode("utf-8", errors="replace")
    published = _meta_datetime(raw, doc.date) or _parse_datetime(doc.date)
    return Extracted(
        title=_strip_site_name(_clean_line(doc.title or ""), doc.sitename or "", url),
        text=text,
        author=_clean_line(doc.author or ""),
        published=published,
        sitename=_clean_line(doc.sitename or ""),
        language_hint=_declared_language(raw),
        links=links,
    )


# Separators start only at the start of a run of spaces (the lookbehinds): a title of a million
# spaces is then scanned once, not once per space.
_TITLE_SEPARATOR = re.compile(r"(?<!\s)\s+[-|–—:·•»]\s+|(?<!\s)\s*[|ㅣ]\s*")


def _strip_site_name(title: str, sitename: str, url: str) -> str:
    """``"Headline - Site"`` -> ``"Headline"`` when the last part names the site or its host."""
    parts = _TITLE_SEPARATOR.split(title)
    if len(parts) < 2:
        return title
    last = parts[-1].casefold().strip()
    host = (urlsplit(url).hostname or "").removeprefix("www.").casefold()
    labels = {host, host.split(".")[0]} - {""}
    site = sitename.casefold().strip()
    if last and (
        (site and (last == site or last in site or site in last)) or any(lab and lab in last for lab in labels)
    ):
        match = list(_TITLE_SEPARATOR.finditer(title))[-1]
        stripped = title[: match.start()].strip()
        return stripped or title
    return title


def _clean_line(value: str) -> str:
    return _SPACES.sub(" ", value.replace("\n", " ")).strip()


def _inline_text(element: Any) -> str:
    """Text of one block, ``<lb/>`` as a line break, whitespace collapsed within lines."""
    parts: list[str] = []

    def walk(el: Any) -> None:
        if el.tag == "lb":
            parts.append("\n")
        elif el.text:
            parts.append(el.text)
        for child in el:
            walk(child)
            if child.tail:
                parts.append(child.tail)

    walk(element)
    lines = (_clean_line(line) for line in "".join(parts).split("\n"))
    return "\n".join(line for line in lines if line)


def _blocks(body: Any) -> Iterator[str]:
    for child in body:
        tag = child.tag
        if tag in ("list", "table"):
            rows = []
            for item in child:
                if tag == "table":
                    cells = [_inline_text(cell) for cell in item]
                    row = " | ".join(c for c in cells if c)
                else:
                    row = _inline_text(item)
                if row:
                    rows.append(row)
            block = "\n".join(rows)
        elif tag == "graphic":
            continue
        elif tag in _BLOCK_TAGS and any(grand.tag in _BLOCK_TAGS for grand in child):
            yield from _blocks(child)
            continue
        else:
            block = _inline_text(child)
        if block:
            yield block


def _body_text_and_links(body: Any, base_url: str) -> tuple[str, tuple[str, ...]]:
    text = "\n\n".join(_blocks(body))
    seen: dict[str, None] = {}
    for ref in body.iter("ref"):
        target = (ref.get("target") or "").strip()
        if not target:
            continue
        absolute = urljoin(base_url, target)
        if urlsplit(absolute).scheme in ("http", "https"):
            seen.setdefault(absolute, None)
    return text, tuple(seen)


def _parse_datetime(value: str | None) -> datetime | None:
    """ISO-8601 date or date-time to UTC; naive values are taken as UTC."""
    if not value:
        return None
    value = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(value[:10])
        except ValueError:
            return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _attributes(tag: str) -> dict[str, str]:
    """Quoted attributes of one tag, names lower-cased (the first of a repeated name wins)."""
    attrs: dict[str, str] = {}
    for m in _ATTR_RE.finditer(tag):
        attrs.setdefault(m.group(1).lower(), m.group(2) if m.group(2) is not None else m.group(3))
    return attrs


def _meta_datetime(raw: str, day: str | None) -> datetime | None:
    """A full publication timestamp from ``<meta>`` or JSON-LD, if it agrees with trafilatura's day.

    trafilatura (htmldate) keeps only the day; the page's own metadata usually has the time.
    """
    candidates: list[str] = []
    for tag in _META_RE.findall(raw):
        attrs = _attributes(tag)
        key = (attrs.get("property") or attrs.get("name") or attrs.get("itemprop") or "").lower()
        if key in _META_DATE_KEYS and attrs.get("content"):
            candidates.append(attrs["content"])
    candidates.extend(_JSONLD_DATE_RE.findall(raw))
    for candidate in candidates:
        if "T" not in candidate and " " not in candidate.strip():
            continue  # a bare day: trafilatura's answer is as good
        parsed = _parse_datetime(candidate.strip().replace(" ", "T", 1))
        if parsed is None:
            continue
        if day is None or _same_day(candidate, day):
            return parsed
    return None


def _same_day(candidate: str, day: str) -> bool:
    return candidate.strip()[:10] == day[:10]


_LANG_ATTR_RE = re.compile(r"\blang\s*=\s*[\"']?([a-zA-Z]{2,3})(?![a-zA-Z])", re.IGNORECASE)
_LANG_VALUE_RE = re.compile(r"([a-zA-Z]{2,3})(?![a-zA-Z])")


def _declared_language(raw: str) -> str | None:
    """``<html lang>``, else the first ``<meta http-equiv="content-language">`` / ``og:locale``."""
    code: str | None = None
    for html in _HTML_TAG_RE.finditer(raw):
        lang = _LANG_ATTR_RE.search(html.group(0))
        if lang:
            code = lang.group(1)
            break
    else:
        for tag in _META_RE.findall(raw):
            attrs = _attributes(tag)
            if (attrs.get("http-equiv") or "").lower() == "content-language" or (
                attrs.get("property") or ""
            ).lower() == "og:locale":
                value = _LANG_VALUE_RE.match(attrs.get("content") or "")
                if value:
                    code = value.group(1)
                    break
    if code is None:
        return None
    code = code.lower()
    return code if len(code) == 2 else None
