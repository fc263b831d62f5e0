"""Downloader middlewares: the address guard, and retries with exponential backoff that honour ``Retry-After``.

:class:`AddressGuardMiddleware` runs first (before robots.txt and offsite checks) on every
request, redirect hops and robots.txt fetches included, and refuses what
:class:`crawlers.addresses.AddressPolicy` refuses for the spider's source: no byte is sent to a
refused host, not even a robots.txt request. :class:`AddressGuardResolver` repeats the check when
Scrapy itself resolves a name to connect, so a DNS answer that changes between the two (DNS
rebinding) cannot smuggle an internal address in; it knows only the hosts some source configured.

Scrapy's own RetryMiddleware retries at once; this one waits ``backoff_base * 2**n`` (capped at
``backoff_max``, plus up to 25% jitter) between attempts, and on 429/503 waits what the server's
``Retry-After`` asks for (seconds or an HTTP date), also capped at ``backoff_max``. The wait is a
non-blocking timer on the reactor, so other downloads go on meanwhile.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Request, Response
from scrapy.resolver import CachingThreadedResolver
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.misc import load_object
from scrapy.utils.response import response_status_message
from twisted.internet.defer import Deferred
from twisted.internet.error import DNSLookupError
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread

from core.errors import FetchError
from crawlers.addresses import AddressPolicy, Verdict, is_public_address, resolve_host

__all__ = [
    "AddressGuardMiddleware",
    "AddressGuardResolver",
    "AddressRefused",
    "BackoffRetryMiddleware",
    "backoff_delay",
    "parse_retry_after",
]

logger = logging.getLogger(__name__)


def parse_retry_after(value: str | bytes | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date); None if absent/invalid."""
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, float((when - (now or datetime.now(UTC))).total_seconds()))


def backoff_delay(attempt: int, base: float, cap: float, retry_after: float | None = None) -> float:
    """Delay before retry number ``attempt`` (1-based), without jitter."""
    if retry_after is not None:
        return min(retry_after, cap)
    return min(base * float(2 ** max(attempt - 1, 0)), cap)


class BackoffRetryMiddleware:
    """Retry 5xx/429/408, timeouts and connection errors, waiting between attempts."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        if not settings.getbool("RETRY_ENABLED"):
            raise NotConfigured
        self.crawler = crawler
        self.max_retry_times = settings.getint("RETRY_TIMES")
        self.retry_http_codes = {int(x) for x in settings.getlist("RETRY_HTTP_CODES")}
        self.exceptions_to_retry = tuple(
            load_object(x) if isinstance(x, str) else x for x in settings.getlist("RETRY_EXCEPTIONS")
        )
        self.base = settings.getfloat("NARRAWATCH_BACKOFF_BASE", 1.0)
        self.cap = settings.getfloat("NARRAWATCH_BACKOFF_MAX", 120.0)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> BackoffRetryMiddleware:
        """Scrapy's constructor hook."""
        return cls(crawler)

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        """Retry a retryable status after the backoff (or ``Retry-After``) delay."""
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        retry_after = None
        if response.status in (429, 503):
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
        new = self._retry(request, response_status_message(response.status))
        if new is None:
            return response
        await self._wait(new, retry_after)
        return new

    async def process_exception(self, request: Request, exception: Exception) -> Request | None:
        """Retry a network failure (timeout, refused, reset, DNS) after the backoff delay."""
        if request.meta.get("dont_retry", False) or not isinstance(exception, self.exceptions_to_retry):
            return None
        new = self._retry(request, exception)
        if new is None:
            return None
        await self._wait(new, None)
        return new

    def _retry(self, request: Request, reason: str | Exception) -> Request | None:
        spider = self.crawler.spider
        assert spider is not None
        return get_retry_request(request, spider=spider, reason=reason, max_retry_times=self.max_retry_times)

    async def _wait(self, request: Request, retry_after: float | None) -> None:
        attempt = int(request.meta.get("retry_times", 1))
        delay = backoff_delay(attempt, self.base, self.cap, retry_after)
        delay += random.uniform(0, 0.25 * min(delay, self.base) if retry_after is None else 0.1 * self.base)
        logger.info("retry %d of %s in %.2fs", attempt, request.url, delay)
        if delay > 0:
            from twisted.internet import reactor  # the installed one; importing early would install a default

            d: Any = deferLater(reactor, delay, lambda: None)
            await maybe_deferred_to_future(d)


class AddressRefused(FetchError, IgnoreRequest):
    """A request the address policy refused; ``reason`` is the short reason reported with the drop."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(f"refused: {verdict.message}")
        self.reason = verdict.reason


_RESOLVED_CACHE = 4096


class AddressGuardMiddleware:
    """Refuse requests to internal addresses that are not the source's own host (see the module docstring).

    Spiders opt in with an ``address_policy`` attribute (:class:`crawlers.addresses.AddressPolicy`).
    Names are resolved in the reactor's thread pool, once per host per crawl.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self._resolved: dict[str, list[str]] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> AddressGuardMiddleware:
        """Scrapy's constructor hook."""
        return cls(crawler)

    async def process_request(self, request: Request) -> None:
        """Pass the request on, or raise :class:`AddressRefused` (the request's errback sees it)."""
        spider = self.crawler.spider
        policy = getattr(spider, "address_policy", None)
        if not isinstance(policy, AddressPolicy):
            return
        host = policy.needs_resolution(request.url)
        addresses = await self._resolve(host, request.url) if host else None
        verdict = policy.judge(request.url, addresses)
        if verdict.allowed:
            return
        hops = request.meta.get("redirect_urls") or []
        via = f" (redirected from {hops[0]})" if hops else ""
        logger.warning("%s: refused %s%s: %s", getattr(spider, "name", "?"), request.url, via, verdict.message)
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value(f"narrawatch/address_refused/{verdict.reason}")
        raise AddressRefused(verdict)

    async def _resolve(self, host: str, url: str) -> list[str]:
        if host in self._resolved:
            return self._resolved[host]
        try:
            port = urlsplit(url).port
        except ValueError:
            port = None
        try:
            resolved: Deferred[list[str]] = deferToThread(resolve_host, host, port)
            addresses: list[str] = await maybe_deferred_to_future(resolved)
        except OSError as exc:
            logger.info("cannot resolve %s: %s", host, exc)
            addresses = []
        if len(self._resolved) < _RESOLVED_CACHE:
            self._resolved[host] = addresses
        return addresses


class AddressGuardResolver(CachingThreadedResolver):
    """Scrapy's caching resolver, refusing internal addresses for hosts no source configured.

    ``NARRAWATCH_OWN_HOSTS`` (a setting: every configured host of the crawl's sources) may
    resolve anywhere; any other name that resolves to a non-public address fails as a DNS error.
    """

    own_hosts: frozenset[str] = frozenset()

    @classmethod
    def from_crawler(cls, crawler: Crawler, reactor: Any) -> AddressGuardResolver:
        """Scrapy's constructor hook (it passes the crawler process)."""
        resolver = super().from_crawler(crawler, reactor)
        assert isinstance(resolver, AddressGuardResolver)
        resolver.own_hosts = frozenset(h.lower() for h in crawler.settings.getlist("NARRAWATCH_OWN_HOSTS"))
        return resolver

    def getHostByName(self, name: str, timeout: Sequence[int] = ()) -> Deferred[str]:
        """Resolve like Scrapy, then refuse an internal address for a host no source configured."""
        d = super().getHostByName(name, timeout)
        d.addCallback(self._check, name)
        return d

    def _check(self, address: str, name: str) -> str:
        if name.lower().rstrip(".") in self.own_hosts or is_public_address(address):
            return address
        logger.warning("refused to connect to %s: it resolved to %s, not a public address", name, address)
        raise DNSLookupError(f"{name} resolved to {address}, not a public address (refused)")
