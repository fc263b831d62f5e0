"""Alerts that explain themselves, rendered for each target with the target's escaping.

Scraped text is hostile: every piece of it goes through the target's escaper (Slack mrkdwn,
Telegram HTML or MarkdownV2, HTML email via ``html.escape``), links are emitted only for
http(s) URLs, and passages are truncated. The wording is careful: a match is an indication for
an analyst to review, not a verdict about an outlet or a text.

An alert renders to an intermediate list of blocks of inline pieces (plain, bold, link, quote);
each target serialises those with its own escaping, so no formatter ever sees raw text unescaped.

Every event names its outlets with their actor type and country as configured
(:attr:`core.events.DetectorEvent.source_labels`): each evidence line reads ``outlet (state media,
RU)``, and an "Outlet types" line lists each source once (owner included), so an independent
outlet reporting on a narrative does not read like a state outlet spreading it. A source without
a configured actor type says so ("actor type not set") rather than saying nothing.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from core.events import Alert, DetectorEvent, event_to_dict
from core.markup import strip_markup
from core.safe_text import BIDI_CONTROLS, has_bidi_controls, strip_bidi
from core.settings import actor_label

__all__ = [
    "NOTICE",
    "SCHEMA",
    "escape_markdown_v2",
    "escape_slack",
    "escape_telegram_html",
    "outlet_label",
    "render_html",
    "render_json",
    "render_markdown",
    "render_slack",
    "render_telegram",
    "render_text",
    "safe_url",
    "truncate",
]

NOTICE = (
    "Automated indication for analyst review, not a verdict: similarity to a narrative does not mean "
    "an outlet spreads disinformation. Check the passages and sources before acting."
)
SCHEMA = "narrawatch.alert/1"
PASSAGE_CHARS = 280
EVIDENCE_SHOWN = 5

PieceKind = Literal["text", "bold", "link", "code"]


@dataclass(frozen=True)
class _Piece:
    kind: PieceKind
    text: str
    url: str = ""


@dataclass(frozen=True)
class _Block:
    pieces: tuple[_Piece, ...]
    quote: bool = False
    bullet: bool = False


def truncate(text: str, limit: int = PASSAGE_CHARS) -> str:
    """Collapse whitespace and cut at ``limit`` characters (on a word boundary when possible) with '…'."""
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit * 0.6:
        cut = cut[:space]
    return cut.rstrip() + "…"


_URL_OK = re.compile(r"^https?://[^\s<>\"'|`\\]+$", re.IGNORECASE)


def safe_url(url: str) -> str:
    """``url`` if it is a plain http(s) URL without characters that break link syntax, else ''."""
    return url if _URL_OK.match(url or "") else ""


def escape_slack(text: str) -> str:
    """Slack mrkdwn: escape ``& < >`` (which also defuses ``<!channel>`` and link injection)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_telegram_html(text: str) -> str:
    """Telegram ``parse_mode=HTML``: escape ``& < >`` (and quotes, harmlessly)."""
    return html.escape(text, quote=True)


_MD2_SPECIAL = re.compile(r"([_*\[\]()~`>#+\-=|{}.!\\])")


def escape_markdown_v2(text: str) -> str:
    """Telegram MarkdownV2: backslash-escape every special character (``_*[]()~`>#+-=|{}.!\\``)."""
    return _MD2_SPECIAL.sub(r"\\\1", text)


def _fmt_time(value: Any) -> str:
    return str(value.strftime("%Y-%m-%d %H:%M UTC"))


def outlet_label(label: Mapping[str, str] | None) -> str:
    """``state media, RU`` from a source label (``actor``, ``country``); ``actor type not set`` otherwise."""
    label = label or {}
    parts = [actor_label(label.get("actor")) or "actor type not set"]
    if label.get("country"):
        parts.append(str(label["country"]))
    return ", ".join(parts)


def _outlet_types(e: DetectorEvent) -> str:
    """``t.me/rian_ru: state media, RU (owner Rossiya Segodnya); meduza.io: exile media`` for the
    event's source and evidence sources, each once."""
    seen: dict[str, str] = {}
    ids = [i for i in dict.fromkeys([e.source_id, *(m.source_id for m in e.evidence)]) if i]
    outlets = {m.source_id: m.outlet for m in e.evidence}
    for sid in ids:
        label = e.source_labels.get(sid, {})
        name = outlets.get(sid) or label.get("outlet") or sid
        text = outlet_label(label)
        if label.get("owner"):
            text += f" (owner {label['owner']})"
        seen.setdefault(name, text)
    return "; ".join(f"{name}: {text}" for name, text in seen.items())


def _event_blocks(e: DetectorEvent) -> list[_Block]:
    blocks = [_Block((_Piece("bold", e.title),)), _Block((_Piece("text", e.summary),))]
    facts: list[str] = []
    if e.narrative_id:
        facts.append(f"Narrative: {e.narrative_id}" + (f" — {e.narrative_title}" if e.narrative_title else ""))
    if e.source_id and not e.narrative_id:
        facts.append(f"Source: {e.source_id}")
    facts.append(f"Time span: {_fmt_time(e.window_start)} – {_fmt_time(e.window_end)}")
    if e.outlets:
        facts.append(f"Outlets ({len(e.outlets)}): {', '.join(e.outlets)}")
    types = _outlet_types(e)
    if types:
        facts.append(f"Outlet types: {types}")
    if e.languages:
        facts.append(f"Languages: {', '.join(e.languages)}")
    if e.counts:
        facts.append("Counts: " + ", ".join(f"{k}={v}" for k, v in sorted(e.counts.items())))
    facts.append(f"Detector: {e.detector} (score {e.score:.3g})")
    models = sorted({m.model for m in e.evidence if m.model})
    if models:
        facts.append(f"Embedding model: {'; '.join(models)}")
    blocks.extend(_Block((_Piece("text", f),), bullet=True) for f in facts)
    for m in e.evidence[:EVIDENCE_SHOWN]:
        kind = outlet_label(e.source_labels.get(m.source_id, {}))
        head: list[_Piece] = [_Piece("text", f"{_fmt_time(m.published)} · {m.outlet} ({kind}) · {m.language} · ")]
        label = truncate(strip_markup(m.title) or m.url or m.document_id, 120)
        url = safe_url(m.url)
        head.append(_Piece("link", label, url) if url else _Piece("text", label))
        head.append(_Piece("text", f" · score {m.score:.3f} (cosine {m.similarity:.3f}, tier {m.tier})"))
        blocks.append(_Block(tuple(head), bullet=True))
        # Markup goes before the cut (no half link syntax); the webhook's raw evidence keeps it.
        blocks.append(_Block((_Piece("text", truncate(strip_markup(m.passage_text))),), quote=True))
        if m.exemplar:
            blocks.append(
                _Block(
                    (
                        _Piece("text", f"closest exemplar ({m.exemplar_language}): "),
                        _Piece("text", truncate(m.exemplar, 200)),
                    ),
                    quote=True,
                )
            )
    hidden = len(e.evidence) - EVIDENCE_SHOWN
    if hidden > 0:
        blocks.append(_Block((_Piece("text", f"… and {hidden} more item(s)"),)))
    return blocks


def _blocks(alert: Alert) -> list[_Block]:
    sev = alert.severity.upper()
    out = [_Block((_Piece("bold", f"[{sev}] {alert.title}"),)), _Block((_Piece("text", alert.summary),))]
    for e in alert.events:
        out.append(_Block(()))
        out.extend(_event_blocks(e))
    out.append(_Block(()))
    out.append(_Block((_Piece("text", f"{NOTICE} Rule: {alert.rule}; alert id: {alert.id}."),)))
    return [_Block(tuple(_inert(p) for p in b.pieces), b.quote, b.bullet) for b in out]


def _inert(p: _Piece) -> _Piece:
    """Bidi controls and Telegram markup (core.markup) out of every shown text of a message
    (core.safe_text); in a link they are percent-encoded, so it still goes where the post said."""
    url = "".join(quote(c) if c in BIDI_CONTROLS else c for c in p.url) if has_bidi_controls(p.url) else p.url
    return _Piece(p.kind, strip_markup(strip_bidi(p.text)), url)


Serializer = Callable[[_Piece], str]


def _serialize(
    blocks: list[_Block], piece: Serializer, quote: str, bullet: str, limit: int | None = None, sep: str = "\n"
) -> str:
    lines: list[str] = []
    total = 0
    for b in blocks:
        line = "".join(piece(p) for p in b.pieces)
        if b.quote:
            line = quote + line
        elif b.bullet:
            line = bullet + line
        if limit is not None and total + len(line) + 1 > limit - 40:
            lines.append(piece(_Piece("text", "… (truncated; see the alert in narrawatch)")))
            break
        lines.append(line)
        total += len(line) + 1
    return sep.join(lines).strip()


def render_text(alert: Alert) -> str:
    """Plain text (email text part, logs, CLI)."""

    def piece(p: _Piece) -> str:
        return f"{p.text} <{p.url}>" if p.kind == "link" else p.text

    return _serialize(_blocks(alert), piece, "    > ", "  - ")


def render_markdown(alert: Alert) -> str:
    """CommonMark (for the web UI and exports); text escaped with HTML entities and backslashes."""

    def esc(t: str) -> str:
        return re.sub(r"([\\`*_{}\[\]()#+\-.!|~>])", r"\\\1", html.escape(t, quote=False))

    def piece(p: _Piece) -> str:
        if p.kind == "bold":
            return f"**{esc(p.text)}**"
        if p.kind == "link":
            return f"[{esc(p.text)}]({p.url})"
        return esc(p.text)

    return _serialize(_blocks(alert), piece, "> ", "- ", sep="\n\n")


def render_slack(alert: Alert, limit: int = 39_000) -> str:
    """Slack mrkdwn with ``& < >`` escaped and links as ``<url|label>``."""

    def piece(p: _Piece) -> str:
        if p.kind == "bold":
            return f"*{escape_slack(p.text).replace('*', '∗')}*"
        if p.kind == "link":
            return f"<{p.url}|{escape_slack(p.text).replace('|', '¦')}>"
        return escape_slack(p.text)

    return _serialize(_blocks(alert), piece, "> ", "• ", limit)


def render_telegram(alert: Alert, mode: Literal["HTML", "MarkdownV2"] = "HTML", limit: int = 4096) -> str:
    """Telegram message text for ``parse_mode`` HTML or MarkdownV2, within Telegram's 4096 characters."""
    if mode == "HTML":

        def piece(p: _Piece) -> str:
            if p.kind == "bold":
                return f"<b>{escape_telegram_html(p.text)}</b>"
            if p.kind == "link":
                return f'<a href="{escape_telegram_html(p.url)}">{escape_telegram_html(p.text)}</a>'
            return escape_telegram_html(p.text)

        return _serialize(_blocks(alert), piece, "│ ", "• ", limit)

    def piece_md(p: _Piece) -> str:
        if p.kind == "bold":
            return f"*{escape_markdown_v2(p.text)}*"
        if p.kind == "link":
            url = p.url.replace("\\", "\\\\").replace(")", "\\)")
            return f"[{escape_markdown_v2(p.text)}]({url})"
        return escape_markdown_v2(p.text)

    return _serialize(_blocks(alert), piece_md, "│ ", "• ", limit)


def render_html(alert: Alert) -> str:
    """An HTML email body; every piece of text escaped with ``html.escape``."""

    def piece(p: _Piece) -> str:
        if p.kind == "bold":
            return f"<strong>{html.escape(p.text)}</strong>"
        if p.kind == "link":
            return f'<a href="{html.escape(p.url, quote=True)}">{html.escape(p.text)}</a>'
        return html.escape(p.text)

    parts = []
    for b in _blocks(alert):
        inner = "".join(piece(p) for p in b.pieces)
        if b.quote:
            parts.append(f'<blockquote style="margin:0 0 6px 16px;color:#444">{inner}</blockquote>')
        elif b.bullet:
            parts.append(f'<div style="margin-left:8px">• {inner}</div>')
        elif inner:
            parts.append(f"<p>{inner}</p>")
    return "<html><body>" + "\n".join(parts) + "</body></html>"


def render_json(alert: Alert, idempotency_key: str = "") -> dict[str, Any]:
    """The webhook payload (schema ``narrawatch.alert/1``, documented in docs/alerts.md).

    Raw strings: JSON encoding is the escaping; receivers must escape for their own display.
    Passages are truncated; fingerprints are left out.
    """
    events = []
    for e in alert.events:
        d = event_to_dict(e, fingerprints=False)
        for m in d["evidence"]:
            m["passage_text"] = truncate(m["passage_text"], 1000)
        events.append(d)
    return {
        "schema": SCHEMA,
        "idempotency_key": idempotency_key,
        "notice": NOTICE,
        "alert": {
            "id": alert.id,
            "rule": alert.rule,
            "severity": alert.severity,
            "created": alert.created.isoformat(),
            "dedup_key": alert.dedup_key,
            "digest": alert.digest,
            "title": alert.title,
            "summary": alert.summary,
            "text": render_text(alert),
            "events": events,
        },
    }
