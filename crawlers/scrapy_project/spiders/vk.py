"""VK sources: ``wall.get`` pages (``offset`` steps), newest first, until posts seen before.

The service token is read from the environment variable the source names and sent only in the
POST body (never in a URL, so never in an event, a log line or the source's health); it is also
registered with :func:`core.redact.register_secret`, so a log line that somehow holds it is
masked. Without the token the spider makes no request and reports ``disabled``.

State in/out: ``last_message_id`` (the newest post id of the wall seen so far; pinned posts
do not stop the walk, since they are old posts shown first). It advances only after a walk
that ended normally: at seen posts, at the wall's end, or at ``max_pages`` (then with a
``not_walked`` warning). API error 6/9/29 (rate limits) is retried with backoff within the run,
then reported; every other API error ends the run as a source error with its reason.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import scrapy
from scrapy.http import Response
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.task import deferLater
from twisted.python.failure import Failure

from core.errors import ParseError, UnsupportedURL
from core.platform_settings import VkSource
from core.redact import redact, register_secret
from crawlers.normalize import make_document
from crawlers.scrapy_project.middlewares import backoff_delay
from crawlers.scrapy_project.spiders.base import SourceSpider
from crawlers.scrapy_project.spiders.telegram import post_title
from crawlers.vk import VkApiError, VkPost, VkWallPage, parse_wall_response

__all__ = ["VkSpider"]


class VkSpider(SourceSpider):
    """Crawls one ``kind: vk`` source (see the module docstring)."""

    kind = "vk"
    source: VkSource

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        last = self.state.get("last_message_id")
        self.watermark: int | None = int(last) if last is not None else None
        self.newest: int | None = None
        self.owner: int | None = self.source.owner_id
        self.walk_done = False
        self.walk_failed = False

    @property
    def endpoint(self) -> str:
        """``<base_url>/wall.get``."""
        return f"{self.source.base_url.rstrip('/')}/wall.get"

    async def start(self) -> AsyncIterator[Any]:
        """The wall's first page, or nothing (and ``disabled``) without a token."""
        token = self.source.token
        if not token:
            self.error(f"disabled: {self.source.disabled_reason}", self.endpoint, "disabled")
            return
        register_secret(token)
        yield self._page(0, 1, 0)

    def _page(self, offset: int, page_no: int, attempt: int) -> scrapy.FormRequest:
        params = {
            "count": str(self.source.page_size),
            "offset": str(offset),
            "extended": "1",
            "v": self.source.api_version,
            "access_token": self.source.token,
        }
        if self.source.owner_id is not None:
            params["owner_id"] = str(self.source.owner_id)
        else:
            assert self.source.domain is not None
            params["domain"] = self.source.domain
        return scrapy.FormRequest(
            self.endpoint,
            formdata=params,
            callback=self.parse_page,
            errback=self.page_failed,
            cb_kwargs={"offset": offset, "page_no": page_no, "attempt": attempt},
            dont_filter=True,
            # For anything that records requests (an archive): these body fields are secrets.
            meta={"narrawatch_secret_fields": ("access_token",)},
        )

    def page_failed(self, failure: Failure) -> None:
        """A page failed after retries: the walk is incomplete, the watermark stays."""
        request = getattr(failure, "request", None)
        page_no = request.cb_kwargs.get("page_no", 1) if request is not None else 1
        self.report_failure(failure, main=True)
        self.walk_failed = True
        if page_no == 1:
            self.main_ok = False

    async def _wait(self, attempt: int) -> None:
        base = self.settings.getfloat("NARRAWATCH_BACKOFF_BASE", 1.0)
        cap = self.settings.getfloat("NARRAWATCH_BACKOFF_MAX", 120.0)
        delay = backoff_delay(attempt, base, cap) + random.uniform(0, 0.25 * base)
        from twisted.internet import reactor  # the installed one

        d: Any = deferLater(reactor, delay, lambda: None)
        await maybe_deferred_to_future(d)

    async def parse_page(self, response: Response, offset: int, page_no: int, attempt: int) -> AsyncIterator[Any]:
        """Emit the page's unseen posts; request the next page unless the walk is over."""
        self.emit_fetched(response)
        try:
            answer = parse_wall_response(response.body)
        except ParseError as exc:
            self.error(str(exc), response.url, "parse_error")
            self.walk_failed = True
            return
        if isinstance(answer, VkApiError):
            if answer.retry and attempt < self.settings.getint("RETRY_TIMES", 3):
                await self._wait(attempt + 1)
                yield self._page(offset, page_no, attempt + 1)
                return
            self.error(redact(answer.message), response.url, answer.reason)
            self.walk_failed = True
            return
        if page_no == 1:
            self.main_ok = True
            self.owner = self._resolve_owner(answer)
        for request in self._take(answer, offset, page_no):
            yield request

    def _resolve_owner(self, page: VkWallPage) -> int | None:
        """The wall's owner id: configured, else the group/profile named ``domain``, else the posts' owner."""
        if self.source.owner_id is not None:
            return self.source.owner_id
        want = f"vk.com/{self.source.domain}".lower()
        for owner_id, outlet in (page.owner_names or {}).items():
            if outlet.lower() == want:
                return owner_id
        owners = Counter(p.owner_id for p in page.posts)
        return owners.most_common(1)[0][0] if owners else None

    def _take(self, page: VkWallPage, offset: int, page_no: int) -> list[scrapy.FormRequest]:
        reached_seen = False
        for post in page.posts:
            if self.owner is not None and post.owner_id != self.owner:
                self.warn("foreign_owner", f"post {post.key} is not on wall {self.owner}", post.url)
                continue
            if (self.watermark is not None and post.post_id <= self.watermark) or post.key in self.seen:
                if not post.pinned:
                    reached_seen = True
                self.drop("seen", post.url, emit=False)
                continue
            self.newest = max(self.newest or 0, post.post_id)
            self._emit(post, page)
        walked = offset + len(page.posts) + page.skipped
        if reached_seen or not (page.posts or page.skipped) or walked >= page.count:
            self.walk_done = True
            return []
        if page_no >= self.source.max_pages:
            self.walk_done = True
            if self.watermark is not None:
                self.warn(
                    "not_walked",
                    f"stopped after {self.source.max_pages} pages ({walked} posts) before reaching the posts seen"
                    f" last run (ids up to {self.watermark}): older unread posts are skipped; raise max_pages",
                    self.endpoint,
                )
            return []
        return [self._page(walked, page_no + 1, 0)]

    def _emit(self, post: VkPost, page: VkWallPage) -> None:
        if not post.text.strip() and not post.media:
            self.drop("no_text", post.url)
            return
        origin = post.origins[0] if post.origins else None
        try:
            doc = make_document(
                source_id=self.source_id,
                kind="vk",
                url=post.url,
                title=post_title(post.text),
                text=post.text,
                published=post.date,
                fetched=self.now(),
                language_hint=self.source.language,
                author=post.author,
                extraction="api",
                outlet=self.source.outlet or self.source.default_outlet,
                links=post.links,
                forwarded_from=origin.outlet if origin else "",
                views=post.views,
                media=post.media,
                passage_max_words=self.passage_max_words,
                extra={
                    "owner_id": post.owner_id,
                    "post_id": post.post_id,
                    "from_id": post.from_id,
                    "post_type": post.post_type,
                    "is_pinned": post.pinned,
                    "marked_as_ads": post.ads,
                    "reach": {
                        "views": post.views,
                        "likes": post.likes,
                        "reposts": post.reposts,
                        "comments": post.comments,
                    },
                    "forwarded_from_url": origin.url if origin else "",
                    "copy_history": [
                        {"url": o.url, "outlet": o.outlet, "date": o.date.isoformat() if o.date else None}
                        for o in post.origins
                    ],
                },
            )
        except UnsupportedURL as exc:  # pragma: no cover - post URLs are built from integers
            self.drop(exc.reason, post.url)
            return
        self.emit_document(post.key, doc)

    def closed(self, reason: str) -> None:
        """The new watermark after a complete walk, then ``source_done`` (failed if the walk broke)."""
        if self.walk_failed:
            self.main_ok = False
        elif self.main_ok and self.walk_done:
            ids = [i for i in (self.newest, self.watermark) if i is not None]
            if ids:
                self.emit_state({"last_message_id": max(ids)})
        super().closed(reason)
