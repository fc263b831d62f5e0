"""RuTube sources: each configured video's metadata from ``<base_url>/api/play/options/<id>/``, once.

A video already seen is not requested again. A video that is not found (404), belongs to
another author than ``author_id``, or answers for another video id is dropped with a warning;
network and server failures are source errors. The API gives no publication date, so
``published`` is the fetch time and ``extra["published_known"]`` is false.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import scrapy
from scrapy.http import Response
from twisted.python.failure import Failure

from core.errors import ParseError, UnsupportedURL
from core.platform_settings import RutubeSource
from crawlers.normalize import make_document
from crawlers.platform_text import text_links
from crawlers.rutube import RutubeVideo, parse_play_options
from crawlers.scrapy_project.spiders.base import SourceSpider

__all__ = ["RutubeSpider"]


class RutubeSpider(SourceSpider):
    """Crawls one ``kind: rutube`` source (see the module docstring)."""

    kind = "rutube"
    source: RutubeSource

    @property
    def base(self) -> str:
        """The configured base URL without a trailing slash."""
        return self.source.base_url.rstrip("/")

    async def start(self) -> AsyncIterator[Any]:
        """One play-options request per unseen video."""
        self.main_ok = True  # nothing to fetch is a successful run; failures below clear it
        for video_id in self.source.videos:
            if video_id in self.seen:
                self.drop("seen", self._video_url(video_id), emit=False)
                continue
            yield scrapy.Request(
                f"{self.base}/api/play/options/{video_id}/",
                callback=self.parse_options,
                errback=self.options_failed,
                cb_kwargs={"video_id": video_id},
                dont_filter=True,
                meta={"handle_httpstatus_list": [404]},
            )

    def _video_url(self, video_id: str) -> str:
        return f"{self.base}/video/{video_id}/"

    def options_failed(self, failure: Failure) -> None:
        """A video's request failed after retries: a network/server failure fails the run."""
        self.report_failure(failure)
        if self.counts["errors"]:
            self.main_ok = False

    def parse_options(self, response: Response, video_id: str) -> None:
        """Emit the video's metadata, or drop it with the reason."""
        self.emit_fetched(response)
        if response.status == 404:
            self.warn("not_found", f"video {video_id} not found (HTTP 404)", response.url)
            self.drop("http_404", response.url)
            return
        try:
            video = parse_play_options(response.body)
        except ParseError as exc:
            self.error(str(exc), response.url, "parse_error")
            self.main_ok = False
            return
        if video.video_id != video_id:
            self.warn("foreign_video", f"answer for video {video.video_id!r}, not {video_id}", response.url)
            self.drop("foreign_video", response.url)
            return
        if self.source.author_id is not None and video.author_id != self.source.author_id:
            self.warn(
                "foreign_author",
                f"video {video_id} is by author {video.author_id}, not {self.source.author_id}",
                response.url,
            )
            self.drop("foreign_author", response.url)
            return
        self._emit(video)

    def _emit(self, video: RutubeVideo) -> None:
        outlet = self.source.outlet or (
            f"rutube.ru/video/person/{video.author_id}" if video.author_id else self.source.default_outlet
        )
        try:
            doc = make_document(
                source_id=self.source_id,
                kind="rutube",
                url=self._video_url(video.video_id),
                title=video.title,
                text=video.description,
                published=None,
                fetched=self.now(),
                language_hint=self.source.language,
                author=video.author_name,
                extraction="api",
                outlet=outlet,
                links=text_links(video.description),
                media=("video",),
                passage_max_words=self.passage_max_words,
                extra={
                    "video_id": video.video_id,
                    "author_id": video.author_id,
                    "duration_seconds": video.duration_seconds,
                    "category": video.category,
                    "tags": list(video.tags),
                    "thumbnail": video.thumbnail,
                    "is_adult": video.is_adult,
                    "available": video.available,
                    "unavailable_reason": video.unavailable_reason,
                    "published_known": False,
                },
            )
        except UnsupportedURL as exc:  # pragma: no cover - the base URL is validated config
            self.drop(exc.reason, self._video_url(video.video_id))
            return
        self.emit_document(video.video_id, doc)
