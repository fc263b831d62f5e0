"""One spider class per source kind; see :mod:`crawlers.sources` for the registry."""

from crawlers.scrapy_project.spiders.base import SourceSpider
from crawlers.scrapy_project.spiders.feed import FeedSpider
from crawlers.scrapy_project.spiders.rutube import RutubeSpider
from crawlers.scrapy_project.spiders.site import SiteSpider
from crawlers.scrapy_project.spiders.telegram import TelegramSpider
from crawlers.scrapy_project.spiders.vk import VkSpider
from crawlers.scrapy_project.spiders.youtube import YouTubeSpider

__all__ = ["FeedSpider", "RutubeSpider", "SiteSpider", "SourceSpider", "TelegramSpider", "VkSpider", "YouTubeSpider"]
