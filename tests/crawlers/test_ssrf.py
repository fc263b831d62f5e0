"""SSRF by feed content: content-derived URLs may not reach internal addresses (crawlers.addresses).

The source lives on 127.0.0.1 (its own configured host: allowed although it is loopback); a
second listener on 127.0.0.2 stands for an internal service and must never see a request.
The feed is Meduza's real RSS (tests/data/site) with its item links rewritten.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from twisted.internet.error import DNSLookupError

from core.settings import FeedSource, SiteSource, TelegramSource
from crawlers.addresses import AddressPolicy, configured_urls, is_public_address
from crawlers.normalize import canonical_url
from crawlers.scrapy_project.middlewares import AddressGuardResolver
from tests.support.server import LoopbackServer, Reply, crawl_events, events_of, read_page, write_crawl_config

FEED = "meduza_all_2026-09-24.rss"
RSS = "application/rss+xml; charset=utf-8"


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:4700::1111", True),
        ("::ffff:8.8.8.8", True),
        ("127.0.0.2", False),
        ("::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("fe80::1%eth0", False),
        ("fc00::1", False),
        ("100.64.0.1", False),  # shared (CGNAT)
        ("224.0.0.1", False),
        ("ff02::1", False),
        ("0.0.0.0", False),
        ("240.0.0.1", False),
        ("2002:7f00:1::", False),  # 6to4 wrapping 127.0.0.1
        ("not-an-address", False),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public_address(address) is public


def test_policy_allows_own_host_anywhere_and_public_hosts_only_elsewhere() -> None:
    source = FeedSource(id="intranet", url="http://10.0.0.5:8080/rss")
    policy = AddressPolicy.for_source(source)
    assert policy.judge("http://10.0.0.5:9999/other").allowed  # own host, any port
    assert policy.judge("http://93.184.216.34/a").allowed
    refused = policy.judge("http://10.0.0.6/admin")
    assert (refused.allowed, refused.reason) == (False, "address_refused")
    assert refused.message == "10.0.0.6 is not a public address, and not this source's configured host"
    assert policy.needs_resolution("http://news.example.org/a") == "news.example.org"
    assert policy.judge("http://news.example.org/a", ["93.184.216.34"]).allowed
    mixed = policy.judge("http://news.example.org/a", ["93.184.216.34", "192.168.0.7"])
    assert not mixed.allowed and "192.168.0.7" in mixed.message  # every resolved address counts
    assert policy.judge("http://news.example.org/a", []).reason == "dns"  # unresolvable: refused
    assert policy.judge("file:///etc/passwd").reason == "unsupported_url"


def test_configured_urls_of_every_kind() -> None:
    site = SiteSource(id="s", start_urls=("https://a.example/news",), sitemaps=("https://maps.example/s.xml",))
    assert AddressPolicy.for_source(site).own_hosts == {"a.example", "maps.example"}
    assert configured_urls(TelegramSource(id="t", channel="bbcrussian")) == ["https://t.me"]


def test_resolver_refuses_internal_answers_for_unconfigured_hosts() -> None:
    """The connection-time check (DNS rebinding): only configured hosts may resolve internally."""
    resolver = AddressGuardResolver(object(), 0, 5.0)  # type: ignore[arg-type]
    resolver.own_hosts = frozenset({"intranet.local"})
    assert resolver._check("10.0.0.5", "intranet.local") == "10.0.0.5"
    assert resolver._check("93.184.216.34", "news.example.org") == "93.184.216.34"
    with pytest.raises(DNSLookupError, match="not a public address"):
        resolver._check("127.0.0.1", "rebound.example.org")


@pytest.fixture
def internal() -> Iterator[LoopbackServer]:
    """The "internal service" on 127.0.0.2: it answers everything, so any request would get through."""
    with LoopbackServer("127.0.0.2") as s:
        for path in ("/robots.txt", "/admin/1", "/admin/2", "/admin/4"):
            s.add(path, "<html><body><article><p>internal secret</p></article></body></html>")
        yield s


@pytest.mark.timeout(120)
def test_feed_links_and_redirects_to_other_internal_hosts_are_refused(
    internal: LoopbackServer, test_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = (test_data / "site" / FEED).read_text(encoding="utf-8")
    with LoopbackServer() as server:
        links = [
            server.url("/news/0"),  # own host: fetched
            internal.url("/admin/1"),  # another loopback address: refused
            server.url("/moved/2"),  # own host, redirects to 127.0.0.2: refused at the hop
            f"http://localhost:{server.port}/news/3",  # a name that resolves to loopback: refused
        ]
        items = body.split("<item>")
        for i, link in enumerate(links):  # rewrite the i-th item's <link>
            head, rest = items[i + 1].split("<link>", 1)
            items[i + 1] = head + "<link>" + link + rest[rest.index("</link>") :]
        server.add("/rss", "<item>".join(items), content_type=RSS)
        server.add("/news/0", read_page(test_data / "site" / "pages" / "football.ua.podolski.html.gz"))
        server.add("/news/3", read_page(test_data / "site" / "pages" / "Pravda_2026_01_08.html.gz"))
        server.route("/moved/2", Reply(302, b"", {"Location": internal.url("/admin/2")}, None))
        cfg = write_crawl_config(tmp_path / "cfg", [{"id": "meduza", "kind": "feed", "url": server.url("/rss")}])

        events = crawl_events(cfg, ["meduza"])

        assert internal.requests == []  # not even /robots.txt
        assert server.hits("/news/3") == 0  # localhost:<port> is this server, but by another name
        assert server.hits("/news/0") == 1 and server.hits("/moved/2") == 1
    dropped = {(e["reason"], e["url"]) for e in events_of(events, "dropped", "meduza")}
    assert dropped == {
        ("address_refused", links[1]),
        ("address_refused", links[2]),
        ("address_refused", links[3]),
    }
    done = events_of(events, "source_done", "meduza")[0]
    assert done["ok"] is True and done["counts"]["dropped"] == {"address_refused": 3}
    # Every entry is still indexed: from its page when allowed, else from the feed's own content.
    docs = {e["document"]["url"]: e["document"] for e in events_of(events, "document", "meduza")}
    assert docs[canonical_url(links[0])]["extraction"] == "page"
    assert {docs[canonical_url(link)]["extraction"] for link in links[1:]} == {"feed_content"}
    assert not any("internal secret" in d["text"] for d in docs.values())
    logged = capsys.readouterr().err
    assert f"meduza: refused {links[1]}: 127.0.0.2 is not a public address" in logged
    assert f"meduza: refused {internal.url('/admin/2')} (redirected from {links[2]}): 127.0.0.2 is not" in logged
    assert re.search(rf"refused {re.escape(links[3])}: localhost resolves to [0-9a-f:.]+", logged)


@pytest.mark.timeout(120)
def test_site_sitemaps_named_by_content_on_internal_hosts_are_refused(
    internal: LoopbackServer, test_data: Path, tmp_path: Path
) -> None:
    """robots.txt ``Sitemap:`` lines and sitemap-index entries are content too."""
    internal.add("/sitemap.xml", "<urlset/>", content_type="application/xml")
    with LoopbackServer() as server:
        server.add(
            "/robots.txt", f"User-agent: *\nSitemap: {internal.url('/sitemap.xml')}\n", content_type="text/plain"
        )
        server.add("/", read_page(test_data / "site" / "pages" / "football.ua.podolski.html.gz"))
        cfg = write_crawl_config(tmp_path / "cfg", [{"id": "site", "kind": "site", "start_urls": [server.url("/")]}])

        events = crawl_events(cfg, ["site"])

        assert internal.requests == []
        assert server.hits("/") == 1  # no sitemap came through: links are followed from the start URL
    assert events_of(events, "source_done", "site")[0]["ok"] is True
