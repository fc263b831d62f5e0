"""Telegram sources: the public preview ``<base_url>/s/<channel>``, paged back with ``?before=<id>``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import scrapy
from scrapy.http import Response
from twisted.python.failure import Failure

from core.documents import document_id_for_telegram
from core.errors import ParseError
from core.settings import TelegramSource
from crawlers.normalize import make_document
from crawlers.scrapy_project.spiders.base import SourceSpider
from crawlers.scrapy_project.text import decode_body
from crawlers.telegram import TelegramPost, parse_channel_page

__all__ = ["TelegramSpider", "post_title"]

_TITLE_MAX = 140


def post_title(text: str) -> str:
    """A post's title: its first non-empty line, shortened at a word boundary."""
    for line in text.splitlines():
        line = " ".join(line.split())
        if line:
            if len(line) <= _TITLE_MAX:
                return line
            cut = line[:_TITLE_MAX].rsplit(" ", 1)[0]
            return cut + "…"
    return ""


class TelegramSpider(SourceSpider):
    """Crawls one ``kind: telegram`` source, newest page first, stopping at already-seen posts."""

    kind = "telegram"
    source: TelegramSource

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        last = self.state.get("last_message_id")
        self.last_message_id: int | None = int(last) if last is not None else None
        self.newest_id: int | None = None

    @property
    def base(self) -> str:
        """The preview site's base URL without a trailing slash."""
        return self.source.base_url.rstrip("/")

    async def start(self) -> AsyncIterator[Any]:
        """The channel's first (newest) preview page."""
        yield self._page_request(None, 1)

    def _page_request(self, before: int | None, page_no: int) -> scrapy.Request:
        url = f"{self.base}/s/{self.source.channel}"
        if before is not None:
            url += f"?before={before}"
        return scrapy.Request(
            url,
            callback=self.parse_page,
            errback=self.page_failed,
            cb_kwargs={"page_no": page_no},
            dont_filter=True,
        )

    def page_failed(self, failure: Failure) -> None:
        """A preview page failed; the first page's failure makes the source fail."""
        request = getattr(failure, "request", None)
        page_no = request.cb_kwargs.get("page_no", 1) if request is not None else 1
        self.report_failure(failure, main=page_no == 1)

    def parse_page(self, response: Response, page_no: int) -> Iterator[scrapy.Request]:
        """Emit the page's new posts; request the previous page unless we reached seen posts."""
        self.emit_fetched(response)
        try:
            page = parse_channel_page(decode_body(response), self.source.channel, base_url=self.base)
        except ParseError as exc:
            self.error(f"not a Telegram preview page: {exc}", response.url, "parse_error")
            return
        if page_no == 1:
            self.main_ok = True
        reached_seen = False
        for post in sorted(page.posts, key=lambda p: p.message_id, reverse=True):
            if self.newest_id is None or post.message_id > self.newest_id:
                self.newest_id = post.message_id
            key = str(post.message_id)
            old = self.last_message_id is not None and post.message_id <= self.last_message_id
            if old or key in self.seen:
                reached_seen = reached_seen or old
                self.drop("seen", post.url or self._post_url(post), emit=False)
                continue
            self._emit_post(post)
        if reached_seen or not page.posts:
            return
        # No "load more" link: this is the channel's oldest page.
        if page.before is None or page.before <= 1 or page_no >= self.source.max_pages:
            return
        yield self._page_request(page.before, page_no + 1)

    def closed(self, reason: str) -> None:
        """Emit the newest message id seen as state, then ``source_done``."""
        ids = [x for x in (self.newest_id, self.last_message_id) if x is not None]
        if self.main_ok and ids:
            self.emit_state({"last_message_id": max(ids)})
        super().closed(reason)

    def _post_url(self, post: TelegramPost) -> str:
        return f"{self.base}/{self.source.channel}/{post.message_id}"

    def _emit_post(self, post: TelegramPost) -> None:
        if not post.text.strip() and not post.media:
            self.drop("no_text", self._post_url(post))
            return
        doc = make_document(
            source_id=self.source_id,
            kind="telegram",
            url=self._post_url(post),
            title=post_title(post.text),
            text=post.text,
            published=post.date,
            fetched=self.now(),
            language_hint=self.source.language,
            author=post.author or "",
            extraction="telegram",
            outlet=self.source.outlet or f"t.me/{self.source.channel}",
            links=post.links,
            forwarded_from=post.forwarded_from or "",
            views=post.views,
            media=post.media,
            doc_id=document_id_for_telegram(self.source.channel, post.message_id),
            passage_max_words=self.passage_max_words,
            extra={
                "channel": self.source.channel,
                "message_id": post.message_id,
                "forwarded_from_url": post.forwarded_from_url or "",
            },
        )
        self.emit_document(str(post.message_id), doc)
