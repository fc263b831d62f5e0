"""The crawl process's side of archiving: keep each response as it arrived, archive it on demand.

:class:`RawResponseMiddleware` sits next to the download handler (after every middleware that
changes the request, before any that decodes the response): it records the request as sent and
the response as it arrived (status, headers, undecoded body, arrival time, server address) in
``request.meta``. Nothing is written then: only a response that yields a document is archived,
when the spider asks for its capture (:func:`capture_response`, called from
``SourceSpider.emit_document``); a response yielding several documents (a feed, a Telegram page)
is archived once and every document carries the same capture.

Settings (from :func:`archive_settings`): ``NARRAWATCH_ARCHIVE_DIR`` ("" disables writing, the
hash is still taken), ``NARRAWATCH_ARCHIVE_MAX_BYTES``. A source with ``archive: false`` gets
hashes but no records.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scrapy.crawler import Crawler
from scrapy.http import Request, Response

from core.evidence import Capture
from core.settings import Config
from crawlers.archive import ArchiveError, Exchange, WarcArchive

__all__ = [
    "ARCHIVE_MIDDLEWARE",
    "ARCHIVE_MIDDLEWARE_ORDER",
    "RAW_META_KEY",
    "RawResponseMiddleware",
    "archive_settings",
    "capture_response",
    "warc_dir",
]

logger = logging.getLogger(__name__)

RAW_META_KEY = "narrawatch_raw"
ARCHIVE_MIDDLEWARE = f"{__name__}.RawResponseMiddleware"
ARCHIVE_MIDDLEWARE_ORDER = 950
"""process_response runs from high to low: at 950 it sees the response before decompression (590)."""

_archives: dict[tuple[str, int], WarcArchive] = {}
_archives_lock = threading.Lock()


def warc_dir(data_dir: Path) -> Path:
    """Where an install's WARC files live."""
    return data_dir / "warc"


def archive_settings(config: Config) -> dict[str, Any]:
    """The Scrapy settings that point the archive at ``<data_dir>/warc`` (the middleware itself is
    always installed by :func:`crawlers.scrapy_project.settings.build_settings`)."""
    archive = config.service.archive
    return {
        "NARRAWATCH_ARCHIVE_DIR": str(warc_dir(config.data_dir)) if archive.enabled else "",
        "NARRAWATCH_ARCHIVE_MAX_BYTES": archive.max_file_bytes,
    }


@dataclass
class _Raw:
    exchange: Exchange
    capture: Capture | None = field(default=None)


def _headers(headers: Any) -> list[tuple[bytes, bytes]]:
    return [(bytes(k), bytes(v)) for k, values in headers.items() for v in values]


class RawResponseMiddleware:
    """Downloader middleware: remember each response as it arrived (see the module docstring)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RawResponseMiddleware:
        """Scrapy's constructor hook."""
        return cls(crawler)

    def process_response(self, request: Request, response: Response) -> Response:
        """Store the exchange in ``request.meta`` and pass the response on unchanged."""
        ip = getattr(response, "ip_address", None)
        reason = ""
        exchange = Exchange(
            url=response.url,
            status=response.status,
            reason=reason,
            response_headers=_headers(response.headers),
            body=response.body,
            fetched_at=datetime.now(UTC),
            method=request.method,
            request_headers=_headers(request.headers),
            protocol=getattr(response, "protocol", None) or "HTTP/1.1",
            ip_address=str(ip) if ip is not None else "",
        )
        request.meta[RAW_META_KEY] = _Raw(exchange)
        return response


def _archive_for(crawler: Crawler) -> WarcArchive | None:
    directory = crawler.settings.get("NARRAWATCH_ARCHIVE_DIR") or ""
    if not directory:
        return None
    size = crawler.settings.getint("NARRAWATCH_ARCHIVE_MAX_BYTES", 100 * 1024 * 1024)
    with _archives_lock:  # one writer per process, shared by every spider of the crawl
        archive = _archives.get((directory, size))
        if archive is None:
            archive = _archives[(directory, size)] = WarcArchive(Path(directory), max_file_bytes=size)
        return archive


def capture_response(crawler: Crawler | None, response: Response, *, archive: bool) -> Capture:
    """The capture of ``response``: archived on first use when ``archive`` (and archiving is on).

    Without the middleware's record (a response built by hand) the delivered body is hashed and
    nothing is written. A write failure is logged and the capture returned unarchived: losing the
    WARC record must not lose the document.
    """
    raw = response.meta.get(RAW_META_KEY) if response.request is not None else None
    if not isinstance(raw, _Raw) or raw.exchange.url != response.url:
        ip = getattr(response, "ip_address", None)
        return Exchange(
            url=response.url,
            status=response.status,
            response_headers=_headers(response.headers),
            body=response.body,
            fetched_at=datetime.now(UTC),
            ip_address=str(ip) if ip is not None else "",
        ).capture()
    if raw.capture is not None and (raw.capture.archived or not archive):
        return raw.capture
    writer = _archive_for(crawler) if archive and crawler is not None else None
    if writer is None:
        raw.capture = raw.exchange.capture()
        return raw.capture
    try:
        raw.capture = writer.write(raw.exchange)
    except ArchiveError as exc:
        logger.error("%s", exc)
        return raw.exchange.capture()
    return raw.capture
