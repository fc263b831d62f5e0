"""Telegram sources: the public preview ``<base_url>/s/<channel>``, paged back with ``?before=<id>``."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import scrapy
from scrapy.crawler import Crawler
from scrapy.http import Response
from twisted.python.failure import Failure

from core.documents import document_id_for_telegram
from core.errors import ParseError
from core.settings import TelegramSource
from core.timefmt import iso_utc
from crawlers.normalize import make_document
from crawlers.scrapy_project.spiders.base import SourceSpider
from crawlers.scrapy_project.text import decode_body
from crawlers.telegram import ScreenedPage, TelegramPage, TelegramPost, parse_channel_page, screen_page

__all__ = ["GAP_TOLERANCE", "MAX_PENDING_RANGES", "TelegramSpider", "post_title"]

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


MAX_PENDING_RANGES = 20
"""Unwalked id ranges kept for backfill; past this the oldest range is given up (and reported)."""

GAP_TOLERANCE = 100
"""Absent ids between two adjacent shown posts that albums (up to 10 ids for one post) and
deletions plausibly explain; a longer run of absent ids is reported as an id gap. The real
posts of the demo's 9 channels (text posts only, media-only posts missing) have runs up to 95."""


def _ranges(value: Any) -> list[tuple[int, int]]:
    """Backfill ranges from job state: ``[[after, before], ...]`` -> ids strictly between, newest first."""
    out: list[tuple[int, int]] = []
    for item in value or ():
        try:
            after, before = int(item[0]), int(item[1])
        except (TypeError, ValueError, IndexError):
            continue
        if before - after > 1:
            out.append((after, before))
    return sorted(set(out), key=lambda r: r[1], reverse=True)


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping or touching ranges merged, newest first."""
    merged: list[tuple[int, int]] = []
    for after, before in sorted(ranges):
        if merged and after < merged[-1][1]:
            merged[-1] = (min(merged[-1][0], after), max(merged[-1][1], before))
        else:
            merged.append((after, before))
    return sorted(merged, key=lambda r: r[1], reverse=True)


def _absent_runs(ids: set[int], floor: int | None) -> list[tuple[int, int]]:
    """Runs of more than :data:`GAP_TOLERANCE` absent ids between adjacent ``ids`` above ``floor``."""
    ordered = sorted(ids)
    return [
        (a + 1, b - 1)
        for a, b in itertools.pairwise(ordered)
        if b - a - 1 > GAP_TOLERANCE and (floor is None or b > floor)
    ]


class TelegramSpider(SourceSpider):
    """Crawls one ``kind: telegram`` source: new posts newest first, then unfinished backfill.

    The *head walk* pages back from the newest post until it reaches the stored watermark
    (``last_message_id``) or ``max_pages``. Stopping at ``max_pages`` (or at a failed page)
    before the watermark leaves a range of unread ids; it is kept as a backfill range and the
    next runs walk it with ``?before=<id>``, up to ``max_pages`` more pages per run, so the
    hole fills instead of becoming permanent. Job state in/out: ``last_message_id`` and
    ``backfill`` (``[[after, before], ...]``: ids strictly between are still unread);
    ``id_gaps`` (out only) lists long runs of absent ids seen this pass.

    *Reach refresh*: a post already indexed (at or below the watermark, or seen) and published
    within ``crawl.reach_refresh`` is not emitted again; a ``reach`` event carries its views and
    reactions as the page shows them now, and the parent updates the stored document's counters
    without re-embedding (the text and content hash stay). When the head walk reaches seen posts
    and the page's oldest post is still that young, it reads one more page for reach, up to
    ``max_pages`` pages in all.
    """

    kind = "telegram"
    source: TelegramSource

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        last = self.state.get("last_message_id")
        self.last_message_id: int | None = int(last) if last is not None else None
        self.newest_id: int | None = None
        # Backfill ranges still open; None once walked to their end this pass.
        self.backfill: list[tuple[int, int] | None] = list(_ranges(self.state.get("backfill")))
        self.backfill_pages = 0
        self.head_hole: tuple[int, int] | None = None
        self.head_ids: set[int] = set()
        self.backfill_ids: dict[int, set[int]] = {}
        self.rejected_seen: set[tuple[str, int, str]] = set()
        self.reach_refresh = timedelta(0)
        self.reach_sent: set[int] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> TelegramSpider:
        """Also read ``crawl.reach_refresh`` (``NARRAWATCH_REACH_REFRESH``, seconds)."""
        spider = super().from_crawler(crawler, *args, **kwargs)
        assert isinstance(spider, TelegramSpider)
        spider.reach_refresh = timedelta(seconds=crawler.settings.getfloat("NARRAWATCH_REACH_REFRESH", 0.0))
        return spider

    @property
    def base(self) -> str:
        """The preview site's base URL without a trailing slash."""
        return self.source.base_url.rstrip("/")

    async def start(self) -> AsyncIterator[Any]:
        """The channel's first (newest) preview page, and the first page of a pending backfill."""
        yield self._page_request(None, 1)
        if self.backfill:
            yield self._backfill_request(0)

    def _page_request(self, before: int | None, page_no: int) -> scrapy.Request:
        return self._request(before, {"page_no": page_no}, self.parse_page)

    def _backfill_request(self, index: int) -> scrapy.Request:
        current = self.backfill[index]
        assert current is not None
        self.backfill_pages += 1
        return self._request(current[1], {"index": index}, self.parse_backfill)

    def _request(self, before: int | None, cb_kwargs: dict[str, Any], callback: Any) -> scrapy.Request:
        url = f"{self.base}/s/{self.source.channel}"
        if before is not None:
            url += f"?before={before}"
        return scrapy.Request(
            url,
            callback=callback,
            errback=self.page_failed,
            cb_kwargs={**cb_kwargs, "before": before},
            dont_filter=True,
        )

    def page_failed(self, failure: Failure) -> None:
        """A preview page failed; the first page's failure makes the source fail.

        A later page of the head walk leaves the unread ids as a backfill range; a failed
        backfill page leaves its range open where it stood.
        """
        request = getattr(failure, "request", None)
        kwargs = request.cb_kwargs if request is not None else {}
        page_no = kwargs.get("page_no", 1) if "index" not in kwargs else 0
        self.report_failure(failure, main=page_no == 1)
        if page_no > 1:
            self._head_stopped(kwargs.get("before"))

    def _screen(self, response: Response) -> tuple[TelegramPage, ScreenedPage] | None:
        self.emit_fetched(response)
        try:
            page = parse_channel_page(decode_body(response), self.source.channel, base_url=self.base)
        except ParseError as exc:
            self.error(f"not a Telegram preview page: {exc}", response.url, "parse_error")
            return None
        screened = screen_page(page, self.source.channel, self.last_message_id)
        for rejected in screened.rejected:
            key = (rejected.channel.lower(), rejected.message_id, rejected.reason)
            if key not in self.rejected_seen:
                self.rejected_seen.add(key)
                self.warn(rejected.reason, f"rejected data-post: {rejected.detail}", response.url)
        return page, screened

    @staticmethod
    def _next_before(screened: ScreenedPage, before: int | None) -> int | None:
        """The cursor for the next older page: the oldest believed id, if that makes progress."""
        if not screened.ids:
            return None
        oldest = screened.ids[0]
        if oldest <= 1 or (before is not None and oldest >= before):
            return None  # the channel's first message, or a page that would repeat itself
        return oldest

    def parse_page(self, response: Response, page_no: int, before: int | None) -> Iterator[scrapy.Request]:
        """Head walk: emit the page's new posts; request the previous page unless we reached seen posts."""
        parsed = self._screen(response)
        if parsed is None:
            if page_no > 1:
                self._head_stopped(before)
            return
        page, screened = parsed
        if page_no == 1:
            if page.message_ids and not screened.ids and all(r.reason == "foreign_channel" for r in screened.rejected):
                names = sorted({r.channel for r in screened.rejected})
                self.error(
                    f"page shows posts of {', '.join(names)}, not of {self.source.channel}"
                    " (channel renamed, or base_url is not a Telegram preview site)",
                    response.url,
                    "parse_error",
                )
                return
            self.main_ok = True
        self.head_ids.update(screened.ids)
        if screened.ids and (self.newest_id is None or screened.ids[-1] > self.newest_id):
            self.newest_id = screened.ids[-1]
        watermark = self.last_message_id
        reached_seen = watermark is not None and any(i <= watermark for i in screened.ids)
        for post in sorted(screened.posts, key=lambda p: p.message_id, reverse=True):
            key = str(post.message_id)
            if (watermark is not None and post.message_id <= watermark) or key in self.seen:
                self.drop("seen", post.url or self._post_url(post), emit=False)
                self._emit_reach(post)
                continue
            self._emit_post(post, response)
        cursor = self._next_before(screened, before)
        if reached_seen:
            # Older pages hold only indexed posts; read on while they are young enough to refresh.
            if cursor is not None and page_no < self.source.max_pages and self._young(screened):
                yield self._page_request(cursor, page_no + 1)
            return
        if cursor is None:  # the channel's oldest page: nothing older to read
            return
        if page_no >= self.source.max_pages:
            self._head_stopped(cursor)
            return
        yield self._page_request(cursor, page_no + 1)

    def _head_stopped(self, cursor: int | None) -> None:
        """The head walk ended above the watermark: ids between it and ``cursor`` are unread."""
        if self.last_message_id is not None and cursor is not None and cursor - self.last_message_id > 1:
            self.head_hole = (self.last_message_id, cursor)

    def parse_backfill(self, response: Response, index: int, before: int) -> Iterator[scrapy.Request]:
        """Backfill walk: emit unseen posts of the open range, page on until its lower end."""
        current = self.backfill[index]
        assert current is not None
        after = current[0]
        parsed = self._screen(response)
        if parsed is None:
            return  # the range stays open where it stood
        _page, screened = parsed
        ids = {i for i in screened.ids if i < before}
        seen_ids = self.backfill_ids.setdefault(index, set())
        seen_ids.update(i for i in ids if i > after)
        seen_ids.add(before)  # the id the cursor came from is a post we have
        for post in sorted(screened.posts, key=lambda p: p.message_id, reverse=True):
            if not after < post.message_id < before:
                continue
            if str(post.message_id) in self.seen:
                self.drop("seen", post.url or self._post_url(post), emit=False)
                continue
            self._emit_post(post, response)
        cursor = self._next_before(screened, before)
        if any(i <= after for i in ids) or cursor is None or cursor <= after + 1:
            if any(i <= after for i in ids):
                seen_ids.add(after)
            self.backfill[index] = None  # walked to its end
            following = index + 1
            if following < len(self.backfill) and self.backfill_pages < self.source.max_pages:
                yield self._backfill_request(following)
            return
        self.backfill[index] = (after, cursor)
        if self.backfill_pages < self.source.max_pages:
            yield self._backfill_request(index)

    def closed(self, reason: str) -> None:
        """Emit the watermark, the open backfill ranges and id gaps as state, then ``source_done``."""
        gaps = self._gaps()
        if self.main_ok:
            ids = [x for x in (self.newest_id, self.last_message_id) if x is not None]
            pending = [r for r in self.backfill if r is not None]
            if self.head_hole is not None:
                pending.append(self.head_hole)
                self.warn(
                    "backfill_pending",
                    f"stopped after {self.source.max_pages} pages before reaching the last run's newest post:"
                    f" ids {self.head_hole[0] + 1}-{self.head_hole[1] - 1} are left for the next run",
                    f"{self.base}/s/{self.source.channel}?before={self.head_hole[1]}",
                )
            pending = _merge(pending)
            for after, before in pending[MAX_PENDING_RANGES:]:
                gaps.append({"first": after + 1, "last": before - 1, "reason": "not_walked"})
                self.warn(
                    "backfill_dropped",
                    f"more than {MAX_PENDING_RANGES} unread ranges: ids {after + 1}-{before - 1} given up",
                    f"{self.base}/s/{self.source.channel}?before={before}",
                )
            state: dict[str, Any] = {"backfill": [list(r) for r in pending[:MAX_PENDING_RANGES]], "id_gaps": gaps}
            if ids:
                state["last_message_id"] = max(ids)
            self.emit_state(state)
        super().closed(reason)

    def _gaps(self) -> list[dict[str, Any]]:
        """Long runs of absent ids on the pages walked this pass (reported as warnings too)."""
        head = set(self.head_ids)
        floor = self.last_message_id
        if floor is not None and head and min(head) <= floor:
            head.add(floor)
        runs = _absent_runs(head, floor)
        for ids in self.backfill_ids.values():
            runs.extend(_absent_runs(ids, None))
        gaps = []
        for first, last in sorted(set(runs), reverse=True):
            gaps.append({"first": first, "last": last, "reason": "absent"})
            self.warn(
                "id_gap",
                f"ids {first}-{last} ({last - first + 1}) absent between shown posts:"
                f" more than albums and deletions explain (tolerance {GAP_TOLERANCE})",
                f"{self.base}/s/{self.source.channel}?before={last + 1}",
            )
        return gaps

    def _young(self, screened: ScreenedPage) -> bool:
        """Is the page's oldest believed post within ``reach_refresh`` (worth a reach re-read)?"""
        if self.reach_refresh <= timedelta(0) or not screened.posts:
            return False
        oldest = min(screened.posts, key=lambda p: p.message_id)
        return oldest.date >= self.now() - self.reach_refresh

    def _emit_reach(self, post: TelegramPost) -> None:
        """A ``reach`` event for an indexed post published within ``reach_refresh`` (once a run)."""
        if self.reach_refresh <= timedelta(0) or post.date < self.now() - self.reach_refresh:
            return
        if post.message_id in self.reach_sent or (post.views is None and not post.reactions):
            return
        self.reach_sent.add(post.message_id)
        self.events.emit(
            "reach",
            self.source_id,
            key=str(post.message_id),
            document_id=document_id_for_telegram(self.source.channel, post.message_id),
            views=post.views,
            reactions=dict(post.reactions),
            published=iso_utc(post.date),
            at=iso_utc(self.now()),
        )

    def _post_url(self, post: TelegramPost) -> str:
        return f"{self.base}/{self.source.channel}/{post.message_id}"

    def _emit_post(self, post: TelegramPost, response: Response | None = None) -> None:
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
            outlet=self.source.outlet or self.source.default_outlet,
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
                **({"reactions": dict(post.reactions)} if post.reactions else {}),
                "reach_at": iso_utc(self.now()),
            },
        )
        self.emit_document(str(post.message_id), doc, response)
