"""crawlers.feeds on real feeds (tests/data/feeds) and on broken variants built from them."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from core.errors import ParseError
from crawlers.feeds import FeedEntry, ParsedFeed, parse_date_lenient, parse_feed

CYRILLIC = re.compile(r"[А-Яа-яЁёІіЇїЄєҐґ]")
MOJIBAKE = re.compile(  # UTF-8 read as latin-1/cp1252 or as cp1251, and cp1251 read as cp1252
    r"[ÐÑ][\u0080-\u00bf]|[РС][ЂЃѓЉЊЌЋЏђљњќћџЎўЈЅѕј‚„…†‡€‰‹›‘’“”•–—™¤¦§©«¬®°±µ¶·№»]|[\u00c0-\u00ff]{4,}"
)

# file -> (entries, format, feed title, first entry title (prefix), first entry date UTC)
EXPECTED: dict[str, tuple[int, str, str, str, datetime | None]] = {
    "liga_net_2021-08-22.rss": (
        12,
        "rss20",
        "ЛІГА.Новости",
        'Футбол. "Арсенал" – "Челси"',
        datetime(2021, 8, 22, 10, 45, tzinfo=UTC),
    ),
    "mediacloud_real-cnn.rss": (
        69,
        "rss20",
        "CNN.com - RSS Channel - HP Hero",
        "Any investigation of a former president",
        datetime(2022, 7, 27, 3, 27, 9, tzinfo=UTC),
    ),
    # "Thu,28 Jul 2022 4:35:5 GMT+9": feedparser gives up, our lenient parser reads KST.
    "mediacloud_real-korean-times.rss": (
        195,
        "rss20",
        "Korea Times News",
        "France on course for driest July on record",
        datetime(2022, 7, 27, 19, 35, 5, tzinfo=UTC),
    ),
    "meduza_all_2026-09-24.rss": (
        4,
        "rss20",
        "Meduza.io",
        "Макрон: ситуация становится все более напряженной для Европы",
        datetime(2026, 9, 24, 20, 11, 25, tzinfo=UTC),
    ),
    "onliner_by_2021-10-26.rss": (
        30,
        "rss20",
        "Onliner",
        "В России сделали вакцину «Спутник», которую надо закапывать",
        datetime(2021, 10, 26, 19, 53, 19, tzinfo=UTC),
    ),
    "stub_liga_rss.xml": (
        20,
        "rss20",
        "ЛІГА.Новости",
        "Украина в день местных выборов перейдет на зимнее время",
        datetime(2020, 9, 29, 12, 5, 59, tzinfo=UTC),
    ),
    "stub_pravda_rss.xml": (
        20,
        "rss20",
        "Украинская правда",
        'День сердца: инфаркты и инсульты значительно "помолодели"',
        datetime(2020, 9, 29, 12, 0, tzinfo=UTC),
    ),
    "stub_ukranews_rss.xml": (
        2,
        "rss20",
        "Українські Новини",
        "Херсонский губернатор Гусев купил квартиру в кредит",
        datetime(2020, 9, 28, 15, 25, tzinfo=UTC),
    ),
    "stub_unian_rss.xml": (
        50,
        "rss20",
        "Інформаційне Агентство УНІАН",
        '"Зір вдалося зберегти": у Дніпрі лікарі рятують сапера',
        datetime(2020, 9, 28, 13, 35, 12, tzinfo=UTC),
    ),
    "tutby_news_2019-12-30.rss": (
        100,
        "rss20",
        "TUT.BY: Новости ТУТ",
        "Гороскоп наоборот. Давайте проверим",
        datetime(2019, 12, 30, 8, 38, tzinfo=UTC),
    ),
    "npr_technology.jsonfeed.json": (
        25,
        "json1",
        "Technology",
        "Keller Rinaudo: How can delivery drones",
        datetime(2021, 10, 29, 14, 26, tzinfo=UTC),
    ),
}
CYRILLIC_FEEDS = [name for name, exp in EXPECTED.items() if CYRILLIC.search(exp[2] + exp[3])]
FEED_URL = "https://feeds.example.org/path/feed.xml"


def _body(test_data: Path, name: str) -> bytes:
    return (test_data / "feeds" / name).read_bytes()


def test_every_real_feed_is_covered(test_data: Path) -> None:
    files = {p.name for p in (test_data / "feeds").iterdir() if p.suffix in (".rss", ".xml", ".json")}
    assert files == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_feed(test_data: Path, name: str) -> None:
    count, fmt, title, first_title, first_date = EXPECTED[name]
    feed = parse_feed(_body(test_data, name), FEED_URL)
    assert isinstance(feed, ParsedFeed)
    assert (len(feed.entries), feed.format, feed.title) == (count, fmt, title)
    first = feed.entries[0]
    assert first.title.startswith(first_title)
    assert first.published == first_date
    keys = [e.key for e in feed.entries]
    assert len(set(keys)) == len(keys), "entry keys must be unique within a feed"
    for entry in feed.entries:
        assert isinstance(entry, FeedEntry)
        assert entry.key and entry.title
        parts = urlsplit(entry.link)
        assert parts.scheme in ("http", "https") and parts.netloc, entry.link
        assert entry.published is None or entry.published.utcoffset() == UTC.utcoffset(None)
        assert not MOJIBAKE.search(entry.title), entry.title
        assert entry.title == entry.title.strip() and "\n" not in entry.title
    assert all(e.published is not None for e in feed.entries) or name == "mediacloud_real-cnn.rss"


def test_cnn_undated_entries_are_reported(test_data: Path) -> None:
    feed = parse_feed(_body(test_data, "mediacloud_real-cnn.rss"), FEED_URL, "application/rss+xml")
    undated = [e for e in feed.entries if e.published is None]
    assert len(undated) == 17  # live-news pages without <pubDate> in the real feed
    assert any("17 of 69 entries have no parseable date" in w for w in feed.warnings)


def test_feed_fields(test_data: Path) -> None:
    feed = parse_feed(_body(test_data, "stub_unian_rss.xml"), FEED_URL, "application/rss+xml; charset=utf-8")
    first = feed.entries[0]
    assert first.key == "1f3011bb42f36737c5ac0fd6d7cd3278"  # guid isPermaLink="false" kept as is
    assert first.link.startswith("https://www.unian.ua/war/")
    assert first.categories == ("Война",)
    assert feed.warnings == ()

    tut = parse_feed(_body(test_data, "tutby_news_2019-12-30.rss"), "https://news.tut.by/rss/all.rss")
    assert tut.link == "https://news.tut.by/"
    assert tut.entries[0].author == "GO.TUT.BY"
    assert "&utm_medium=rss" in tut.entries[0].key  # entity-escaped guid decoded

    meduza = parse_feed(_body(test_data, "meduza_all_2026-09-24.rss"), FEED_URL)
    assert CYRILLIC.search(meduza.entries[0].content_html)  # content:encoded


def test_relative_links_resolved_against_feed_url() -> None:
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Т</title><link>/</link>'
        "<item><title>Один</title><link>/news/1.html</link><pubDate>Tue, 26 Oct 2021 22:53:19 +0300</pubDate></item>"
        "<item><title>Два</title><link>news/2.html</link></item>"
        "<item><title>Без ссылки</title><description>нет ни guid, ни link</description></item>"
        "</channel></rss>"
    ).encode()
    feed = parse_feed(body, "https://site.example/rss/index.xml", "application/rss+xml")
    assert [e.link for e in feed.entries] == [
        "https://site.example/news/1.html",
        "https://site.example/rss/news/2.html",
    ]
    assert [e.key for e in feed.entries] == [e.link for e in feed.entries]
    assert feed.link == "https://site.example/"
    assert feed.entries[0].published == datetime(2021, 10, 26, 19, 53, 19, tzinfo=UTC)
    assert any("entry #2 has neither link nor id" in w for w in feed.warnings)


def test_atom_feed() -> None:
    body = (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        '<title>Атом</title><link href="https://a.example/"/><id>urn:feed</id><updated>2024-11-30T10:00:00Z</updated>'
        '<entry><id>urn:uuid:1</id><title type="html">&lt;b&gt;Жирный&lt;/b&gt; заголовок</title>'
        '<link rel="alternate" href="/p/1"/><updated>2024-11-30T12:00:00+03:00</updated>'
        '<author><name>Иван</name></author><category term="политика"/>'
        '<content type="html">&lt;p&gt;Текст&lt;/p&gt;</content><summary>Кратко</summary></entry>'
        "</feed>"
    ).encode()
    feed = parse_feed(body, "https://a.example/atom.xml", "application/atom+xml")
    assert feed.format == "atom10"
    (entry,) = feed.entries
    assert entry.key == "urn:uuid:1"
    assert entry.link == "https://a.example/p/1"
    assert entry.title == "Жирный заголовок"
    assert entry.published == datetime(2024, 11, 30, 9, 0, tzinfo=UTC)
    assert (entry.author, entry.categories) == ("Иван", ("политика",))
    assert "<p>Текст</p>" in entry.content_html and entry.summary_html == "Кратко"


def test_rss_10_rdf() -> None:
    body = (
        '<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        '<channel rdf:about="https://r.example/"><title>RDF</title><link>https://r.example/</link></channel>'
        '<item rdf:about="https://r.example/1"><title>Первый</title><link>https://r.example/1</link>'
        "<dc:date>2024-11-30T19:39:32+00:00</dc:date></item></rdf:RDF>"
    ).encode()
    feed = parse_feed(body, "https://r.example/rss", "application/rdf+xml")
    assert feed.format == "rss10"
    assert [(e.title, e.published) for e in feed.entries] == [
        ("Первый", datetime(2024, 11, 30, 19, 39, 32, tzinfo=UTC))
    ]


# --- charsets -----------------------------------------------------------------------------------


def _strip_xml_declaration(body: bytes) -> bytes:
    return re.sub(rb"^\s*<\?xml[^>]*\?>", b"", body)


@pytest.mark.parametrize("name", CYRILLIC_FEEDS)
@pytest.mark.parametrize("content_type", ["application/rss+xml; charset=utf-8", "text/xml", None])
def test_cp1251_body_labelled_utf8_is_recovered(test_data: Path, name: str, content_type: str | None) -> None:
    raw = _body(test_data, name)
    text = raw.decode("cp1251") if name == "stub_pravda_rss.xml" else raw.decode("utf-8")
    # No XML declaration: nothing in the body says cp1251, only the (wrong) header speaks.
    body = _strip_xml_declaration(text.encode("cp1251", errors="xmlcharrefreplace"))
    feed = parse_feed(body, FEED_URL, content_type)
    count, _fmt, title, first_title, _date = EXPECTED[name]
    assert (len(feed.entries), feed.title) == (count, title)
    assert feed.entries[0].title.startswith(first_title)
    assert any("re-read as cp1251" in w for w in feed.warnings), feed.warnings


@pytest.mark.parametrize("name", CYRILLIC_FEEDS)
def test_utf8_body_labelled_cp1251_is_recovered(test_data: Path, name: str) -> None:
    raw = _body(test_data, name)
    text = raw.decode("cp1251") if name == "stub_pravda_rss.xml" else raw.decode("utf-8")
    body = _strip_xml_declaration(text.encode("utf-8"))
    feed = parse_feed(body, FEED_URL, "application/rss+xml; charset=windows-1251")
    count, _fmt, title, first_title, _date = EXPECTED[name]
    assert (len(feed.entries), feed.title) == (count, title)
    assert feed.entries[0].title.startswith(first_title)
    assert all(not MOJIBAKE.search(e.title) for e in feed.entries)


def test_cp1251_declared_in_xml_but_header_says_utf8(test_data: Path) -> None:
    # The real pravda.com.ua stub declares windows-1251 in its XML declaration.
    feed = parse_feed(_body(test_data, "stub_pravda_rss.xml"), FEED_URL, "application/rss+xml; charset=utf-8")
    assert feed.title == "Украинская правда"
    assert len(feed.entries) == 20


def test_koi8r_body_without_any_label_is_recovered(test_data: Path) -> None:
    text = _body(test_data, "tutby_news_2019-12-30.rss").decode("utf-8")
    body = text.encode("koi8-r", errors="xmlcharrefreplace")
    feed = parse_feed(body, FEED_URL, "application/rss+xml")
    assert feed.title == "TUT.BY: Новости ТУТ"
    assert feed.entries[0].title.startswith("Гороскоп наоборот")


# --- not feeds / broken feeds ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", "application/rss+xml"),
        (b"  \n\t ", None),
        (
            "<!DOCTYPE html><html><head><title>Новости</title></head><body><h1>Главная</h1>"
            "<a href='/rss'>RSS</a></body></html>".encode(),
            "text/html; charset=utf-8",
        ),
        (b"\x00\x9f\xff\xfe garbage \x01\x02", "application/octet-stream"),
        (b"<?xml version='1.0'?><urlset><url><loc>https://x/</loc></url></urlset>", "application/xml"),
    ],
    ids=["empty", "whitespace", "html", "garbage", "sitemap"],
)
def test_not_a_feed_raises(body: bytes, content_type: str | None) -> None:
    with pytest.raises(ParseError, match=re.escape(FEED_URL)):
        parse_feed(body, FEED_URL, content_type)


def test_truncated_before_any_entry_raises_with_bozo_reason(test_data: Path) -> None:
    body = _body(test_data, "tutby_news_2019-12-30.rss")[:400]
    with pytest.raises(ParseError, match=r"not a feed \(SAXParseException: .*"):
        parse_feed(body, FEED_URL, "application/rss+xml")


def test_truncated_feed_keeps_complete_entries(test_data: Path) -> None:
    body = _body(test_data, "onliner_by_2021-10-26.rss")
    cut = body.index(b"</item>", len(body) // 2) + 200
    feed = parse_feed(body[:cut], FEED_URL, "application/rss+xml; charset=utf-8")
    assert 10 <= len(feed.entries) < 30
    assert feed.entries[0].title.startswith("В России сделали вакцину")
    assert any("flagged the feed" in w and "SAXParseException" in w for w in feed.warnings)


def test_malformed_xml_still_yields_entries(test_data: Path) -> None:
    body = _body(test_data, "stub_liga_rss.xml").replace(b"</title>", b"</titel>", 3)
    feed = parse_feed(body, FEED_URL, "application/rss+xml")
    # feedparser's loose parser loses what the broken tags swallowed, not the rest of the feed
    assert len(feed.entries) >= 18
    assert feed.warnings and "mismatched tag" in feed.warnings[0]
    assert all(e.title and e.link.startswith("https://") for e in feed.entries[3:])


def test_unescaped_ampersand_is_tolerated(test_data: Path) -> None:
    body = _body(test_data, "stub_ukranews_rss.xml").replace(b"</title>", b" & Co</title>", 2)
    feed = parse_feed(body, FEED_URL, "application/rss+xml")
    assert len(feed.entries) == 2
    assert feed.warnings


def test_empty_but_valid_feed_is_not_an_error() -> None:
    body = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Empty</title></channel></rss>'
    feed = parse_feed(body, FEED_URL, "application/rss+xml")
    assert (feed.title, feed.entries, feed.warnings) == ("Empty", (), ())


# --- JSON Feed ----------------------------------------------------------------------------------


def test_json_feed_npr(test_data: Path) -> None:
    body = _body(test_data, "npr_technology.jsonfeed.json")
    feed = parse_feed(body, "https://feeds.npr.org/1019/feed.json", "application/json")
    assert feed.format == "json1"
    assert feed.link.startswith("https://www.npr.org/sections/technology/")
    doc = json.loads(body)
    assert [e.key for e in feed.entries] == [str(i["id"]) for i in doc["items"]]
    assert [e.link for e in feed.entries] == [i["url"] for i in doc["items"]]
    first = feed.entries[0]
    assert first.author == "Manoush Zomorodi"
    assert first.content_html == doc["items"][0]["content_html"]
    assert all(e.published is not None and e.published.tzinfo is UTC for e in feed.entries)


def test_json_feed_11_detected_without_content_type() -> None:
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Лента",
        "home_page_url": "/",
        "authors": [{"name": "Редакция"}],
        "items": [
            {
                "id": 7,
                "url": "/a/7",
                "content_text": "Строка 1\nСтрока 2",
                "date_published": "2024-11-30T19:39:32+03:00",
            },
            {"id": "x", "external_url": "https://other.example/x", "tags": ["война", "война", "мир"]},
            {"content_text": "ни id, ни url"},
        ],
    }
    feed = parse_feed(json.dumps(doc, ensure_ascii=False).encode(), "https://j.example/feed.json")
    assert feed.format == "json11"
    assert feed.link == "https://j.example/"
    a, b = feed.entries
    assert (a.key, a.link, a.author) == ("7", "https://j.example/a/7", "Редакция")
    assert a.published == datetime(2024, 11, 30, 16, 39, 32, tzinfo=UTC)
    assert a.content_html == "Строка 1<br/>\nСтрока 2"
    assert (b.link, b.categories, b.published) == ("https://other.example/x", ("война", "мир"), None)
    assert any("item #2 has neither url nor id" in w for w in feed.warnings)


def test_rss_served_as_json_still_parsed(test_data: Path) -> None:
    feed = parse_feed(_body(test_data, "stub_ukranews_rss.xml"), FEED_URL, "application/json")
    assert len(feed.entries) == 2


def test_json_that_is_not_a_json_feed_raises() -> None:
    with pytest.raises(ParseError, match="not a JSON Feed"):
        parse_feed(b'{"version": "1", "items": []}', FEED_URL, "application/json")
    with pytest.raises(ParseError, match="JSONDecodeError"):
        parse_feed(b'{"version": "https://jsonfeed.org/version/1", "items": [', FEED_URL, "application/feed+json")


# --- dates --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Thu,28 Jul 2022 4:35:5 GMT+9", datetime(2022, 7, 27, 19, 35, 5, tzinfo=UTC)),
        ("Mon, 30 Dec 2019 11:38:00 +0300", datetime(2019, 12, 30, 8, 38, tzinfo=UTC)),
        ("Mon, 30 Dec 2019 11:38:00 UTC-05:30", datetime(2019, 12, 30, 17, 8, tzinfo=UTC)),
        ("2024-11-30T19:39:32Z", datetime(2024, 11, 30, 19, 39, 32, tzinfo=UTC)),
        ("2024-11-30 19:39:32", datetime(2024, 11, 30, 19, 39, 32, tzinfo=UTC)),
        ("вчера", None),
        ("", None),
    ],
)
def test_parse_date_lenient(text: str, expected: datetime | None) -> None:
    assert parse_date_lenient(text) == expected
