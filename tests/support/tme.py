"""Test-side name of narrawatch.demo.tme_pages (the page builder lives in the package for the demo)."""

from narrawatch.demo.tme_pages import build_channel_page, format_views, urls_in

__all__ = ["build_channel_page", "format_views", "urls_in"]
