"""Source kinds: the built-ins (``feed``, ``telegram``, ``site``, ``youtube``, ``vk``, ``rutube``) and their spiders.

One registry, :data:`core.settings.SOURCE_KINDS`, holds each kind's config model and its crawler
(a :class:`~crawlers.scrapy_project.spiders.SourceSpider` subclass). Nothing registers on
import: :func:`register_builtins` adds the built-ins (the composition root calls it, and so does
the crawl subprocess), and a plugin registers its kind the same way::

    SOURCE_KINDS.add("mykind", SourceKind("mykind", MySource, lambda: MySpider))

An unknown kind fails with :class:`core.errors.UnknownNameError` listing the known kinds.
"""

from __future__ import annotations

from core.platform_settings import RutubeSource, VkSource, YouTubeSource
from core.registry import Registry
from core.settings import SOURCE_KINDS, FeedSource, SiteSource, SourceKind, TelegramSource

__all__ = ["register_builtins", "spider_for"]


# The spiders import Scrapy and Twisted; only a crawl (the subprocess) loads them, never a
# config load in the CLI or the server, hence the imports inside these loaders.
def _feed_spider() -> type:
    from crawlers.scrapy_project.spiders.feed import FeedSpider

    return FeedSpider


def _telegram_spider() -> type:
    from crawlers.scrapy_project.spiders.telegram import TelegramSpider

    return TelegramSpider


def _site_spider() -> type:
    from crawlers.scrapy_project.spiders.site import SiteSpider

    return SiteSpider


def _youtube_spider() -> type:
    from crawlers.scrapy_project.spiders.youtube import YouTubeSpider

    return YouTubeSpider


def _vk_spider() -> type:
    from crawlers.scrapy_project.spiders.vk import VkSpider

    return VkSpider


def _rutube_spider() -> type:
    from crawlers.scrapy_project.spiders.rutube import RutubeSpider

    return RutubeSpider


BUILTIN_KINDS = (
    SourceKind("feed", FeedSource, _feed_spider),
    SourceKind("telegram", TelegramSource, _telegram_spider),
    SourceKind("site", SiteSource, _site_spider),
    SourceKind("youtube", YouTubeSource, _youtube_spider),
    SourceKind("vk", VkSource, _vk_spider),
    SourceKind("rutube", RutubeSource, _rutube_spider),
)


def register_builtins(kinds: Registry[SourceKind] = SOURCE_KINDS) -> None:
    """Register the built-in source kinds (idempotent)."""
    for kind in BUILTIN_KINDS:
        kinds.add(kind.name, kind)


def spider_for(kind: str) -> type:
    """The spider class crawling sources of this kind."""
    return SOURCE_KINDS.get(kind).spider()
