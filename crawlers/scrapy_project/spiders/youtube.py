"""YouTube sources: the channel's Atom feed, then each new video's watch page and caption track.

Every request goes to the configured ``base_url`` host; redirects are not followed by Scrapy but
judged here: one to ``consent.*`` or ``/sorry/`` is a block (reported, not indexed), one on the
configured host is followed (at most :data:`MAX_HOPS`), any other is refused. A caption track's
``baseUrl`` contributes only its path and query (:func:`crawlers.youtube.transcript_path`).

A video whose watch page or transcript is blocked (consent or rate-limit page) is not emitted:
it stays unseen and the next run tries again; the run reports the block as a source error.
Anything else that keeps a transcript away (no captions, a 404, robots.txt, a malformed page)
leaves the feed's description as the document's text.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

import scrapy
from scrapy.http import Response
from twisted.python.failure import Failure

from core.errors import ParseError, UnsupportedURL
from core.platform_settings import YouTubeSource
from crawlers.normalize import make_document
from crawlers.platform_text import text_links
from crawlers.scrapy_project.spiders.base import SourceSpider
from crawlers.scrapy_project.text import decode_body
from crawlers.youtube import (
    Block,
    CaptionTrack,
    YouTubeVideo,
    choose_track,
    detect_block,
    parse_channel_feed,
    parse_transcript,
    parse_watch_page,
    transcript_path,
)

__all__ = ["MAX_HOPS", "YouTubeSpider"]

MAX_HOPS = 3
"""Same-host redirects followed for one request."""

_REDIRECTS = (301, 302, 303, 307, 308)
_HANDLED = [*_REDIRECTS, 403, 404, 429]


class YouTubeSpider(SourceSpider):
    """Crawls one ``kind: youtube`` source (see the module docstring)."""

    kind = "youtube"
    source: YouTubeSource

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.blocks: dict[str, int] = {}

    @property
    def base(self) -> str:
        """The configured base URL without a trailing slash."""
        return self.source.base_url.rstrip("/")

    def _request(
        self, url: str, callback: Any, errback: Any, cb_kwargs: dict[str, Any], hops: int = 0
    ) -> scrapy.Request:
        return scrapy.Request(
            url,
            callback=callback,
            errback=errback,
            cb_kwargs={**cb_kwargs, "hops": hops},
            dont_filter=True,
            meta={"dont_redirect": True, "handle_httpstatus_list": _HANDLED},
        )

    async def start(self) -> AsyncIterator[Any]:
        """The channel feed."""
        url = f"{self.base}/feeds/videos.xml?channel_id={self.source.channel_id}"
        yield self._request(url, self.parse_feed, self.feed_failed, {})

    # --- shared answer handling ---------------------------------------------------------------

    def _blocked(self, block: Block, url: str) -> None:
        """Report a consent or rate-limit page once per reason and run; the run then fails."""
        self.blocks[block.reason] = self.blocks.get(block.reason, 0) + 1
        if self.blocks[block.reason] == 1:
            self.error(
                f"YouTube answered with {block.message}; nothing from it was indexed, the next run tries again",
                url,
                block.reason,
            )
        else:
            self.drop(block.reason, url)

    def _judge(self, response: Response, hops: int) -> bool | str | None:
        """True: content to parse; False: a block (reported here); a URL: a same-host redirect to
        follow; None: a redirect elsewhere, refused (the caller reports it)."""
        location = ""
        if response.status in _REDIRECTS:
            raw = response.headers.get("Location")
            location = urljoin(response.url, raw.decode("latin-1")) if raw else ""
        block = detect_block(response.status, location, b"" if location else response.body)
        if block is not None:
            self.counts["fetched"] += 1
            self._blocked(block, response.url)
            return False
        if response.status in _REDIRECTS:
            self.counts["fetched"] += 1
            own = (urlsplit(self.base).hostname or "").lower()
            target = (urlsplit(location).hostname or "").lower()
            if location and target == own and urlsplit(location).scheme in ("http", "https") and hops < MAX_HOPS:
                return location
            return None
        return True

    def _refused(self, response: Response) -> str:
        raw = response.headers.get("Location")
        where = raw.decode("latin-1") if raw else "(no Location)"
        return f"redirected to {where}, off the configured host or past {MAX_HOPS} hops; not followed"

    # --- feed ---------------------------------------------------------------------------------

    def feed_failed(self, failure: Failure) -> None:
        """The feed itself failed: the source is not ok."""
        self.report_failure(failure, main=True)

    def parse_feed(self, response: Response, hops: int) -> Iterator[scrapy.Request]:
        """Parse the feed and schedule each new video's watch page (or emit it at once)."""
        verdict = self._judge(response, hops)
        if isinstance(verdict, str):
            yield self._request(verdict, self.parse_feed, self.feed_failed, {}, hops + 1)
            return
        if verdict is None:
            self.error(self._refused(response), response.url, "redirect")
            return
        if not verdict:
            return
        self.emit_fetched(response)
        if response.status != 200:
            what = "no such channel? " if response.status == 404 else ""
            self.error(
                f"{what}the feed of channel {self.source.channel_id} answered HTTP {response.status}",
                response.url,
                f"http_{response.status}",
            )
            return
        content_type = response.headers.get("Content-Type")
        try:
            feed = parse_channel_feed(response.body, content_type.decode("latin-1") if content_type else None)
        except ParseError as exc:
            self.error(f"not a YouTube channel feed: {exc}", response.url, "parse_error")
            return
        self.main_ok = True
        for video in feed.videos[: self.source.max_videos]:
            if video.channel_id and video.channel_id != self.source.channel_id:
                self.warn("foreign_channel", f"video {video.video_id} is of channel {video.channel_id}", response.url)
                continue
            if video.video_id in self.seen or video.video_id in self.emitted:
                self.drop("seen", self._video_url(video), emit=False)
                continue
            if self.source.transcripts:
                yield self._watch_request(video, 0, self._video_url(video))
            else:
                self._emit(video, None, None, "transcripts off")

    # --- watch page and transcript ------------------------------------------------------------

    def _video_url(self, video: YouTubeVideo) -> str:
        return f"{self.base}/watch?v={video.video_id}"

    def _watch_request(self, video: YouTubeVideo, hops: int, url: str) -> scrapy.Request:
        return self._request(url, self.parse_watch, self.page_failed, {"video": video}, hops)

    def page_failed(self, failure: Failure) -> None:
        """A watch page or transcript failed after retries: the description stands in."""
        request = getattr(failure, "request", None)
        video = request.cb_kwargs.get("video") if request is not None else None
        reason = self.report_failure(failure)
        if isinstance(video, YouTubeVideo):
            self._emit(video, None, None, f"transcript not fetched: {reason}")

    def parse_watch(self, response: Response, video: YouTubeVideo, hops: int) -> Iterator[scrapy.Request]:
        """Find the caption track to read, or emit the video with its description."""
        verdict = self._judge(response, hops)
        if isinstance(verdict, str):
            yield self._watch_request(video, hops + 1, verdict)
            return
        if verdict is None:
            self.drop("off_host_redirect", response.url)
            self._emit(video, None, None, self._refused(response))
            return
        if not verdict:
            return
        self.emit_fetched(response)
        if response.status != 200:
            self.drop(f"http_{response.status}", response.url)
            self._emit(video, None, None, f"watch page HTTP {response.status}")
            return
        try:
            page = parse_watch_page(decode_body(response))
        except ParseError as exc:
            self.warn("watch_page", str(exc), response.url)
            self._emit(video, None, None, "watch page unreadable")
            return
        if page.video_id != video.video_id:
            self.warn("foreign_video", f"watch page shows video {page.video_id!r}, not {video.video_id}", response.url)
            self._emit(video, None, None, "watch page of another video")
            return
        track = choose_track(page, self.source.language)
        if track is None:
            self._emit(video, None, None, "no caption tracks")
            return
        path = transcript_path(track, video.video_id)
        if path is None:
            self.warn("caption_url", f"caption track URL refused: {track.base_url[:200]}", response.url)
            self._emit(video, None, None, "caption track URL refused")
            return
        yield self._transcript_request(video, track, self.base + path, 0)

    def _transcript_request(self, video: YouTubeVideo, track: CaptionTrack, url: str, hops: int) -> scrapy.Request:
        return self._request(url, self.parse_transcript, self.page_failed, {"video": video, "track": track}, hops)

    def parse_transcript(
        self, response: Response, video: YouTubeVideo, track: CaptionTrack, hops: int
    ) -> Iterator[scrapy.Request]:
        """Emit the video with its transcript as the text."""
        verdict = self._judge(response, hops)
        if isinstance(verdict, str):
            yield self._transcript_request(video, track, verdict, hops + 1)
            return
        if verdict is None:
            self.drop("off_host_redirect", response.url)
            self._emit(video, None, None, self._refused(response))
            return
        if not verdict:
            return
        self.emit_fetched(response)
        if response.status != 200:
            self.drop(f"http_{response.status}", response.url)
            self._emit(video, None, None, f"transcript HTTP {response.status}")
            return
        try:
            text = parse_transcript(response.body)
        except ParseError as exc:
            self.warn("transcript", str(exc), response.url)
            self._emit(video, None, None, "transcript unreadable")
            return
        self._emit(video, text or None, track, "" if text else "empty transcript")

    def _emit(self, video: YouTubeVideo, transcript: str | None, track: CaptionTrack | None, note: str) -> None:
        caption = None
        if transcript and track is not None:
            caption = {"language": track.language, "kind": track.kind or "manual", "name": track.name}
        try:
            doc = make_document(
                source_id=self.source_id,
                kind="youtube",
                url=self._video_url(video),
                title=video.title,
                text=transcript or video.description,
                published=video.published,
                fetched=self.now(),
                language_hint=(track.language.split("-")[0] if caption and track else None) or self.source.language,
                author=video.author,
                extraction="transcript" if caption else "feed_summary",
                outlet=self.source.outlet or self.source.default_outlet,
                links=text_links(video.description),
                views=video.views,
                media=("video",),
                passage_max_words=self.passage_max_words,
                extra={
                    "video_id": video.video_id,
                    "channel_id": video.channel_id or self.source.channel_id,
                    "description": video.description if caption else "",
                    "caption_track": caption,
                    "transcript_note": note,
                    "thumbnail": video.thumbnail,
                },
            )
        except UnsupportedURL as exc:  # pragma: no cover - the base URL is validated config
            self.drop(exc.reason, self._video_url(video))
            return
        self.emit_document(video.video_id, doc)

    def closed(self, reason: str) -> None:
        """A blocked page makes the run fail (its error is the source's health), then ``source_done``."""
        if self.blocks:
            self.main_ok = False
        super().closed(reason)
