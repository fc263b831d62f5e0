"""One spider class per source kind; see :mod:`crawlers.sources` for the registry."""

from crawlers.scrapy_project.spiders.base import SourceSpider
from crawlers.scrapy_project.spiders.feed import FeedSpider
from crawlers.scrapy_project.spiders.site import SiteSpider
from crawlers.scrapy_project.spiders.telegram import TelegramSpider

__all__ = ["FeedSpider", "SiteSpider", "SourceSpider", "TelegramSpider"]
