"""WARC archiving of fetched responses, through the real crawl subprocess on loopback.

The feed is Meduza's real RSS with links rewritten to the server, which serves real saved
article pages (tests/data/site, origins in its SOURCES); the Telegram pages are built from real
BBC Russian posts. Every WARC file is read back with warcio's own ArchiveIterator.
"""

from __future__ import annotations

import gzip
import hashlib
import io
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from warcio.archiveiterator import ArchiveIterator

from core.documents import Document
from core.serialize import document_from_dict
from crawlers.archive import read_capture, read_records
from tests.support.server import (
    LoopbackServer,
    Reply,
    crawl_events,
    events_of,
    load_posts,
    read_page,
    rewrite_feed_links,
    serve_telegram_channel,
    write_crawl_config,
)

FEED = "meduza_all_2026-09-24.rss"
PAGES = ("football.ua.podolski.html.gz", "Pravda_2026_01_08.html.gz", "BBC_2024_08_01.html.gz")
RSS = "application/rss+xml; charset=utf-8"


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as s:
        yield s


def _serve(server: LoopbackServer, data: Path, *, gzip_pages: bool = False) -> tuple[bytes, dict[str, bytes]]:
    """Serve the feed at /rss and its four articles; returns the feed body and the page bodies by URL."""
    feed, paths = rewrite_feed_links((data / "site" / FEED).read_bytes(), server.base, lambda i, _l: f"/news/{i}")
    server.add("/rss", feed, content_type=RSS)
    served: dict[str, bytes] = {}
    for i, path in enumerate(paths):
        page = read_page(data / "site" / "pages" / PAGES[i % len(PAGES)])
        if gzip_pages:  # as on the wire: the archive keeps the encoded body
            body = gzip.compress(page, mtime=0)
            server.route(path, Reply(200, body, {"Content-Encoding": "gzip"}))
        else:
            body = page
            server.add(path, page)
        served[server.url(path)] = body
    return feed, served


def _config(tmp_path: Path, source: dict[str, Any], **archive: Any) -> Path:
    cfg = write_crawl_config(tmp_path / "cfg", [source], obey_robots=False)
    service = yaml.safe_load((cfg / "service.yaml").read_text())
    if archive:
        service["archive"] = archive
    (cfg / "service.yaml").write_text(yaml.safe_dump(service))
    return cfg


def _docs(events: list[dict[str, Any]]) -> list[Document]:
    return [document_from_dict(e["document"]) for e in events_of(events, "document")]


def _warc_files(cfg: Path) -> list[Path]:
    warc = cfg / "data" / "warc"
    return sorted(warc.glob("*.warc.gz")) if warc.exists() else []


def _records(files: list[Path]) -> list[tuple[str, str, dict[str, str], bytes]]:
    """(type, target URI, WARC headers, raw payload) of every record, read by warcio itself."""
    out = []
    for path in files:
        with path.open("rb") as fh:
            for record in ArchiveIterator(fh):
                headers = dict(record.rec_headers.headers)
                out.append((record.rec_type, headers.get("WARC-Target-URI", ""), headers, record.raw_stream.read()))
    return out


def test_feed_articles_archived_as_served(server: LoopbackServer, test_data: Path, tmp_path: Path) -> None:
    _feed, served = _serve(server, test_data)
    cfg = _config(tmp_path, {"id": "meduza", "kind": "feed", "url": server.url("/rss")})

    docs = _docs(crawl_events(cfg, ["meduza"]))

    assert len(docs) == 4
    records = _records(_warc_files(cfg))
    responses = {uri: (headers, payload) for kind, uri, headers, payload in records if kind == "response"}
    requests = {uri: headers for kind, uri, headers, _ in records if kind == "request"}
    assert set(responses) == set(served)  # only responses that yielded a document: not the feed itself
    for doc in docs:
        capture = doc.capture
        assert capture is not None and capture.archived
        body = served[capture.url]
        headers, payload = responses[capture.url]
        assert payload == body
        assert capture.sha256 == hashlib.sha256(body).hexdigest()
        assert capture.status == 200 and capture.ip_address == "127.0.0.1"
        assert headers["WARC-IP-Address"] == "127.0.0.1"
        assert datetime.fromisoformat(headers["WARC-Date"].replace("Z", "+00:00")) == capture.fetched_at
        assert headers["WARC-Payload-Digest"].startswith("sha256:")
        assert requests[capture.url]["WARC-Concurrent-To"] == headers["WARC-Record-ID"]
        # the capture's byte range alone is a readable WARC holding exactly this exchange
        alone = list(read_records(io.BytesIO(read_capture(cfg / "data" / "warc", capture))))
        assert [(r.record_type, r.url) for r in alone] == [("response", capture.url), ("request", capture.url)]
        assert alone[0].payload == body


def test_encoded_body_is_kept_as_it_arrived(server: LoopbackServer, test_data: Path, tmp_path: Path) -> None:
    _feed, served = _serve(server, test_data, gzip_pages=True)
    cfg = _config(tmp_path, {"id": "meduza", "kind": "feed", "url": server.url("/rss")})

    docs = _docs(crawl_events(cfg, ["meduza"]))

    pages = [d for d in docs if d.extraction == "page"]
    assert len(pages) == 4  # decoded for extraction ...
    responses = {uri: (h, p) for kind, uri, h, p in _records(_warc_files(cfg)) if kind == "response"}
    for doc in pages:
        assert doc.capture is not None
        body = served[doc.capture.url]
        assert body[:2] == b"\x1f\x8b"
        assert responses[doc.capture.url][1] == body  # ... archived still gzip-encoded, as on the wire
        assert doc.capture.sha256 == hashlib.sha256(body).hexdigest()


def test_feed_entries_share_the_feed_capture(server: LoopbackServer, test_data: Path, tmp_path: Path) -> None:
    feed, _served = _serve(server, test_data)
    cfg = _config(tmp_path, {"id": "meduza", "kind": "feed", "url": server.url("/rss"), "fetch_articles": False})

    docs = _docs(crawl_events(cfg, ["meduza"]))

    assert len(docs) == 4
    captures = {d.capture for d in docs}
    assert len(captures) == 1  # one response, archived once, carried by every entry
    (capture,) = captures
    assert capture is not None and capture.url == server.url("/rss")
    assert capture.sha256 == hashlib.sha256(feed).hexdigest()
    responses = [(uri, p) for kind, uri, _h, p in _records(_warc_files(cfg)) if kind == "response"]
    assert responses == [(server.url("/rss"), feed)]


def test_archive_off_for_a_source_writes_nothing(server: LoopbackServer, test_data: Path, tmp_path: Path) -> None:
    _feed, served = _serve(server, test_data)
    cfg = _config(tmp_path, {"id": "meduza", "kind": "feed", "url": server.url("/rss"), "archive": False})

    docs = _docs(crawl_events(cfg, ["meduza"]))

    assert len(docs) == 4
    assert _warc_files(cfg) == []
    for doc in docs:  # the hash is still taken
        assert doc.capture is not None and not doc.capture.archived
        assert doc.capture.sha256 == hashlib.sha256(served[doc.capture.url]).hexdigest()


def test_archive_off_for_the_service_writes_nothing(server: LoopbackServer, test_data: Path, tmp_path: Path) -> None:
    _serve(server, test_data)
    cfg = _config(tmp_path, {"id": "meduza", "kind": "feed", "url": server.url("/rss")}, enabled=False)

    docs = _docs(crawl_events(cfg, ["meduza"]))

    assert len(docs) == 4 and _warc_files(cfg) == []
    assert all(d.capture is not None and d.capture.sha256 and not d.capture.archived for d in docs)


def test_files_rotate_by_size(server: LoopbackServer, test_data: Path, tmp_path: Path) -> None:
    _feed, served = _serve(server, test_data)
    cfg = _config(tmp_path, {"id": "meduza", "kind": "feed", "url": server.url("/rss")}, max_file_bytes=1024)

    docs = _docs(crawl_events(cfg, ["meduza"]))

    files = _warc_files(cfg)
    assert len(files) == 4  # every page is larger than 1 KiB compressed: one capture per file
    assert {d.capture.warc_file for d in docs if d.capture} == {f.name for f in files}
    for path in files:
        kinds = [kind for kind, *_ in _records([path])]
        assert kinds == ["warcinfo", "response", "request"]
    payloads = sorted(p for kind, _u, _h, p in _records(files) if kind == "response")
    assert payloads == sorted(served.values())


def test_telegram_posts_carry_their_page_capture(test_data: Path, tmp_path: Path) -> None:
    posts = load_posts(test_data / "site" / "telegram_bbcrussian_posts.jsonl")[-10:]
    with LoopbackServer() as server:
        serve_telegram_channel(server, "bbcrussian", posts, page_size=20)
        cfg = _config(
            tmp_path,
            {"id": "bbc", "kind": "telegram", "channel": "bbcrussian", "base_url": server.base, "max_pages": 1},
        )
        docs = _docs(crawl_events(cfg, ["bbc"]))
    assert docs
    captures = {d.capture for d in docs}
    assert len(captures) == 1
    (capture,) = captures
    assert capture is not None and capture.archived and "/s/bbcrussian" in capture.url
    (response,) = [(p, h) for kind, _u, h, p in _records(_warc_files(cfg)) if kind == "response"]
    assert hashlib.sha256(response[0]).hexdigest() == capture.sha256
    assert any(post["text"][:20].encode("utf-8") in response[0] for post in posts if post.get("text"))


def test_site_pages_archive_only_the_final_response(server: LoopbackServer, test_data: Path, tmp_path: Path) -> None:
    """A retried 503 and a redirect are not archived: only the 200 that the document came from."""
    football = read_page(test_data / "site" / "pages" / PAGES[0])
    pravda = read_page(test_data / "site" / "pages" / PAGES[1])
    bbc = read_page(test_data / "site" / "pages" / PAGES[2])
    links = "".join(f'<p><a href="{u}">{u}</a></p>' for u in ("/news/a", "/news/flaky", "/news/moved"))
    server.add("/index.html", f"<html><body>{links}</body></html>")
    server.add("/news/a", football)
    server.fail_times("/news/flaky", 1, Reply(200, pravda), status=503)
    server.route("/news/moved", Reply(301, b"", {"Location": server.url("/news/b")}))
    server.add("/news/b", bbc)
    source = {"id": "site", "kind": "site", "start_urls": [server.url("/index.html")], "allow": ["/news/"]}
    cfg = _config(tmp_path, {**source, "max_depth": 1, "use_sitemaps": False})

    docs = _docs(crawl_events(cfg, ["site"]))

    assert server.hits("/news/flaky") == 2
    by_capture = {d.capture.url: d.capture for d in docs if d.capture}
    assert set(by_capture) == {server.url(p) for p in ("/news/a", "/news/flaky", "/news/b")}
    records = _records(_warc_files(cfg))
    responses = {uri: payload for kind, uri, _h, payload in records if kind == "response"}
    assert responses == {server.url("/news/a"): football, server.url("/news/flaky"): pravda, server.url("/news/b"): bbc}
    for url, capture in by_capture.items():
        assert capture.status == 200 and capture.sha256 == hashlib.sha256(responses[url]).hexdigest()
