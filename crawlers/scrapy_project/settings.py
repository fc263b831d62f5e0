"""Scrapy settings built from :class:`core.settings.CrawlSettings` (no settings.py module magic)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from core.settings import CrawlSettings

__all__ = ["build_settings"]

_MW = "crawlers.scrapy_project.middlewares"


def build_settings(
    crawl: CrawlSettings, *, log_level: str = "WARNING", own_hosts: Iterable[str] = ()
) -> dict[str, Any]:
    """A Scrapy settings dict for one crawl process.

    ``own_hosts``: every host the crawl's sources configured; only these may resolve to internal
    addresses (see :class:`crawlers.scrapy_project.middlewares.AddressGuardResolver`).
    """
    delay = crawl.download_delay.total_seconds()
    return {
        "BOT_NAME": "narrawatch",
        "USER_AGENT": crawl.user_agent,
        "ROBOTSTXT_OBEY": crawl.obey_robots,
        "CONCURRENT_REQUESTS": max(16, crawl.concurrency_per_domain * 4),
        "CONCURRENT_REQUESTS_PER_DOMAIN": crawl.concurrency_per_domain,
        "DOWNLOAD_DELAY": delay,
        "AUTOTHROTTLE_ENABLED": crawl.autothrottle,
        "AUTOTHROTTLE_START_DELAY": max(delay, 0.5),
        "AUTOTHROTTLE_MAX_DELAY": max(crawl.backoff_max.total_seconds(), delay),
        "AUTOTHROTTLE_TARGET_CONCURRENCY": float(crawl.concurrency_per_domain),
        "RETRY_ENABLED": True,
        "RETRY_TIMES": crawl.retry_times,
        "RETRY_HTTP_CODES": [500, 502, 503, 504, 522, 524, 408, 429],
        "NARRAWATCH_BACKOFF_BASE": crawl.backoff_base.total_seconds(),
        "NARRAWATCH_BACKOFF_MAX": crawl.backoff_max.total_seconds(),
        "NARRAWATCH_PASSAGE_MAX_WORDS": crawl.passage_max_words,
        "NARRAWATCH_REACH_REFRESH": crawl.reach_refresh.total_seconds(),
        "DOWNLOADER_MIDDLEWARES": {
            f"{_MW}.AddressGuardMiddleware": 40,  # before robots.txt (100): a refused host gets no request
            "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
            f"{_MW}.BackoffRetryMiddleware": 550,
            "crawlers.archive_scrapy.RawResponseMiddleware": 950,  # the response as it arrived (WARC)
        },
        "DOWNLOAD_TIMEOUT": crawl.timeout.total_seconds(),
        "DNS_TIMEOUT": min(crawl.timeout.total_seconds(), 60.0),
        "TWISTED_DNS_RESOLVER": f"{_MW}.AddressGuardResolver",
        "NARRAWATCH_OWN_HOSTS": sorted(set(own_hosts)),
        "DOWNLOAD_MAXSIZE": crawl.max_body_bytes,
        "DOWNLOAD_WARNSIZE": max(crawl.max_body_bytes // 2, 1),
        "REDIRECT_MAX_TIMES": crawl.max_redirects,
        "REDIRECT_ENABLED": crawl.max_redirects > 0,
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "LOG_LEVEL": log_level,
        "LOG_ENABLED": True,
        "LOGSTATS_INTERVAL": 0,
        "DEPTH_LIMIT": 0,
        "HTTPERROR_ALLOW_ALL": False,
    }
