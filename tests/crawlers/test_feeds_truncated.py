"""Truncated feed bodies (real saved feeds from tests/data/feeds, cut the way a dropped transfer cuts them)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.errors import ParseError
from crawlers.feeds import parse_feed

FEED_URL = "https://www.onliner.by/feed"
RSS = "application/rss+xml; charset=utf-8"


def _onliner(test_data: Path) -> bytes:
    return (test_data / "feeds" / "onliner_by_2021-10-26.rss").read_bytes()


def test_cut_inside_a_multibyte_character_is_still_read_as_utf8(test_data: Path) -> None:
    body = _onliner(test_data)
    cut = body.index(b"</item>", len(body) // 2) + 200
    while body[cut] < 0x80:  # move the cut into a Cyrillic letter (2 bytes in UTF-8)
        cut += 1
    feed = parse_feed(body[: cut + 1], FEED_URL, RSS)
    assert feed.entries[0].title.startswith("В России сделали вакцину «Спутник»")
    assert all(re.search("[А-Яа-я]", e.title) for e in feed.entries)


def test_the_entry_the_cut_falls_in_is_left_out(test_data: Path) -> None:
    body = _onliner(test_data)
    tenth = 0
    for _ in range(10):
        tenth = body.index(b"</item>", tenth + 1)
    inside = body.index(b"<description>", tenth) + 40  # the 11th entry has its link, its text is cut
    feed = parse_feed(body[:inside], FEED_URL, RSS)
    assert len(feed.entries) == 10
    assert any("entry #10 is cut off by the end of the body; skipped" in w for w in feed.warnings)
    # Cut exactly between two entries: every entry is complete and kept.
    between = parse_feed(body[: tenth + len(b"</item>")], FEED_URL, RSS)
    assert len(between.entries) == 10 and not any("cut off" in w for w in between.warnings)


def test_cut_inside_the_first_entry_is_a_broken_feed(test_data: Path) -> None:
    body = _onliner(test_data)
    cut = body.index(b"<item>") + 300
    with pytest.raises(ParseError, match=r"broken feed: 1 entries, none complete \(SAXParseException"):
        parse_feed(body[:cut], FEED_URL, RSS)
