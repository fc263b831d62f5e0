"""Hostile text: one long token or an entity bomb must not hang a crawl (linear text handling).

Before the fix, ``\\S+@\\S+\\.\\w+`` in crawlers/langid.py backtracked quadratically over a token
without spaces (2.3 s at 50k characters; a 1 MB feed description never finished), and several
other patterns (crawlers/normalize.py, crawlers/extract.py, core/passages.py) did the same on
other shapes of input. The crawls here go through the real crawl subprocess; the hang-guard is
pytest-timeout, generous on purpose (no durations are asserted).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.passages import split_passages
from crawlers.extract import _declared_language, _strip_site_name, extract_article
from crawlers.langid import detect_language
from crawlers.normalize import fingerprint, make_document
from crawlers.scrapy_project.text import fragment_to_text
from tests.support.server import (
    LoopbackServer,
    crawl_events,
    events_of,
    read_page,
    rewrite_feed_links,
    write_crawl_config,
)

FEED = "meduza_all_2026-09-24.rss"
RSS = "application/rss+xml; charset=utf-8"
TOKEN = "Z" * 2_000_000
# Five nested internal entities, 16-fold each: 16**5 = 1,048,576 characters from one "&e;".
ENTITY_DTD = (
    '<!DOCTYPE rss [<!ENTITY a "lololololololol!">'
    + "".join(f'<!ENTITY {b} "{("&" + a + ";") * 16}">' for a, b in zip("abcd", "bcde", strict=True))
    + "]>"
)


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as s:
        yield s


def _feed(test_data: Path, first_description: str, *, dtd: str = "") -> str:
    """Meduza's real feed, descriptions only (content:encoded removed), the first item's replaced,
    and a DTD after the XML declaration."""
    body = re.sub(
        r"<content:encoded>.*?</content:encoded>", "", (test_data / "site" / FEED).read_text("utf-8"), flags=re.S
    )
    start = body.index("<description>", body.index("<item>")) + len("<description>")
    end = body.index("</description>", start)
    body = body[:start] + first_description + body[end:]
    if dtd:
        declaration_end = body.index("?>") + 2
        body = body[:declaration_end] + dtd + body[declaration_end:]
    return body


@pytest.mark.parametrize(
    "text",
    [
        TOKEN,
        "a." * 1_000_000,  # every dot a word boundary: normalize's bare-host pattern
        "ab." * 700_000,
        "!" * 2_000_000,  # a run of sentence ends: core.passages
        "<" * 2_000_000,  # unclosed tags: fragment fallback
        " " * 2_000_000,
        "x@" * 1_000_000,  # e-mail-like: langid
    ],
    ids=["token", "dots", "ab-dots", "bangs", "lt", "spaces", "ats"],
)
@pytest.mark.timeout(120)
def test_text_helpers_are_linear_on_two_megabytes(text: str) -> None:
    prose = "Президент Франции Эммануэль Макрон в интервью телеканалу заявил о ситуации в Европе. "
    body = prose * 40 + text + " " + prose * 40  # > passage_max_words, so sentences are split too
    assert detect_language(body) == "ru"
    assert len(fingerprint(body)) == 64
    assert split_passages(body)
    assert fragment_to_text(body)
    doc = make_document(
        source_id="s", kind="feed", url="https://example.org/a", title=text[:300_000], text=body, published=None,
        fetched=__import__("datetime").datetime(2026, 1, 1),
    )  # fmt: skip
    assert doc.language == "ru" and doc.passages
    assert _strip_site_name("Заголовок" + text[:500_000] + " | Example", "Example", "https://example.org/") != ""
    assert _declared_language("<html " * 300_000 + '<html lang="uk">') == "uk"
    assert _declared_language("<meta " * 300_000 + '<meta property="og:locale" content="kk_KZ">') == "kk"


@pytest.mark.timeout(180)
def test_feed_with_a_two_megabyte_token_crawls_to_completion(
    server: LoopbackServer, test_data: Path, tmp_path: Path
) -> None:
    # Source "summary": the token in an entry's description, no article pages.
    server.add(
        "/summary",
        _feed(test_data, f"<![CDATA[<p>Макрон заявил, что ситуация напряжённая.</p><p>{TOKEN}</p>]]>"),
        content_type=RSS,
    )
    # Source "pages": the token inside an article page the feed links to.
    page = read_page(test_data / "site" / "pages" / "football.ua.podolski.html.gz").decode("utf-8")
    hostile_page = page.replace("</p>", f" {TOKEN}</p>", 1)
    feed, paths = rewrite_feed_links((test_data / "site" / FEED).read_bytes(), server.base, lambda i, _: f"/news/{i}")
    server.add("/pages", feed, content_type=RSS)
    server.add(paths[0], hostile_page)
    for path in paths[1:]:
        server.add(path, page)
    cfg = write_crawl_config(
        tmp_path / "cfg",
        [
            {"id": "summary", "kind": "feed", "url": server.url("/summary"), "fetch_articles": False},
            {"id": "pages", "kind": "feed", "url": server.url("/pages")},
        ],
        max_body_bytes=8 * 1024 * 1024,
    )

    events = crawl_events(cfg, ["summary", "pages"], timeout=150)

    assert {e["source"]: e["ok"] for e in events_of(events, "source_done")} == {"summary": True, "pages": True}
    summary_docs = [e["document"] for e in events_of(events, "document", "summary")]
    assert len(summary_docs) == 4
    hostile = next(d for d in summary_docs if TOKEN[:1000] in d["text"])
    assert "Макрон заявил" in hostile["text"] and hostile["language"] == "ru"
    page_docs = [e["document"] for e in events_of(events, "document", "pages")]
    assert len(page_docs) == 4 and all(server.hits(p) >= 1 for p in paths)  # a busy reactor may time one out once
    assert not events_of(events, "error")


@pytest.mark.timeout(180)
def test_feed_with_an_internal_entity_bomb_crawls_to_completion(
    server: LoopbackServer, test_data: Path, tmp_path: Path
) -> None:
    assert len(ENTITY_DTD) < 300
    server.add("/rss", _feed(test_data, "&e;", dtd=ENTITY_DTD), content_type=RSS)
    cfg = write_crawl_config(
        tmp_path / "cfg", [{"id": "bomb", "kind": "feed", "url": server.url("/rss"), "fetch_articles": False}]
    )

    events = crawl_events(cfg, ["bomb"], timeout=150)

    done = events_of(events, "source_done", "bomb")
    assert done and done[0]["ok"] is True
    docs = [e["document"] for e in events_of(events, "document", "bomb")]
    assert len(docs) == 4  # the three ordinary entries and the bombed one (expanded or not)
    assert any("Макрон" in d["title"] for d in docs)
    longest = max(len(d["text"]) for d in docs)
    assert longest >= 1_000_000 or events_of(events, "warning", "bomb")  # expanded, or a warning says why not


@pytest.mark.timeout(60)
def test_extraction_of_a_page_with_a_two_megabyte_token(test_data: Path) -> None:
    page = read_page(test_data / "site" / "pages" / "Pravda_2026_01_08.html.gz").decode("utf-8")
    extracted = extract_article(
        page.replace("</p>", f" {TOKEN}</p>", 1), "https://www.pravda.com.ua/rus/news/2026/01/08/1/"
    )
    assert "157 миллионов гривен" in extracted.text


@pytest.mark.timeout(60)
def test_meta_publication_time_is_found_behind_unclosed_meta_soup(test_data: Path) -> None:
    """The ``<meta>`` scan is linear, and reads attributes by name (it once keyed them by the whole match)."""
    page = read_page(test_data / "site" / "pages" / "football.ua.podolski.html.gz").decode("utf-8")
    meta = '<meta property="article:published_time" content="2016-08-15T10:30:00+03:00">'
    hostile = page.replace("<head>", "<head>" + "<meta " * 300_000 + ">" + meta, 1)
    extracted = extract_article(hostile, "https://football.ua/germany/news/1.html")
    assert extracted.published is not None
    assert extracted.published.isoformat() == "2016-08-15T07:30:00+00:00"


@pytest.mark.timeout(120)
def test_feed_titles_and_telegram_text_are_linear(test_data: Path) -> None:
    """A feed title that is a run of ``<`` and a Telegram post with a run of spaces and no newline.

    Before the fix, ``<[^>]+>`` (feed titles) and ``[ \\t\\r\\f]*\\n\\s*`` (Telegram text) retried
    from every position of such a run: quadratic, so 400k characters never finished."""
    from crawlers.feeds import parse_feed
    from crawlers.telegram import parse_channel_page

    rss = (test_data / "feeds" / "liga_net_2021-08-22.rss").read_text("utf-8")
    start = rss.index("<title>", rss.index("<item>")) + len("<title>")
    end = rss.index("</title>", start)
    hostile = rss[:start] + "<![CDATA[<b>Арсенал</b> " + "<" * 400_000 + "]]>" + rss[end:]
    parsed = parse_feed(hostile.encode("utf-8"), "http://127.0.0.1/feed", "application/rss+xml; charset=utf-8")
    assert parsed.entries[0].title.startswith("Арсенал <<<")
    assert len(parsed.entries) == rss.count("<item>")

    html = (test_data / "telegram" / "cases" / "parse_forwarded_text_message.html").read_text("utf-8")
    marker = 'js-message_text" dir="auto">'
    cut = html.index(marker) + len(marker)
    page = parse_channel_page(html[:cut] + "Начало" + " " * 400_000 + "конец" + html[cut:], "tchantest")
    assert any(p.text.startswith("Начало ") and p.text.rstrip(";)").endswith(" конец") for p in page.posts)
