"""What every source spider shares: the event writer, per-source state, counts and failure handling."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, ClassVar

import scrapy
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.http import Response
from twisted.python.failure import Failure

from core.documents import Document
from core.serialize import document_to_dict
from core.settings import SourceBase
from crawlers.addresses import AddressPolicy
from crawlers.archive_scrapy import capture_response
from crawlers.scrapy_project.events import EventWriter
from crawlers.scrapy_project.text import failure_reason, is_network_reason

__all__ = ["SourceSpider"]

logger = logging.getLogger(__name__)


class SourceSpider(scrapy.Spider):
    """Base of the per-kind spiders. One instance crawls one configured source.

    Constructor keywords (passed through ``CrawlerProcess.crawl``): ``source`` (a validated
    source model), ``state`` (the job's state for this source), ``events`` (an EventWriter).
    """

    kind: ClassVar[str] = ""

    def __init__(
        self,
        *args: Any,
        source: SourceBase,
        state: dict[str, Any] | None = None,
        events: EventWriter,
        **kwargs: Any,
    ) -> None:
        kwargs["name"] = f"{self.kind}:{source.id}"
        super().__init__(*args, **kwargs)
        self.source = source
        self.state: dict[str, Any] = dict(state or {})
        self.events = events
        self.seen: set[str] = {str(k) for k in self.state.get("seen") or ()}
        self.emitted: set[str] = set()
        self.counts: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.main_ok = False
        self.passage_max_words = 120
        self.address_policy = AddressPolicy.for_source(source)
        """What this source may reach (read by the AddressGuardMiddleware on every request)."""

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> SourceSpider:
        """Scrapy's constructor hook: also listen for errors raised in our callbacks."""
        spider = super().from_crawler(crawler, *args, **kwargs)
        assert isinstance(spider, SourceSpider)
        spider.passage_max_words = crawler.settings.getint("NARRAWATCH_PASSAGE_MAX_WORDS", 120)
        crawler.signals.connect(spider._on_spider_error, signal=signals.spider_error)
        return spider

    # --- events -------------------------------------------------------------------------------

    @property
    def source_id(self) -> str:
        """The configured source id."""
        return self.source.id

    def now(self) -> datetime:
        """The fetch time stamped on documents."""
        return datetime.now(UTC)

    def emit_document(self, key: str, document: Document, response: Response | None = None) -> None:
        """Emit a document once per run per key; ``response``: the one it came from, whose capture
        (raw body SHA-256, WARC records unless the source's ``archive`` is off) it carries."""
        if key in self.emitted:
            return
        self.emitted.add(key)
        if response is not None and document.capture is None:
            capture = capture_response(self.crawler, response, archive=self.source.archive)
            document = replace(document, capture=capture)
        self.counts["documents"] += 1
        self.events.emit("document", self.source_id, key=key, document=document_to_dict(document))

    def emit_fetched(self, response: Response) -> None:
        """Record a successful fetch."""
        self.counts["fetched"] += 1
        self.events.emit("fetched", self.source_id, url=response.url, status=response.status)

    def drop(self, reason: str, url: str, *, emit: bool = True) -> None:
        """Record that something was skipped; ``emit=False`` only counts it (bulk skips)."""
        self.dropped[reason] += 1
        if emit:
            self.events.emit("dropped", self.source_id, reason=reason, url=url)

    def error(self, message: str, url: str, reason: str = "error") -> None:
        """Report a failure (after retries)."""
        self.counts["errors"] += 1
        logger.warning("%s: %s (%s)", self.source_id, message, url)
        self.events.emit("error", self.source_id, message=message, url=url, reason=reason)

    def warn(self, reason: str, message: str, url: str) -> None:
        """Report a non-fatal problem (a feed parsed with warnings, a rejected Telegram id, an id gap)."""
        self.counts["warnings"] += 1
        logger.info("%s: %s: %s (%s)", self.source_id, reason, message, url)
        self.events.emit("warning", self.source_id, reason=reason, message=message, url=url)

    def emit_state(self, state: dict[str, Any]) -> None:
        """Report new per-source state (validators, last message id)."""
        self.events.emit("state", self.source_id, state=state)

    def report_failure(self, failure: Failure, *, main: bool = False) -> str:
        """Turn a request failure into a ``dropped`` or ``error`` event; returns the reason.

        Network and server faults are errors; policy outcomes (robots, 4xx, too large,
        redirect loops) are drops, except for a source's main URL, whose failure is always an error.
        """
        request = getattr(failure, "request", None)
        url = ""
        if request is not None:  # report the URL we asked for, not the last hop of a redirect chain
            url = (request.meta.get("redirect_urls") or [request.url])[0]
        reason, message = failure_reason(failure)
        if main or is_network_reason(reason):
            self.error(f"{message} fetching {url}", url, reason)
        else:
            self.drop(reason, url)
        return reason

    def _on_spider_error(self, failure: Failure, response: Response, spider: scrapy.Spider) -> None:
        if spider is self:
            self.error(f"internal error: {failure.getErrorMessage()}", response.url, "internal")

    def closed(self, reason: str) -> None:
        """Emit ``source_done`` with the counts."""
        counts: dict[str, Any] = {
            "fetched": self.counts["fetched"],
            "documents": self.counts["documents"],
            "errors": self.counts["errors"],
            "warnings": self.counts["warnings"],
            "dropped": dict(sorted(self.dropped.items())),
        }
        ok = self.main_ok and reason == "finished"
        self.events.emit("source_done", self.source_id, ok=ok, counts=counts)
