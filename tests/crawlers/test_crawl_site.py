"""Site crawls (sitemaps, link-following) through the real crawl subprocess against loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crawlers.normalize import canonical_url
from tests.support.server import (
    LoopbackServer,
    Reply,
    crawl_events,
    events_of,
    read_page,
    write_crawl_config,
)

FOOTBALL_TITLE = "Подольски завершил карьеру в сборной"


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as s:
        yield s


def _page(test_data: Path, name: str) -> bytes:
    return read_page(test_data / "site" / "pages" / name)


def _news_sitemap(base: str, paths: list[str]) -> str:
    urls = "".join(
        f"<url><loc>{base}{p}</loc><lastmod>2026-01-0{i + 1}</lastmod>"
        f"<news:news><news:publication><news:name>Test</news:name><news:language>ru</news:language>"
        f"</news:publication><news:publication_date>2026-01-0{i + 1}</news:publication_date>"
        f"<news:title>t</news:title></news:news></url>"
        for i, p in enumerate(paths)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">' + urls + "</urlset>"
    )


def test_sitemap_from_robots(server: LoopbackServer, test_data: Path, tmp_path: Path) -> None:
    server.add(
        "/robots.txt",
        f"User-agent: *\nDisallow: /news/private\nSitemap: {server.url('/sitemap_index.xml')}\n",
        content_type="text/plain",
    )
    server.add(
        "/sitemap_index.xml",
        '<?xml version="1.0" encoding="UTF-8"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<sitemap><loc>{server.url('/news-sitemap.xml')}</loc></sitemap></sitemapindex>",
        content_type="application/xml",
    )
    listed = ["/news/a", "/news/b", "/news/private", "/about", "/news/huge", "/news/loop", "/news/seen", "/news/denied"]
    server.add("/news-sitemap.xml", _news_sitemap(server.base, listed), content_type="application/xml")
    server.add("/news/a", _page(test_data, "football.ua.podolski.html.gz"))
    server.add("/news/b", _page(test_data, "Pravda_2026_01_08.html.gz"))
    for path in ("/news/private", "/about", "/news/seen", "/news/denied"):
        server.add(path, _page(test_data, "BBC_2024_08_01.html.gz"))
    server.huge("/news/huge", 2 * 1024 * 1024, content_length=False)
    server.redirect_loop("/news/loop", "/news/loop2")
    # A second source names its sitemap itself and may read one page: the newest.
    server.add("/other-sitemap.xml", _news_sitemap(server.base, ["/news/b", "/news/a"]), content_type="text/xml")
    sources = [
        {"id": "site", "kind": "site", "start_urls": [server.url("/")], "allow": ["/news/"], "deny": ["/denied"]},
        {
            "id": "site2",
            "kind": "site",
            "start_urls": [server.url("/")],
            "sitemaps": [server.url("/other-sitemap.xml")],
            "max_pages": 1,
        },
    ]
    cfg = write_crawl_config(tmp_path / "cfg", sources, max_body_bytes=512 * 1024)
    state = {"site": {"seen": [canonical_url(server.url("/news/seen"))]}}

    events = crawl_events(cfg, ["site", "site2"], state)

    assert [e["key"] for e in events_of(events, "document", "site2")] == [canonical_url(server.url("/news/a"))]
    assert server.hits("/news/a") == 2 and server.hits("/news/b") == 1
    assert {e["source"]: e["ok"] for e in events_of(events, "source_done")} == {"site": True, "site2": True}
    docs = events_of(events, "document", "site")
    assert sorted(e["key"] for e in docs) == sorted(canonical_url(server.url(p)) for p in ("/news/a", "/news/b"))
    by_key = {e["key"]: e["document"] for e in docs}
    football = by_key[canonical_url(server.url("/news/a"))]
    assert football["title"] == FOOTBALL_TITLE and football["kind"] == "site" and football["language"] == "ru"
    assert "157 миллионов гривен" in by_key[canonical_url(server.url("/news/b"))]["text"]
    for never in ("/news/private", "/about", "/news/seen", "/news/denied", "/"):
        assert server.hits(never) == 0, never
    dropped = {e["url"]: e["reason"] for e in events_of(events, "dropped", "site")}
    assert dropped[server.url("/news/private")] == "robots"
    assert dropped[server.url("/news/huge")] == "too_large"
    assert dropped[server.url("/news/loop")] == "redirect_loop"
    done = events_of(events, "source_done", "site")[0]
    assert done["ok"] is True and done["counts"]["dropped"]["seen"] == 1


def test_link_following_without_sitemaps(server: LoopbackServer, test_data: Path, tmp_path: Path) -> None:
    server.add("/robots.txt", "User-agent: *\nDisallow: /news/private\n", content_type="text/plain")
    links = ["/news/a", "/news/cp1251", "/news/lying-header", "/news/flaky", "/news/slow", "/news/reset"]
    links += ["/news/private", "/other/x", "/news/gone", "http://127.0.0.2:1/news/external"]
    index = "<html><body>" + "".join(f'<p><a href="{u}">link {i}</a></p>' for i, u in enumerate(links))
    server.add("/index.html", index + "</body></html>")
    football = _page(test_data, "football.ua.podolski.html.gz")
    server.add("/news/a", football)
    # The same Russian page in windows-1251 (declared in the page only), and in UTF-8 with a lying header.
    html = football.decode("utf-8")
    cp1251 = html.replace('charset="utf-8"', 'charset="windows-1251"').replace("charset=utf-8", "charset=windows-1251")
    server.add("/news/cp1251", cp1251.encode("cp1251", errors="replace"), content_type="text/html")
    server.add("/news/lying-header", football, content_type="text/html; charset=windows-1251")
    server.fail_times("/news/flaky", 1, Reply(200, _page(test_data, "Pravda_2026_01_08.html.gz")), status=503)
    server.slow("/news/slow", 3.0, Reply(200, football))
    server.reset("/news/reset")
    server.add("/news/private", football)
    server.add("/other/x", football)
    server.add("/news/gone", "gone", status=410, content_type="text/plain")
    sources = [
        {
            "id": "site",
            "kind": "site",
            "start_urls": [server.url("/index.html")],
            "allow": ["/news/"],
            "max_depth": 1,
        }
    ]
    cfg = write_crawl_config(tmp_path / "cfg", sources, timeout=1.5, retry_times=1)

    events = crawl_events(cfg, ["site"])

    docs = {e["key"]: e["document"] for e in events_of(events, "document")}
    expected = {canonical_url(server.url(p)) for p in ("/news/a", "/news/cp1251", "/news/lying-header", "/news/flaky")}
    assert set(docs) == expected
    assert len(events_of(events, "document")) == len(expected)
    for path in ("/news/a", "/news/cp1251", "/news/lying-header"):
        assert docs[canonical_url(server.url(path))]["title"] == FOOTBALL_TITLE, path
    assert server.hits("/news/flaky") == 2
    assert server.hits("/news/private") == 0 and server.hits("/other/x") == 0
    assert server.hits("/sitemap.xml") == 1  # probed, absent, then links were followed
    errors = {e["url"]: e["reason"] for e in events_of(events, "error")}
    assert errors == {server.url("/news/slow"): "timeout", server.url("/news/reset"): "connection_lost"}
    dropped = {e["url"]: e["reason"] for e in events_of(events, "dropped")}
    assert dropped[server.url("/news/gone")] == "http_410"
    assert dropped[server.url("/news/private")] == "robots"
    assert events_of(events, "source_done")[0]["ok"] is True
