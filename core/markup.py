"""Telegram's markdown-style markup in stored post text: parsed once, rendered or stripped.

Telegram exports (and the Telethon/Pyrogram clients most collectors use) write a post's
formatting entities as ``**bold**``, ``__italic__``, ``~~strike~~`` and ``[text](url)``. Stored
text keeps them byte-exact (it is evidence); every surface goes through this module instead:

* :func:`strip_markup` -- plain text for titles, snippets, CSV cells, alert messages and the CLI;
* :func:`markup_html` -- escaped HTML for the web UI: ``<strong>``, ``<em>``, ``<s>`` and links
  only to http(s) URLs with ``rel="nofollow noopener noreferrer"``; anything else is text;
* :func:`strip_markup_spans` -- plain text plus ``[start, end]`` spans moved from raw offsets to
  plain offsets (search highlights are computed on the stored text).

The parse is total: markers are toggles (Telegram's entities may overlap, so each run of text
carries its own set of styles and the HTML is always well nested); a marker whose partner was
cut off (a title or passage taken from a longer post) is dropped, one inside a word (``ох**л``)
stays text; ``[text](url)`` needs a URL without spaces.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "PROSE_FIELDS",
    "Run",
    "has_markup",
    "markup_html",
    "parse_markup",
    "safe_link",
    "strip_markup",
    "strip_markup_row",
    "strip_markup_spans",
]

_MARKERS = {"**": "strong", "__": "em", "~~": "s"}
_LINK = re.compile(
    r"\[((?:[^\[\]]|\[[^\[\]\n]{0,200}\]){1,1000}?)\]"  # link text: one level of [brackets] inside
    r"\(([^()\s]{0,2048}(?:\([^()\s]{0,2048}\)[^()\s]{0,2048})*)\)"  # URL: one level of (parens)
)
_TOKEN = re.compile(r"\*\*|__|~~")
_QUICK = re.compile(r"\*\*|__|~~|\]\(")
_LINK_REL = "nofollow noopener noreferrer"

PROSE_FIELDS = frozenset({"title", "text", "passage", "passage_text", "snippet", "summary", "label"})
"""Export columns that hold post text (stripped in CSV; URLs and ids are never touched)."""


@dataclass(frozen=True)
class Run:
    """A stretch of visible text with its styles and link, and where it sits in the raw text."""

    text: str
    start: int
    """Offset of ``text`` in the raw string (``raw[start:start + len(text)] == text``)."""
    styles: frozenset[str]
    """HTML tag names: ``strong``, ``em``, ``s``."""
    href: str | None
    """The link target as written (not yet checked: see :func:`safe_link`)."""


def has_markup(text: str) -> bool:
    """Whether ``text`` may contain markup (a cheap check before parsing)."""
    return bool(_QUICK.search(text))


def _inside_word(text: str, start: int) -> bool:
    """Whether the marker at ``start`` has a letter or digit on both sides (``ох**л``: a censored
    word, not markup)."""
    before = text[start - 1] if start > 0 else " "
    after = text[start + 2] if start + 2 < len(text) else " "
    return before.isalnum() and after.isalnum()


def _paired(text: str, stretches: Sequence[tuple[int, int, str | None]]) -> tuple[set[int], set[int]]:
    """Markers of the text ``stretches``: (those that toggle a style, stray ones to drop).

    Markers pair in order per kind. The last of an odd number has lost its partner (a title or
    passage cut out of a longer post) and is dropped, unless it sits inside a word, where it
    is text (``ох**л``)."""
    found: dict[str, list[int]] = {}
    for lo, hi, _ in stretches:
        for m in _TOKEN.finditer(text, lo, hi):
            found.setdefault(m.group(), []).append(m.start())
    toggles: set[int] = set()
    stray: set[int] = set()
    for positions in found.values():
        words = [p for p in positions if _inside_word(text, p)]
        rest = [p for p in positions if p not in set(words)]
        if len(positions) % 2 == 0:
            toggles.update(positions)
        elif len(rest) % 2 == 1:  # one stray marker outside words: the last of them lost its partner
            toggles.update(rest[:-1])
            stray.add(rest[-1])
            toggles.update(words)
        else:  # the odd one is inside a word: leave the in-word markers as text
            toggles.update(rest)
    return toggles, stray


def parse_markup(text: str) -> list[Run]:
    """The visible runs of ``text`` in order (markers and link syntax removed)."""
    if not has_markup(text):
        return [Run(text, 0, frozenset(), None)] if text else []
    # Link syntax first: its URL is not text, and markers inside a URL are not markers.
    pieces: list[tuple[int, int, str | None]] = []  # (start, end, href) of raw stretches holding text
    pos = 0
    for m in _LINK.finditer(text):
        if m.start() > pos:
            pieces.append((pos, m.start(), None))
        pieces.append((m.start(1), m.end(1), m.group(2)))
        pos = m.end()
    if pos < len(text):
        pieces.append((pos, len(text), None))
    live, stray = _paired(text, pieces)
    runs: list[Run] = []
    styles: set[str] = set()
    for start, end, href in pieces:
        cur = start
        for m in _TOKEN.finditer(text, start, end):
            if m.start() not in live and m.start() not in stray:
                continue
            if m.start() > cur:
                runs.append(Run(text[cur : m.start()], cur, frozenset(styles), href))
            if m.start() in live:
                styles ^= {_MARKERS[m.group()]}
            cur = m.end()
        if end > cur:
            runs.append(Run(text[cur:end], cur, frozenset(styles), href))
    return runs


def strip_markup(text: str) -> str:
    """``text`` without markup: ``**a** [b](http://x)`` -> ``a b``."""
    if not has_markup(text):
        return text
    return "".join(r.text for r in parse_markup(text))


def strip_markup_row(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with :func:`strip_markup` applied to its :data:`PROSE_FIELDS` string values."""
    return {k: strip_markup(v) if k in PROSE_FIELDS and isinstance(v, str) else v for k, v in row.items()}


def strip_markup_spans(text: str, spans: Sequence[Sequence[int]] = ()) -> tuple[str, list[list[int]]]:
    """:func:`strip_markup` and ``[start, end]`` spans of ``text`` moved onto the plain text
    (a span is clipped to the visible characters it covers; one covering none is dropped)."""
    runs = parse_markup(text)
    plain = "".join(r.text for r in runs)
    if not spans:
        return plain, []
    # raw offset -> plain offset, for the visible characters
    starts: list[tuple[int, int, int]] = []  # (raw start, raw end, plain start)
    p = 0
    for r in runs:
        starts.append((r.start, r.start + len(r.text), p))
        p += len(r.text)

    def to_plain(raw: int, *, end: bool) -> int:
        for a, b, q in starts:
            if raw < a:
                return q
            if raw < b or (end and raw == b):
                return q + raw - a
        return len(plain)

    out: list[list[int]] = []
    for s, e in spans:
        ps, pe = to_plain(int(s), end=False), to_plain(int(e), end=True)
        if ps < pe:
            out.append([ps, pe])
    return plain, out


def safe_link(url: str) -> str | None:
    """``url`` when it is an absolute http(s) URL without control characters, else ``None``."""
    text = url.strip()
    if not text or any(ord(c) < 32 or ord(c) == 127 for c in text):
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return text


def markup_html(text: str) -> str:
    """``text`` as escaped HTML with its markup rendered (see the module docstring); newlines are
    kept as characters (the page's CSS decides how they show)."""
    out: list[str] = []
    open_href: str | None = None
    for run in parse_markup(text):
        href = safe_link(run.href) if run.href is not None else None
        if href != open_href:
            if open_href is not None:
                out.append("</a>")
            if href is not None:
                out.append(f'<a href="{escape(href, quote=True)}" rel="{_LINK_REL}">')
            open_href = href
        body = escape(run.text, quote=False)
        for tag in sorted(run.styles):
            body = f"<{tag}>{body}</{tag}>"
        out.append(body)
    if open_href is not None:
        out.append("</a>")
    return "".join(out)
