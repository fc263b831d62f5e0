"""The human-readable ``summary.html`` of an evidence pack.

Everything shown comes from scraped pages and posts, so every value is escaped
(:func:`html.escape`, quotes too), URLs are printed as text and never linked, and the page
carries no script: a Content-Security-Policy of ``default-src 'none'`` forbids scripts, images,
frames and fetches even if an escaping bug let markup through.
"""

from __future__ import annotations

from html import escape
from typing import Any

__all__ = ["render_summary"]

_STYLE = (
    "body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#111}"
    "h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:2rem;border-top:1px solid #ccc;padding-top:1rem}"
    "table{border-collapse:collapse;width:100%;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.25rem .4rem;"
    "text-align:left;vertical-align:top;font-size:13px}code,.mono{font-family:ui-monospace,monospace;"
    "word-break:break-all}.deleted{color:#a00;font-weight:600}pre{white-space:pre-wrap;background:#f6f6f6;"
    "padding:.5rem}"
)


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _row(*cells: Any, header: bool = False) -> str:
    tag = "th" if header else "td"
    return "<tr>" + "".join(f"<{tag}>{_e(c)}</{tag}>" for c in cells) + "</tr>"


def _item(item: dict[str, Any]) -> list[str]:
    out = [f"<h2>{_e(item.get('title') or item.get('document_id'))}</h2>", "<table>"]
    for label, key in (
        ("Document id", "document_id"),
        ("URL", "url"),
        ("Source", "source_id"),
        ("Outlet", "outlet"),
        ("Language", "language"),
        ("Published", "published"),
        ("Fetched", "fetched"),
    ):
        out.append(_row(label, item.get(key)))
    out.append("</table>")
    deleted = item.get("deleted")
    if deleted:
        out.append(
            f"<p class='deleted'>Deleted: noticed {_e(deleted.get('deleted_at'))}, last seen "
            f"{_e(deleted.get('last_seen'))} ({_e(deleted.get('reason'))})</p>"
        )
    out.append("<h3>Captures (WARC)</h3><table>")
    out.append(
        _row("Fetched at", "URL", "HTTP", "Server address", "SHA-256 of raw body", "In records.warc.gz", header=True)
    )
    for c in item.get("captures") or []:
        loc = c.get("warc")
        where = f"offset {loc['offset']}, {loc['length']} bytes" if isinstance(loc, dict) else c.get("problem", "")
        out.append(
            _row(c.get("fetched_at"), c.get("url"), c.get("status"), c.get("ip_address"), c.get("sha256"), where)
        )
    out.append("</table>")
    versions = item.get("versions") or []
    if versions:
        out.append("<h3>Versions</h3><table>")
        out.append(_row("#", "First seen", "Last seen", "Title", "Text SHA-256", "File", header=True))
        for v in versions:
            out.append(
                _row(
                    v.get("number"),
                    v.get("first_seen"),
                    v.get("last_seen"),
                    v.get("title"),
                    v.get("text_sha256"),
                    v.get("text_file"),
                )
            )
        out.append("</table>")
    matches = item.get("matches") or []
    if matches:
        out.append("<h3>Why it matched</h3>")
        for m in matches:
            out.append(
                f"<p>Narrative <code>{_e(m.get('narrative_id'))}</code>: tier {_e(m.get('tier'))}, score "
                f"{_e(m.get('score'))} (similarity {_e(m.get('similarity'))}, decided by {_e(m.get('decision'))})"
                f"{'; keywords: ' + _e(', '.join(map(str, m.get('keywords') or []))) if m.get('keywords') else ''}</p>"
            )
            out.append(f"<p>Passage:</p><pre>{_e(m.get('passage'))}</pre>")
            out.append(f"<p>Closest exemplar:</p><pre>{_e(m.get('exemplar'))}</pre>")
    return out


def _trace(trace: dict[str, Any] | None) -> list[str]:
    if not trace:
        return []
    if "error" in trace:
        return ["<h2>Trace</h2>", f"<p>Not available: {_e(trace['error'])}</p>"]
    items = trace.get("items") or trace.get("timeline") or []
    out = ["<h2>Trace</h2>", f"<p>{_e(len(items))} related items (full trace in manifest.json).</p>", "<table>"]
    out.append(_row("Published", "Outlet", "Title", "URL", header=True))
    for it in items[:100]:
        if isinstance(it, dict):
            out.append(_row(it.get("published"), it.get("outlet"), it.get("title"), it.get("url")))
    out.append("</table>")
    return out


def render_summary(manifest: dict[str, Any]) -> str:
    """The summary page of a manifest (see the module docstring)."""
    subject = manifest.get("subject") or {}
    alert = manifest.get("alert")
    parts = [
        "<!doctype html>",
        "<html><head><meta charset='utf-8'>",
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>Evidence: {_e(subject.get('kind'))} {_e(subject.get('id'))}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Evidence pack: {_e(subject.get('kind'))} <code>{_e(subject.get('id'))}</code></h1>",
        f"<p>Created {_e(manifest.get('created'))}. Every raw body is in <code>records.warc.gz</code>; "
        "<code>manifest.json</code> lists its SHA-256 and offset; <code>SHA256SUMS</code> covers every file "
        "(<code>sha256sum -c SHA256SUMS</code>, or <code>narrawatch evidence verify</code>). URLs are shown as text "
        "on purpose: open them only with care.</p>",
    ]
    if isinstance(alert, dict):
        parts += [
            "<h2>Alert</h2><table>",
            _row("Title", alert.get("title")),
            _row("Rule", alert.get("rule")),
            _row("Severity", alert.get("severity")),
            _row("Created", alert.get("created")),
            "</table>",
            f"<pre>{_e(alert.get('text') or alert.get('summary'))}</pre>",
        ]
    for item in manifest.get("items") or []:
        parts += _item(item)
    parts += _trace(manifest.get("trace"))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
