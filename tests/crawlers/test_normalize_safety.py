"""Normalisation refuses links that name no document and values no backend can store.

Before: ``javascript:``, ``data:``, ``vbscript:`` and ``mailto:`` links canonicalised to
``https://javascript/``, ``https://data/...``, ``https://mailto@...`` (every ``javascript:`` link
of every feed collapsed onto one document id), and a feed's ``pubDate`` of 1969 or ``views``
past 2^63 reached the index as they were (Elasticsearch rejects both for good).
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.documents import FUTURE_TOLERANCE, MAX_COUNTER, clamp_storable
from core.errors import ParseError, UnsupportedURL
from crawlers.feeds import parse_feed
from crawlers.normalize import canonical_url, make_document

FETCHED = datetime(2021, 8, 22, 11, tzinfo=UTC)

# Real hostile hrefs (OWASP XSS filter evasion cheat sheet forms) and other non-web schemes.
REFUSED = [
    "javascript:alert(1)",
    "JavaScript:alert(document.cookie)",
    "java\tscript:alert(1)",
    "  \x01javascript:alert(1)",
    "jav&#x09;ascript:alert(1)".replace("&#x09;", "\n"),
    "vbscript:msgbox(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "mailto:editor@liga.net",
    "tel:+380441234567",
    "ftp://ftp.liga.net/pub/x",
    "file:///etc/passwd",
    "about:blank",
    "https://",
    "http://?q=1",
]


@pytest.mark.parametrize("link", REFUSED)
def test_non_web_links_are_refused_with_a_reason(link: str) -> None:
    with pytest.raises(UnsupportedURL) as err:
        canonical_url(link)
    assert err.value.reason == "unsupported_url"
    assert isinstance(err.value, ParseError) and isinstance(err.value, ValueError)
    assert "http(s)" in str(err.value) or "no host" in str(err.value)


def test_web_links_keep_their_canonical_form() -> None:
    assert canonical_url("https://news.liga.net/a?utm_source=x&b=2&a=1#top") == "https://news.liga.net/a?a=1&b=2"
    assert canonical_url("news.liga.net/a") == "https://news.liga.net/a"
    assert canonical_url("localhost:8080/feed") == "https://localhost:8080/feed"
    assert canonical_url("//cdn.liga.net/x.jpg") == "https://cdn.liga.net/x.jpg"
    assert canonical_url("HTTP://News.Liga.NET:80/A") == "http://news.liga.net/A"
    assert canonical_url("https:news.liga.net/a") == "https://news.liga.net/a"
    assert canonical_url("http://[::1]:8080/x") == "http://[::1]:8080/x"
    assert canonical_url("") == ""


def test_make_document_refuses_a_javascript_link_instead_of_sharing_one_id() -> None:
    for link in ("javascript:alert(1)", "javascript:alert(2)"):
        with pytest.raises(UnsupportedURL):
            make_document(source_id="liga", kind="feed", url=link, title="t", text="x", published=None, fetched=FETCHED)
    with pytest.raises(UnsupportedURL):
        make_document(source_id="liga", kind="feed", url="", title="t", text="x", published=None, fetched=FETCHED)


def _liga_entry(test_data: Path, pub_date: str) -> tuple[str, str, datetime | None]:
    body = (test_data / "feeds" / "liga_net_2021-08-22.rss").read_text(encoding="utf-8")
    head, first_item = body.split("<item>", 1)  # the first entry's date, not the channel's
    first_item = re.sub(r"<pubDate>[^<]*</pubDate>", f"<pubDate>{pub_date}</pubDate>", first_item, count=1)
    body = f"{head}<item>{first_item}"
    entry = parse_feed(body.encode("utf-8"), "https://www.liga.net/news/all/rss.xml", None).entries[0]
    return entry.link, entry.title, entry.published


def test_a_feed_date_before_1970_becomes_the_fetch_time_and_is_kept_as_claimed(test_data: Path) -> None:
    link, title, published = _liga_entry(test_data, "Wed, 31 Dec 1969 23:59:59 +0000")
    assert published == datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC)
    doc = make_document(
        source_id="liga", kind="feed", url=link, title=title, text=title, published=published, fetched=FETCHED
    )
    assert doc.published == FETCHED
    assert doc.extra["clamped"] == {
        "published": {"reason": "published_before_1970", "claimed": "1969-12-31T23:59:59+00:00"}
    }


def test_counters_outside_a_signed_64_bit_long_are_dropped() -> None:
    def views(n: int) -> int | None:
        d = make_document(
            source_id="tg",
            kind="telegram",
            url="https://t.me/rian_ru/1",
            title="",
            text="x",
            published=None,
            fetched=FETCHED,
            views=n,
        )
        return d.views

    assert views(MAX_COUNTER) == MAX_COUNTER and views(0) == 0
    assert views(MAX_COUNTER + 1) is None and views(-1) is None


def test_future_dates_are_clamped_against_the_callers_clock(test_data: Path) -> None:
    link, title, _ = _liga_entry(test_data, "Tue, 01 Jan 2030 00:00:00 +0000")
    now = datetime(2021, 8, 22, 11, 30, tzinfo=UTC)
    in_2030 = datetime(2030, 1, 1, tzinfo=UTC)
    doc = make_document(
        source_id="liga", kind="feed", url=link, title=title, text=title, published=in_2030, fetched=FETCHED
    )
    assert doc.published == in_2030  # no clock in make_document: storable, left for the pipeline
    clamped = clamp_storable(doc, now)
    assert clamped.published == FETCHED
    assert clamped.extra["clamped"]["published"] == {"reason": "published_in_future", "claimed": in_2030.isoformat()}
    # Clock skew within the tolerance is kept; a year past date_nanos' end is clamped even without a clock.
    skewed = clamp_storable(replace(doc, published=now + FUTURE_TOLERANCE), now)
    assert skewed.published == now + FUTURE_TOLERANCE and "clamped" not in skewed.extra
    far = make_document(
        source_id="liga",
        kind="feed",
        url=link,
        title=title,
        text=title,
        published=datetime(2263, 1, 1, tzinfo=UTC),
        fetched=FETCHED,
    )
    assert far.published == FETCHED
    # A fetch time in the future (a crawler's wrong clock) becomes the caller's now.
    ahead = clamp_storable(replace(doc, fetched=now + timedelta(days=1)), now)
    assert ahead.fetched == now and ahead.extra["clamped"]["fetched"]["reason"] == "fetched_out_of_range"
