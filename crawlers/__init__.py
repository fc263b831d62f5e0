"""Collecting content: fetch (Scrapy), parse feeds and Telegram previews, extract pages, normalise."""
