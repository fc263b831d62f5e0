"""Site sources: (news) sitemaps when there are any, else link-following from the start URLs.

Sitemaps come from the source's ``sitemaps``, else from robots.txt ``Sitemap:`` lines, else the
``/sitemap.xml`` of each start URL's host (a probe: its failure is not an error). URLs from
sitemaps are filtered by allow/deny and host, newest ``lastmod`` first, up to ``max_pages``.
If no sitemap gives a URL, pages are found by following links (same host, allow/deny) from the
start URLs down to ``max_depth``. Pages already in ``seen`` (canonical URLs) are not requested.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

import scrapy
from scrapy.http import Response, TextResponse
from scrapy.linkextractors import LinkExtractor
from scrapy.utils.gz import gunzip
from scrapy.utils.sitemap import Sitemap, sitemap_urls_from_robots
from twisted.python.failure import Failure

from core.errors import ExtractionError, UnsupportedURL
from core.settings import SiteSource
from crawlers.extract import extract_article
from crawlers.normalize import canonical_url, make_document
from crawlers.scrapy_project.spiders.base import SourceSpider
from crawlers.scrapy_project.text import decode_body

__all__ = ["SiteSpider"]

logger = logging.getLogger(__name__)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class SiteSpider(SourceSpider):
    """Crawls one ``kind: site`` source."""

    kind = "site"
    source: SiteSource

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hosts = {urlsplit(u).netloc.lower() for u in self.source.start_urls}
        self.start_canon = {canonical_url(u) for u in self.source.start_urls}
        self._allow = [re.compile(p) for p in self.source.allow]
        self._deny = [re.compile(p) for p in self.source.deny]
        self.requested: set[str] = set()
        self.page_budget = self.source.max_pages
        self.pending_sitemaps = 0
        self.sitemap_urls: dict[str, str] = {}
        """canonical URL -> lastmod (may be empty), in discovery order."""
        self.sitemaps_requested: set[str] = set()
        self.following = False
        self.maxsize = 0

    # --- filters ----------------------------------------------------------------------------

    def allowed(self, url: str) -> bool:
        """Same host as a start URL, matches an allow pattern (if any) and no deny pattern."""
        if urlsplit(url).netloc.lower() not in self.hosts:
            return False
        if self._allow and not any(p.search(url) for p in self._allow):
            return False
        return not any(p.search(url) for p in self._deny)

    # --- entry points -------------------------------------------------------------------------

    async def start(self) -> AsyncIterator[Any]:
        """Sitemaps (given, from robots.txt, or /sitemap.xml), or the start URLs directly."""
        self.maxsize = self.crawler.settings.getint("DOWNLOAD_MAXSIZE")
        if not self.source.use_sitemaps:
            for request in self._start_pages():
                yield request
            return
        if self.source.sitemaps:
            for url in self.source.sitemaps:
                sitemap = self._sitemap_request(url, probe=False)
                if sitemap is not None:
                    yield sitemap
            return
        origins = list(dict.fromkeys(_origin(u) for u in self.source.start_urls))
        self.pending_sitemaps += len(origins)
        for origin in origins:
            yield scrapy.Request(
                origin + "/robots.txt",
                callback=self.parse_robots,
                errback=self.robots_failed,
                cb_kwargs={"origin": origin},
                dont_filter=True,
                meta={"dont_retry": True, "handle_httpstatus_all": True},
            )

    def parse_robots(self, response: Response, origin: str) -> Iterator[scrapy.Request]:
        """Sitemaps named in robots.txt, else the origin's /sitemap.xml."""
        self.pending_sitemaps -= 1
        urls: list[str] = []
        if response.status == 200 and isinstance(response, TextResponse):
            urls = list(sitemap_urls_from_robots(response.text, base_url=response.url))
        if not urls:
            urls = [origin + "/sitemap.xml"]
        for url in urls:
            request = self._sitemap_request(url, probe=True)
            if request is not None:
                yield request
        yield from self._maybe_finish_sitemaps()

    def robots_failed(self, failure: Failure) -> Iterator[scrapy.Request]:
        """No robots.txt: probe the origin's /sitemap.xml."""
        self.pending_sitemaps -= 1
        request = getattr(failure, "request", None)
        origin = request.cb_kwargs["origin"] if request is not None else ""
        sitemap = self._sitemap_request(origin + "/sitemap.xml", probe=True) if origin else None
        if sitemap is not None:
            yield sitemap
        yield from self._maybe_finish_sitemaps()

    def _sitemap_request(self, url: str, *, probe: bool) -> scrapy.Request | None:
        if url in self.sitemaps_requested:
            return None
        self.sitemaps_requested.add(url)
        self.pending_sitemaps += 1
        return scrapy.Request(
            url,
            callback=self.parse_sitemap,
            errback=self.sitemap_failed,
            cb_kwargs={"probe": probe},
            dont_filter=True,
        )

    # --- sitemaps -----------------------------------------------------------------------------

    def _sitemap_body(self, response: Response) -> bytes | None:
        body = response.body
        if body[:2] == b"\x1f\x8b":
            try:
                body = gunzip(body, max_size=self.maxsize)
            except (OSError, ValueError):
                return None
        head = body[:2000].lstrip()
        if b"<urlset" in head or b"<sitemapindex" in head or head.startswith(b"<?xml"):
            return body
        return None

    def parse_sitemap(self, response: Response, probe: bool) -> Iterator[scrapy.Request]:
        """Collect page URLs (and nested sitemaps) from a sitemap or sitemap index."""
        self.pending_sitemaps -= 1
        self.emit_fetched(response)
        body = self._sitemap_body(response)
        sitemap = None
        if body is not None:
            try:
                sitemap = Sitemap(body)
            except Exception as exc:  # lxml raises several types on garbage
                logger.info("%s: bad sitemap %s: %s", self.source_id, response.url, exc)
        if sitemap is None:
            if probe:
                self.drop("parse_error", response.url, emit=False)
            else:
                self.error(f"not a sitemap: {response.url}", response.url, "parse_error")
        elif sitemap.type == "sitemapindex":
            self.main_ok = True
            for entry in sitemap:
                loc = entry.get("loc", "")
                if loc:
                    request = self._sitemap_request(urljoin(response.url, loc), probe=False)
                    if request is not None:
                        yield request
        else:
            self.main_ok = True
            for entry in sitemap:
                loc = entry.get("loc", "")
                if not loc:
                    continue
                url = urljoin(response.url, loc)
                if not self.allowed(url):
                    self.drop("not_allowed", url, emit=False)
                    continue
                self.sitemap_urls.setdefault(url, _lastmod(entry))
        yield from self._maybe_finish_sitemaps()

    def sitemap_failed(self, failure: Failure) -> Iterator[scrapy.Request]:
        """A sitemap failed: an error unless it was only a guess."""
        self.pending_sitemaps -= 1
        request = getattr(failure, "request", None)
        probe = request.cb_kwargs.get("probe", False) if request is not None else False
        if probe:
            self.drop("no_sitemap", request.url if request is not None else "", emit=False)
        else:
            self.report_failure(failure)
        yield from self._maybe_finish_sitemaps()

    def _maybe_finish_sitemaps(self) -> Iterator[scrapy.Request]:
        if self.pending_sitemaps > 0 or self.following:
            return
        self.following = True
        if not self.sitemap_urls:
            logger.info("%s: no URLs from sitemaps; following links from start URLs", self.source_id)
            yield from self._start_pages()
            return
        ordered = sorted(self.sitemap_urls.items(), key=lambda kv: kv[1], reverse=True)
        for url, _ in ordered:
            request = self._page_request(url, depth=self.source.max_depth, extract=True)
            if request is not None:
                yield request

    # --- pages --------------------------------------------------------------------------------

    def _start_pages(self) -> Iterator[scrapy.Request]:
        self.following = True
        for url in self.source.start_urls:
            self.requested.add(canonical_url(url))
            yield scrapy.Request(
                url,
                callback=self.parse_page,
                errback=self.start_failed,
                cb_kwargs={"depth": 0, "extract": False},
                dont_filter=True,
            )

    def start_failed(self, failure: Failure) -> None:
        """A start URL failed (the source fails only if every entry point did)."""
        self.report_failure(failure, main=True)

    def page_failed(self, failure: Failure) -> None:
        """A page failed after retries."""
        self.report_failure(failure)

    def _page_request(self, url: str, *, depth: int, extract: bool) -> scrapy.Request | None:
        try:
            canon = canonical_url(url)
        except UnsupportedURL as exc:  # ftp:, file: ... links and sitemap entries
            self.drop(exc.reason, url, emit=False)
            return None
        if canon in self.requested:
            return None
        if canon in self.seen:
            self.requested.add(canon)
            self.drop("seen", url, emit=False)
            return None
        if self.page_budget <= 0:
            self.drop("max_pages", url, emit=False)
            return None
        self.page_budget -= 1
        self.requested.add(canon)
        return scrapy.Request(
            url,
            callback=self.parse_page,
            errback=self.page_failed,
            cb_kwargs={"depth": depth, "extract": extract},
            dont_filter=True,
        )

    def parse_page(self, response: Response, depth: int, extract: bool) -> Iterator[scrapy.Request]:
        """Extract an article page; follow links while above ``max_depth``."""
        self.emit_fetched(response)
        if depth == 0:
            self.main_ok = True
        if not isinstance(response, TextResponse):
            self.drop("not_html", response.url)
            return
        canon = canonical_url(response.url)
        if extract and canon not in self.start_canon and self.allowed(response.url):
            self._extract(response, canon)
        if depth < self.source.max_depth:
            yield from self._follow(response, depth)

    def _follow(self, response: TextResponse, depth: int) -> Iterable[scrapy.Request]:
        extractor = LinkExtractor(allow=self.source.allow, deny=self.source.deny)
        for link in extractor.extract_links(response):
            if not self.allowed(link.url):
                continue
            request = self._page_request(link.url, depth=depth + 1, extract=True)
            if request is not None:
                yield request

    def _extract(self, response: TextResponse, canon: str) -> None:
        try:
            extracted = extract_article(decode_body(response), response.url)
        except ExtractionError as exc:
            logger.info("%s: %s", self.source_id, exc)
            self.drop("no_text", response.url)
            return
        doc = make_document(
            source_id=self.source_id,
            kind="site",
            url=response.url,
            title=extracted.title,
            text=extracted.text,
            published=extracted.published,
            fetched=self.now(),
            language_hint=extracted.language_hint or self.source.language,
            author=extracted.author,
            extraction="page",
            outlet=self.source.outlet or "",
            links=extracted.links,
            passage_max_words=self.passage_max_words,
            extra={"sitename": extracted.sitename} if extracted.sitename else None,
        )
        self.emit_document(canon, doc, response)


def _lastmod(entry: dict[str, Any]) -> str:
    value = entry.get("lastmod") or ""
    news = entry.get("news")
    if not value and isinstance(news, dict):
        value = news.get("publication_date") or ""
    return str(value)
