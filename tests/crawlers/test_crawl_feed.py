"""Feed crawls through the real crawl subprocess against the loopback server.

The feed is Meduza's real RSS (tests/data/site) with item links pointing back at the server,
which serves real saved article pages for them.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from core.documents import document_id_for_url
from core.serialize import document_from_dict
from crawlers.normalize import canonical_url
from tests.support.server import (
    LoopbackServer,
    Reply,
    closed_port,
    crawl_events,
    events_of,
    read_page,
    rewrite_feed_links,
    write_crawl_config,
)

FEED = "meduza_all_2026-09-24.rss"
PAGES = ("football.ua.podolski.html.gz", "Pravda_2026_01_08.html.gz", "BBC_2024_08_01.html.gz")
RSS = "application/rss+xml; charset=utf-8"


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as s:
        yield s


def serve_feed(server: LoopbackServer, data: Path, path: str = "/rss", *, strip_content: bool = False) -> list[str]:
    """Serve the Meduza feed at ``path`` with local article links; returns the article paths."""
    body = (data / "site" / FEED).read_bytes()
    if strip_content:  # leave only <description>: the entry's summary
        body = re.sub(rb"<content:encoded>.*?</content:encoded>", b"", body, flags=re.S)
    feed, paths = rewrite_feed_links(body, server.base, lambda i, _link: f"{path}/news/{i}")
    server.add(path, feed, content_type=RSS, etag='"meduza-v1"')
    return paths


def serve_pages(server: LoopbackServer, data: Path, paths: list[str]) -> None:
    for i, path in enumerate(paths):
        server.add(path, read_page(data / "site" / "pages" / PAGES[i % len(PAGES)]))


def test_feed_documents_once_then_conditional_get(server: LoopbackServer, test_data: Path, tmp_path: Path) -> None:
    paths = serve_feed(server, test_data)
    serve_pages(server, test_data, paths)
    cfg = write_crawl_config(tmp_path / "cfg", [{"id": "meduza", "kind": "feed", "url": server.url("/rss")}])

    events = crawl_events(cfg, ["meduza"])

    docs = events_of(events, "document")
    assert len(docs) == len(paths) == 4
    keys = [e["key"] for e in docs]
    assert len(set(keys)) == len(keys)
    assert all(k.startswith("https://meduza.io/news/2026/09/24/") for k in keys)
    by_url = {e["document"]["url"]: document_from_dict(e["document"]) for e in docs}
    assert set(by_url) == {canonical_url(server.url(p)) for p in paths}
    football = by_url[canonical_url(server.url(paths[0]))]
    assert football.extraction == "page"
    assert football.title == "Подольски завершил карьеру в сборной"
    assert "Подольски" in football.text and football.language == "ru"
    assert football.id == document_id_for_url(football.url)
    assert football.source_id == "meduza" and football.kind == "feed"
    assert football.published.tzinfo is not None and football.passages
    pravda = by_url[canonical_url(server.url(paths[1]))]
    assert "157 миллионов гривен" in pravda.text
    assert [e["state"] for e in events_of(events, "state")] == [{"etag": '"meduza-v1"', "last_modified": None}]
    done = events_of(events, "source_done")
    assert len(done) == 1 and done[0]["ok"] is True and done[0]["counts"]["documents"] == 4
    assert not events_of(events, "error")
    assert all(server.hits(p) == 1 for p in paths)

    # Second run with the state the parent would store: 304, nothing new, no article requests.
    state = {"meduza": {"etag": '"meduza-v1"', "last_modified": None, "seen": keys}}
    again = crawl_events(cfg, ["meduza"], state)
    assert not events_of(again, "document")
    assert [e["reason"] for e in events_of(again, "dropped")] == ["not_modified"]
    assert events_of(again, "source_done")[0]["ok"] is True
    feed_requests = server.requests_for("/rss")
    assert feed_requests[-1].headers.get("if-none-match") == '"meduza-v1"'
    assert all(server.hits(p) == 1 for p in paths)


def test_faults_retries_and_fallbacks_in_one_run(server: LoopbackServer, test_data: Path, tmp_path: Path) -> None:
    # Source "main": one article page per fault.
    paths = serve_feed(server, test_data, "/main", strip_content=True)
    page = read_page(test_data / "site" / "pages" / PAGES[0])
    server.fail_times(paths[0], 2, Reply(200, page))  # 500, 500, then OK
    server.rate_limit(paths[1], 1, "1", Reply(200, read_page(test_data / "site" / "pages" / PAGES[1])))
    server.add(paths[2], "gone", status=404, content_type="text/plain")
    server.redirect_loop(paths[3], paths[3] + "/again")
    server.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    # Source "robots": its article pages are all disallowed.
    robots_paths = serve_feed(server, test_data, "/private")
    serve_pages(server, test_data, robots_paths)
    # Broken sources.
    real = (test_data / "site" / FEED).read_bytes()
    server.add("/broken", real[: real.index(b"<image>") + 12], content_type=RSS)  # cut off mid-tag
    server.huge("/huge", 3 * 1024 * 1024)
    dead = f"http://127.0.0.1:{closed_port()}/rss"
    sources = [
        {"id": "main", "kind": "feed", "url": server.url("/main")},
        {"id": "robots", "kind": "feed", "url": server.url("/private")},
        {"id": "broken", "kind": "feed", "url": server.url("/broken")},
        {"id": "huge", "kind": "feed", "url": server.url("/huge")},
        {"id": "dead", "kind": "feed", "url": dead},
    ]
    cfg = write_crawl_config(tmp_path / "cfg", sources, max_body_bytes=1024 * 1024, backoff_base=0.2)

    # "robots" already indexed its first two entries (keys are the feed's guids).
    guids = re.findall(r"<guid>(.*?)</guid>", (test_data / "site" / FEED).read_text(encoding="utf-8"))
    state = {"robots": {"seen": guids[:2]}}

    events = crawl_events(cfg, [s["id"] for s in sources], state)

    done = {e["source"]: e for e in events_of(events, "source_done")}
    assert {k: v["ok"] for k, v in done.items()} == {
        "main": True,
        "robots": True,
        "broken": False,
        "huge": False,
        "dead": False,
    }
    # main: every entry exactly once, from the page when it came through, else the summary.
    docs = {e["document"]["url"]: e["document"] for e in events_of(events, "document", "main")}
    assert len(docs) == 4 == len(events_of(events, "document", "main"))
    extraction = {p: docs[canonical_url(server.url(p))]["extraction"] for p in paths}
    assert extraction == {paths[0]: "page", paths[1]: "page", paths[2]: "feed_summary", paths[3]: "feed_summary"}
    assert docs[canonical_url(server.url(paths[0]))]["title"] == "Подольски завершил карьеру в сборной"
    summary_doc = docs[canonical_url(server.url(paths[2]))]
    assert summary_doc["title"].startswith("Зеленский заявил") or summary_doc["text"]
    assert re.search("[а-яА-Я]", summary_doc["text"])
    assert datetime.fromisoformat(summary_doc["published"]).year == 2026
    # 500 twice then OK: three requests, spaced by the backoff.
    assert server.hits(paths[0]) == 3
    times = [r.time for r in server.requests_for(paths[0])]
    assert all(b - a >= 0.2 for a, b in itertools.pairwise(times))
    # 429 + Retry-After: 1 -> the retry came at least a second later.
    t429 = [r.time for r in server.requests_for(paths[1])]
    assert len(t429) == 2 and t429[1] - t429[0] >= 1.0
    dropped = {(e["reason"], e["url"]) for e in events_of(events, "dropped", "main")}
    assert ("http_404", server.url(paths[2])) in dropped
    assert any(reason == "redirect_loop" for reason, _ in dropped)
    # robots: seen entries skipped; pages never requested, documents from the feed's own content.
    assert all(server.hits(p) == 0 for p in robots_paths)
    robots_docs = events_of(events, "document", "robots")
    assert sorted(d["key"] for d in robots_docs) == sorted(guids[2:])
    assert {d["document"]["extraction"] for d in robots_docs} == {"feed_content"}
    assert sorted(e["reason"] for e in events_of(events, "dropped", "robots")) == ["robots", "robots", "seen", "seen"]
    # broken / huge / dead: one clear error each, no documents.
    errors = {e["source"]: e for e in events_of(events, "error")}
    assert "malformed feed" in errors["broken"]["message"]
    assert errors["huge"]["reason"] == "too_large"
    assert errors["dead"]["reason"] in {"connection_refused", "connection_error"}
    assert not [e for e in events if e["event"] == "document" and e["source"] in {"broken", "huge", "dead"}]
