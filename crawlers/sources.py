"""Crawl implementations by source kind: ``kind`` -> Scrapy spider class.

Built-in kinds register here exactly as a plugin would::

    CRAWLERS.add("mykind", MySpider)   # MySpider subclasses SourceSpider

An unknown kind fails with :class:`core.errors.UnknownNameError` listing the known kinds.
"""

from __future__ import annotations

from core.registry import Registry
from crawlers.scrapy_project.spiders import FeedSpider, SiteSpider, SourceSpider, TelegramSpider

__all__ = ["CRAWLERS", "spider_for"]

CRAWLERS: Registry[type[SourceSpider]] = Registry("crawler for source kind")
CRAWLERS.add("feed", FeedSpider)
CRAWLERS.add("telegram", TelegramSpider)
CRAWLERS.add("site", SiteSpider)


def spider_for(kind: str) -> type[SourceSpider]:
    """The spider class crawling sources of this kind."""
    return CRAWLERS.get(kind)
