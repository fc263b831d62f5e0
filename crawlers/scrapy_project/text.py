"""Small helpers the spiders share: body decoding, HTML fragments to text, failure reasons."""

from __future__ import annotations

import re
from typing import Any

import lxml.html
from lxml import etree
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from scrapy.http import Response, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet import error as tw_error
from twisted.internet.defer import CancelledError
from twisted.python.failure import Failure
from w3lib.encoding import html_to_unicode

__all__ = ["decode_body", "failure_reason", "fragment_to_text", "is_network_reason"]

_BLOCK_TAGS = ("p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "tr", "section")
# A tag ends at the next "<" too: "<<<<..." is read once, not to the end of the text per "<".
_TAG = re.compile(r"<[^<>]+>")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_NETWORK_REASONS = frozenset({"timeout", "dns", "connection_refused", "connection_lost", "http_5xx", "http_429"})


def decode_body(response: Response) -> str:
    """The body as text, surviving a lying ``Content-Type`` charset.

    A body that is valid UTF-8 is read as UTF-8 whatever the header says (cp1251 text is
    practically never valid UTF-8); otherwise the header is trusted only if it decodes the body
    strictly, else the document's own ``<meta charset>`` / BOM / detection decides.
    """
    body = response.body
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if isinstance(response, TextResponse):
        header_encoding = response._headers_encoding()  # Scrapy has no public accessor
        if header_encoding:
            try:
                return body.decode(header_encoding)
            except (UnicodeDecodeError, LookupError):
                pass
    _, text = html_to_unicode(None, body)
    return text


def fragment_to_text(html: str) -> str:
    """Plain text of an HTML fragment (feed content or summary), one paragraph per block."""
    if not html or not html.strip():
        return ""
    if "<" not in html:
        return " ".join(html.split())
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (etree.ParserError, ValueError):
        return " ".join(_TAG.sub(" ", html).split())
    for bad in root.xpath(".//script|.//style"):
        bad.drop_tree()
    for el in root.iter(*_BLOCK_TAGS):
        el.tail = "\n\n" + (el.tail or "")
    text = root.text_content()
    paragraphs = [" ".join(p.split()) for p in _PARAGRAPH_BREAK.split(text)]
    return "\n\n".join(p for p in paragraphs if p)


def failure_reason(failure: Failure) -> tuple[str, str]:
    """``(short reason, message)`` for a failed request (after retries)."""
    exc: Any = failure.value
    reason = getattr(exc, "reason", None)
    if failure.check(IgnoreRequest) and isinstance(reason, str) and reason:  # AddressRefused and kin
        return reason, str(exc)
    if failure.check(HttpError):
        status = exc.response.status
        return f"http_{status}", f"HTTP {status}"
    if failure.check(IgnoreRequest):
        text = str(exc)
        if "robots" in text.lower():
            return "robots", "forbidden by robots.txt"
        if "redirect" in text.lower():
            return "redirect_loop", f"too many redirects ({text})"
        return "ignored", text or "request ignored"
    if failure.check(DownloadCancelledError, CancelledError) and "size" in str(exc).lower():
        return "too_large", str(exc)
    if failure.check(DownloadCancelledError, CancelledError):
        return "too_large", f"download cancelled: {exc or 'body larger than the limit'}"
    if failure.check(DownloadTimeoutError, tw_error.TimeoutError, tw_error.TCPTimedOutError):
        return "timeout", f"timed out: {exc}"
    if failure.check(CannotResolveHostError, tw_error.DNSLookupError):
        return "dns", f"cannot resolve host: {exc}"
    if failure.check(DownloadConnectionRefusedError, tw_error.ConnectionRefusedError):
        return "connection_refused", f"connection refused: {exc}"
    if failure.check(ResponseDataLossError, DownloadFailedError, tw_error.ConnectionLost, tw_error.ConnectionDone):
        return "connection_lost", f"connection lost: {exc}"
    if failure.check(tw_error.ConnectError):
        return "connection_error", f"cannot connect: {exc}"
    return "fetch_error", f"{type(exc).__name__}: {exc}"


def is_network_reason(reason: str) -> bool:
    """True for failures that are the network's or server's fault (reported as errors, not drops)."""
    return reason in _NETWORK_REASONS or reason.startswith("http_5") or reason in {"connection_error", "fetch_error"}
