"""The Scrapy project behind narrawatch's crawls: settings builder, spiders per source kind, middlewares.

It runs inside the crawl subprocess (:mod:`crawlers.runner`); spiders report what they find as
JSON-line events through an :class:`~crawlers.scrapy_project.events.EventWriter`.
"""

__all__: list[str] = []
