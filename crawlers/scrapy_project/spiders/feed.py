"""Feed sources: conditional GET, parse, then each new entry's page (or the entry's own content)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import scrapy
from scrapy.http import Response
from twisted.python.failure import Failure

from core.documents import document_id_for_url
from core.errors import ExtractionError, ParseError, UnsupportedURL
from core.settings import FeedSource
from crawlers.extract import Extracted, extract_article
from crawlers.feeds import FeedEntry, parse_feed
from crawlers.normalize import canonical_url, make_document
from crawlers.scrapy_project.spiders.base import SourceSpider
from crawlers.scrapy_project.text import decode_body, fragment_to_text

__all__ = ["FeedSpider"]

logger = logging.getLogger(__name__)

MAX_FEED_WARNINGS = 20
"""Warnings of one feed parse sent to the parent (a feed with 500 undated entries says so once anyway)."""


class FeedSpider(SourceSpider):
    """Crawls one ``kind: feed`` source."""

    kind = "feed"
    source: FeedSource

    async def start(self) -> AsyncIterator[Any]:
        """The feed request, conditional on the stored validators."""
        headers: dict[str, str] = {}
        if self.state.get("etag"):
            headers["If-None-Match"] = str(self.state["etag"])
        if self.state.get("last_modified"):
            headers["If-Modified-Since"] = str(self.state["last_modified"])
        yield scrapy.Request(
            self.source.url,
            headers=headers,
            callback=self.parse_feed,
            errback=self.feed_failed,
            dont_filter=True,
            meta={"handle_httpstatus_list": [304]},
        )

    def feed_failed(self, failure: Failure) -> None:
        """The feed itself failed: the source is not ok."""
        self.report_failure(failure, main=True)

    def parse_feed(self, response: Response) -> Iterator[scrapy.Request]:
        """Parse the feed and schedule each new entry."""
        if response.status == 304:
            self.main_ok = True
            self.counts["fetched"] += 1
            self.drop("not_modified", response.url)
            return
        self.emit_fetched(response)
        content_type = response.headers.get("Content-Type")
        try:
            feed = parse_feed(response.body, response.url, content_type.decode("latin-1") if content_type else None)
        except ParseError as exc:
            self.error(f"malformed feed: {exc}", response.url, "parse_error")
            return
        self.main_ok = True
        for warning in feed.warnings[:MAX_FEED_WARNINGS]:
            self.warn("feed", warning, response.url)
        if len(feed.warnings) > MAX_FEED_WARNINGS:
            self.warn("feed", f"... and {len(feed.warnings) - MAX_FEED_WARNINGS} more warnings", response.url)
        etag = response.headers.get("ETag")
        modified = response.headers.get("Last-Modified")
        self.emit_state(
            {
                "etag": etag.decode("latin-1") if etag else None,
                "last_modified": modified.decode("latin-1") if modified else None,
            }
        )
        for entry in feed.entries[: self.source.max_entries]:
            if entry.key in self.seen:
                self.drop("seen", entry.link or entry.key)
                continue
            if entry.key in self.emitted:
                continue
            if self.source.fetch_articles and entry.link.startswith(("http://", "https://")):
                yield scrapy.Request(
                    entry.link,
                    callback=self.parse_article,
                    errback=self.article_failed,
                    cb_kwargs={"entry": entry, "feed_response": response},
                    dont_filter=True,
                )
            else:
                self.emit_from_entry(entry, None, response)

    def parse_article(self, response: Response, entry: FeedEntry, feed_response: Response | None = None) -> None:
        """Extract the entry's page; fall back to the entry's own content if that fails."""
        self.emit_fetched(response)
        try:
            extracted = extract_article(decode_body(response), response.url)
        except ExtractionError as exc:
            logger.info("%s: %s; keeping the feed's content", self.source_id, exc)
            self.counts["page_fallbacks"] += 1
            self.emit_from_entry(entry, None, feed_response)
            return
        self.emit_from_entry(entry, extracted, response)

    def article_failed(self, failure: Failure) -> None:
        """The entry's page failed (HTTP error, robots, size...): keep the entry's own content."""
        request = getattr(failure, "request", None)
        entry: FeedEntry | None = request.cb_kwargs.get("entry") if request is not None else None
        feed_response: Response | None = request.cb_kwargs.get("feed_response") if request is not None else None
        self.report_failure(failure)
        if entry is not None:
            self.counts["page_fallbacks"] += 1
            self.emit_from_entry(entry, None, feed_response)

    def emit_from_entry(self, entry: FeedEntry, extracted: Extracted | None, response: Response | None = None) -> None:
        """Build the document from the page extraction, or else from the entry alone; ``response``:
        the page's or the feed's response the text came from (its capture goes on the document)."""
        if extracted is not None:
            text = extracted.text
            extraction = "page"
        else:
            text = fragment_to_text(entry.content_html)
            extraction = "feed_content"
            if not text:
                text = fragment_to_text(entry.summary_html)
                extraction = "feed_summary"
        if not text.strip():
            self.drop("no_text", entry.link or entry.key)
            return
        doc_id = None
        if not entry.link:  # an entry without a page: its id comes from the feed URL and its key
            doc_id = document_id_for_url(f"{canonical_url(self.source.url)}#{entry.key}")
        try:
            doc = make_document(
                source_id=self.source_id,
                kind="feed",
                url=entry.link or self.source.url,
                doc_id=doc_id,
                title=(extracted.title if extracted and extracted.title else "") or entry.title,
                text=text,
                published=(extracted.published if extracted else None) or entry.published,
                fetched=self.now(),
                language_hint=(extracted.language_hint if extracted else None) or self.source.language,
                author=(extracted.author if extracted and extracted.author else "") or entry.author,
                extraction=extraction,  # type: ignore[arg-type]
                outlet=self.source.outlet or "",
                links=extracted.links if extracted else (),
                passage_max_words=self.passage_max_words,
                extra={"feed_entry_key": entry.key, "categories": list(entry.categories)},
            )
        except UnsupportedURL as exc:  # javascript:, data:, mailto: ... name no document
            logger.info("%s: entry dropped: %s", self.source_id, exc)
            self.drop(exc.reason, entry.link or entry.key)
            return
        self.emit_document(entry.key, doc, response)
