"""Jinja2 environment for the web UI: autoescape everywhere, safe links, sanitised highlights.

Crawled content (titles, text, URLs, outlet names) is hostile. Rules kept here:

* every template is autoescaped; nothing crawled is marked safe except through :func:`highlight`,
  whose output is built from escaped pieces and then passed through nh3 with a one-tag allow-list;
* :func:`safe_href` returns a URL only when it is http(s) (no ``javascript:``, ``data:`` ...);
* Telegram markup in post text (``**bold**``, ``[text](url)`` ...) is rendered by :func:`telegram`
  (:func:`core.markup.markup_html`: built from escaped pieces, links only to http(s)) or removed
  by :func:`plain` (titles, snippets); :func:`highlight` strips it and moves its spans;
* data for scripts goes through the ``tojson`` filter into ``<script type="application/json">``
  (``<``, ``>``, ``&``, ``'`` become ``\\u003c`` ...), read by static JS; no inline scripts;
* Unicode bidi embedding/override/isolate controls (``U+202E`` ...) never reach the page: every
  ``{{ expression }}`` passes :func:`_finalize` and every ``tojson`` value is cleaned before it is
  dumped (:mod:`core.safe_text`); in links they are percent-encoded (the same URL, shown inert).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import nh3
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from core.markup import markup_html, strip_markup, strip_markup_spans
from core.safe_text import BIDI_CONTROLS, strip_bidi, strip_bidi_deep

__all__ = ["TEMPLATES", "highlight", "make_env", "plain", "query_string", "safe_href", "short_time", "telegram"]

TEMPLATES = Path(__file__).resolve().parent / "templates"


def safe_href(url: object) -> str | None:
    """The URL when it is an absolute http(s) URL without control characters, else None.

    Bidi controls are percent-encoded: the link goes where the browser would send it anyway.
    """
    if not isinstance(url, str):
        return None
    text = url.strip()
    if not text or any(ord(c) < 32 or ord(c) == 127 for c in text):
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return "".join(quote(c) if c in BIDI_CONTROLS else c for c in text)


def telegram(text: object) -> Markup:
    """Post text with its Telegram markup rendered as escaped HTML (strong/em/s, http(s) links
    with ``rel="nofollow noopener noreferrer"``), sanitised again with nh3."""
    html = markup_html(str(text or ""))
    return Markup(
        nh3.clean(
            html,
            tags={"strong", "em", "s", "a"},
            attributes={"a": {"href"}},
            url_schemes={"http", "https"},
            link_rel="nofollow noopener noreferrer",
        )
    )


def plain(text: object) -> str:
    """Text with Telegram markup removed (titles, snippets, cut-off previews)."""
    return strip_markup(str(text or ""))


def highlight(text: str, spans: Sequence[Sequence[int]] | None = None) -> Markup:
    """Escaped ``text`` (Telegram markup removed) with ``<mark>`` around the ``[start, end]``
    spans of the stored text (sanitised with nh3)."""
    text, moved = strip_markup_spans(str(text or ""), spans or ())
    spans = moved
    out: list[str] = []
    pos = 0
    for start, end in sorted((int(s), int(e)) for s, e in (spans or ()) if 0 <= s < e <= len(text)):
        if start < pos:
            continue
        out.append(str(escape(text[pos:start])))
        out.append("<mark>" + str(escape(text[start:end])) + "</mark>")
        pos = end
    out.append(str(escape(text[pos:])))
    return Markup(nh3.clean("".join(out), tags={"mark"}, attributes={}, link_rel=None))


def short_time(value: object) -> str:
    """``2024-11-21T18:03:00+00:00`` -> ``2024-11-21 18:03`` (UTC)."""
    if not value:
        return "—"
    try:
        dt = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return dt.strftime("%Y-%m-%d %H:%M")


def query_string(params: dict[str, Any], **changes: Any) -> str:
    """``params`` updated with ``changes`` as a URL query (empty, None and False values left out;
    lists repeat the key)."""
    merged = {**params, **changes}
    pairs: list[tuple[str, str]] = []
    for key, value in merged.items():
        if value is None or value == "" or value is False:
            continue
        if isinstance(value, list | tuple):
            pairs.extend((key, str(v)) for v in value)
        else:
            pairs.append((key, str(value)))
    return urlencode(pairs)


def _finalize(value: Any) -> Any:
    """Applied to every ``{{ expression }}``: drop bidi controls from whatever is printed."""
    if isinstance(value, str):  # Markup included: strip_bidi keeps it Markup
        return strip_bidi(value)
    if value is None or isinstance(value, int | float) or hasattr(value, "__html__"):
        return value
    return strip_bidi(str(value))


def _json_dumps(obj: Any, **kwargs: Any) -> str:
    return json.dumps(strip_bidi_deep(obj), **kwargs)


def make_env() -> Environment:
    """The template environment (autoescape on for every template)."""
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_finalize,
    )
    env.policies["json.dumps_function"] = _json_dumps
    env.filters["safe_href"] = safe_href
    env.filters["highlight"] = highlight
    env.filters["telegram"] = telegram
    env.filters["plain"] = plain
    env.filters["short_time"] = short_time
    env.globals["query_string"] = query_string
    return env
