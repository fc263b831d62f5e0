"""Re-checks end to end: real crawl subprocesses on loopback, real saved pages and posts, served
content changed between the crawl and the re-check.

* a site (three real saved article pages from tests/data/site/pages, listed in a sitemap): one
  page is edited (two versions kept, both with their capture), one answers 404, one redirects to
  the front page; the deleted ones are marked with the time they were last seen;
* a Telegram channel (t.me/s pages built from 70 real BBC Russian posts, tests/support/tme.py):
  one post removed between the crawl and the re-check is marked ``missing``, one edited post
  gets a second version; a channel whose page then fails (500) or shows no posts marks nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from core.documents import document_id_for_telegram, document_id_for_url, utcnow
from core.settings import load_config
from core.timefmt import iso_utc
from crawlers.normalize import canonical_url
from crawlers.recheck import RecheckStore, recheck_path
from index.embed import HashingEmbedder
from index.local import EmbeddedIndex
from narrawatch.app import App
from narrawatch.http.tokens import TokenStore
from narrawatch.read.documents import document
from narrawatch.read.params import SearchParams, TraceRequest
from narrawatch.read.search import search
from narrawatch.read.trace import trace
from narrawatch.recheck import RecheckService, attach_recheck
from narrawatch.server import create_app
from tests.api.fresh import web_login
from tests.support.server import (
    LoopbackServer,
    Reply,
    load_posts,
    read_page,
    serve_telegram_channel,
    write_crawl_config,
)
from tests.support.tme import build_channel_page

PAGES = {
    "/news/edited": "Pravda_2026_01_08.html.gz",
    "/news/gone": "football.ua.podolski.html.gz",
    "/news/moved": "BBC_2024_08_01.html.gz",
}
EDIT_FROM, EDIT_TO = "157 миллионов гривен".encode(), "999 миллионов гривен".encode()


def _app(cfg: Path) -> App:
    service = yaml.safe_load((cfg / "service.yaml").read_text())
    service["embedding"] = {"model": "hashing"}
    service["crawl"]["obey_robots"] = False
    (cfg / "service.yaml").write_text(yaml.safe_dump(service))
    config = load_config(cfg)
    emb = HashingEmbedder()
    return App(config, embedder=emb, index=EmbeddedIndex(config.index_path, emb.space))


def _sitemap(server: LoopbackServer, paths: list[str]) -> str:
    urls = "".join(f"<url><loc>{server.url(p)}</loc></url>" for p in paths)
    return f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'


@dataclass
class Site:
    app: App
    recheck: RecheckService
    server: LoopbackServer
    ids: dict[str, str]


@pytest.fixture
def site(tmp_path: Path, test_data: Path) -> Iterator[Site]:
    with LoopbackServer() as server:
        bodies = {p: read_page(test_data / "site" / "pages" / name) for p, name in PAGES.items()}
        for path, body in bodies.items():
            server.add(path, body)
        server.add("/", bodies["/news/moved"])  # the front page: any real page
        server.add("/sitemap.xml", _sitemap(server, list(PAGES)), content_type="application/xml")
        source = {
            "id": "site",
            "kind": "site",
            "start_urls": [server.url("/")],
            "sitemaps": [server.url("/sitemap.xml")],
        }
        app = _app(write_crawl_config(tmp_path / "cfg", [source]))
        recheck = attach_recheck(app)
        assert recheck is not None
        try:
            (report,) = app.pipeline.ingest(["site"])
            assert report.new == 3, report.as_dict()
            ids = {p: document_id_for_url(canonical_url(server.url(p))) for p in PAGES}
            yield Site(app, recheck, server, ids)
        finally:
            recheck.close()
            app.close()


def test_edited_page_two_versions_and_deleted_pages_marked(site: Site) -> None:
    app, server, ids = site.app, site.server, site.ids
    first = {p: app.index.get(i) for p, i in ids.items()}
    assert all(d is not None and d.capture is not None for d in first.values())
    tracked = {i: site.recheck.store.get(i) for i in ids.values()}
    assert all(t is not None and t.checks == 0 for t in tracked.values())

    # Before the first check is due nothing is fetched.
    requests = len(server.requests_for("/news/edited"))
    assert site.recheck.run_once(utcnow()).checked == 0
    assert len(server.requests_for("/news/edited")) == requests

    edited = read_page(Path(__file__).parents[1] / "data" / "site" / "pages" / PAGES["/news/edited"])
    assert EDIT_FROM in edited
    server.add("/news/edited", edited.replace(EDIT_FROM, EDIT_TO))
    server.add("/news/gone", b"<html><body>Not found</body></html>", status=404)
    server.route("/news/moved", Reply(301, b"", {"Location": server.url("/")}, None))
    now = utcnow() + timedelta(hours=1, minutes=1)
    report = site.recheck.run_once(now)

    assert report.checked == 3, report.as_dict()
    assert report.outcomes == {"present": 1, "gone": 1, "redirected": 1}
    assert report.edited == [ids["/news/edited"]]
    assert sorted(report.deleted) == sorted([ids["/news/gone"], ids["/news/moved"]])
    # The edited page: both versions kept, each with its own capture; the index holds the new text.
    versions = app.evidence.versions(ids["/news/edited"])
    assert [v.number for v in versions] == [1, 2]
    assert "157 миллионов" in versions[0].text and "999 миллионов" in versions[1].text
    assert versions[0].capture is not None and versions[1].capture is not None
    assert versions[0].capture.sha256 != versions[1].capture.sha256
    stored = app.index.get(ids["/news/edited"])
    assert stored is not None and "999 миллионов" in stored.text
    assert stored.published == first["/news/edited"].published  # type: ignore[union-attr]
    assert app.evidence.deletion(ids["/news/edited"]) is None
    # The 404 and the redirect to the front page: deleted, last seen when first crawled.
    for path, reason in (("/news/gone", "gone"), ("/news/moved", "redirected")):
        deletion = app.evidence.deletion(ids[path])
        assert deletion is not None and deletion.reason == reason
        assert deletion.deleted_at == now.replace(microsecond=now.microsecond)
        assert deletion.last_seen == first[path].fetched  # type: ignore[union-attr]
        assert site.recheck.store.get(ids[path]).next_due is None  # type: ignore[union-attr]
    # The present page's next check is at 6h; nothing is due at 1h again.
    item = site.recheck.store.get(ids["/news/edited"])
    assert item is not None and item.checks == 1 and item.next_due == item.first_seen + timedelta(hours=6)
    assert site.recheck.run_once(now + timedelta(minutes=1)).checked == 0
    # Unchanged at 6h: no third version; last_seen moves.
    later = item.first_seen + timedelta(hours=6, seconds=1)
    again = site.recheck.run_once(later)
    assert again.outcomes == {"present": 1} and again.edited == []
    latest = app.evidence.versions(ids["/news/edited"])
    assert len(latest) == 2 and latest[-1].last_seen > versions[1].last_seen
    _surfaces_show_history(app, ids)


def _surfaces_show_history(app: App, ids: dict[str, str]) -> None:
    """Search, the document (read model, API JSON, web page) and trace carry versions and deletions."""
    page = search(app, SearchParams(q="миллионов гривен", mode="keyword")).as_dict()
    hit = next(r for r in page["results"] if r["document_id"] == ids["/news/edited"])
    assert hit["versions"] == 2 and hit["edited"] is True and hit["deleted"] is None
    doc = document(app, ids["/news/gone"]).as_dict()
    assert doc["deleted"]["reason"] == "gone" and doc["edited"] is False and len(doc["versions"]) == 1
    traced = trace(app, TraceRequest(document_id=ids["/news/moved"])).as_dict()
    node = next(n for n in traced["graph"]["nodes"] if n["id"] == ids["/news/moved"])
    assert node["deleted"]["reason"] == "redirected"
    item = next(it for it in traced["items"] if it["document_id"] == ids["/news/moved"])
    assert item["deleted"]["last_seen"] == doc_fetched(app, ids["/news/moved"])
    with TokenStore.for_config(app.config) as ts:
        token = ts.create("reader", "read")
    server = create_app(app.config, app=app)
    with TestClient(server, base_url="http://127.0.0.1") as client:
        r = client.get(f"/api/v1/documents/{ids['/news/edited']}", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert [v["number"] for v in body["versions"]] == [1, 2] and body["edited"] is True
        web_login(client, token)
        html = client.get(f"/documents/{ids['/news/edited']}").text
        assert "edited: 2 versions" in html
        versions = html[html.index('id="doc-versions"') :]
        assert versions.count('<td class="num">') == 2  # both versions listed, with their hashes
        html = client.get(f"/documents/{ids['/news/gone']}").text
        assert "deleted " in html and ", last seen " in html
        html = client.get("/search", params={"q": "миллионов гривен", "mode": "keyword"}).text
        assert "edited: 2 versions" in html


def doc_fetched(app: App, doc_id: str) -> str:
    stored = app.index.get(doc_id)
    assert stored is not None
    return iso_utc(stored.fetched)


def test_a_failing_site_marks_nothing_deleted(site: Site) -> None:
    for path in PAGES:
        site.server.add(path, b"server error", status=503, content_type="text/plain")
    now = utcnow() + timedelta(hours=2)
    report = site.recheck.run_once(now)
    assert report.outcomes == {"unknown": 3}
    assert report.deleted == [] and report.edited == []
    assert site.app.evidence.deletions(list(site.ids.values())) == {}
    for doc_id in site.ids.values():
        item = site.recheck.store.get(doc_id)
        assert item is not None and item.checks == 0 and item.next_due == now + timedelta(hours=1)


# --- Telegram ---------------------------------------------------------------------------------


def _posts(test_data: Path) -> list[dict[str, Any]]:
    posts = load_posts(test_data / "site" / "telegram_bbcrussian_posts.jsonl")
    for i, post in enumerate(posts):
        post["views"] = 100 + i
    return posts[-20:]  # the newest page


def test_deleted_and_edited_telegram_posts(tmp_path: Path, test_data: Path) -> None:
    posts = _posts(test_data)
    with LoopbackServer() as server:
        serve_telegram_channel(server, "bbcrussian", posts)
        serve_telegram_channel(server, "bbcfails", posts)
        serve_telegram_channel(server, "bbcgone", posts)
        sources = [
            {"id": name, "kind": "telegram", "channel": name, "base_url": server.base, "max_pages": 1}
            for name in ("bbcrussian", "bbcfails", "bbcgone")
        ]
        app = _app(write_crawl_config(tmp_path / "cfg", sources))
        recheck = attach_recheck(app)
        assert recheck is not None
        try:
            reports = app.pipeline.ingest(["bbcrussian", "bbcfails", "bbcgone"])
            assert [r.new for r in reports] == [20, 20, 20], [r.as_dict() for r in reports]
            removed, edited = posts[10], posts[5]
            removed_id = document_id_for_telegram("bbcrussian", int(removed["message_id"]))
            edited_id = document_id_for_telegram("bbcrussian", int(edited["message_id"]))
            first_seen = app.index.get(removed_id).fetched  # type: ignore[union-attr]
            changed = dict(edited, text=edited["text"] + "\n\nОбновлено: уточнены данные.")
            now_served = [changed if p is edited else p for p in posts if p is not removed]
            serve_telegram_channel(server, "bbcrussian", now_served)
            server.route("/s/bbcfails", Reply(500, b"server error", content_type="text/plain"))
            server.route("/s/bbcgone", Reply(200, build_channel_page("bbcgone", [], None).encode("utf-8")))
            now = utcnow() + timedelta(hours=1, seconds=5)

            report = recheck.run_once(now)

            assert report.checked == 60, report.as_dict()
            assert report.outcomes == {"present": 19, "missing": 1, "unknown": 40}
            assert report.deleted == [removed_id]
            deletion = app.evidence.deletion(removed_id)
            assert deletion is not None and deletion.reason == "missing" and deletion.last_seen == first_seen
            assert report.edited == [edited_id]
            versions = app.evidence.versions(edited_id)
            assert [v.number for v in versions] == [1, 2] and "Обновлено" in versions[1].text
            # The failing channel and the empty one: nothing deleted, every post still due for its first check.
            others = [document_id_for_telegram(c, int(p["message_id"])) for c in ("bbcfails", "bbcgone") for p in posts]
            assert app.evidence.deletions(others) == {}
            store = RecheckStore(recheck_path(app.config.data_dir))
            try:
                assert all(store.get(i).checks == 0 for i in others)  # type: ignore[union-attr]
            finally:
                store.close()
            # Each post was asked for with the page that ends at it.
            asked = {r.path for r in server.requests_for("/s/bbcrussian")}
            assert f"/s/bbcrussian?before={int(removed['message_id']) + 1}" in asked
        finally:
            recheck.close()
            app.close()


def test_pass_budget_and_disabled(tmp_path: Path) -> None:
    """At most ``max_per_pass`` items go to one re-check crawl (the longest overdue first); items the
    crawl did not answer stay due; ``recheck.enabled: false`` attaches nothing."""
    sources = [{"id": "s", "kind": "site", "start_urls": ["http://127.0.0.1:9/"]}]
    cfg = write_crawl_config(tmp_path / "cfg", sources)
    service = yaml.safe_load((cfg / "service.yaml").read_text())
    service["recheck"] = {"max_per_pass": 2, "after": ["1h", "2h"]}
    (cfg / "service.yaml").write_text(yaml.safe_dump(service))
    app = _app(cfg)
    sent: list[dict[str, Any]] = []

    def crawl(config: Any, ids: list[str], state: dict[str, Any]) -> Iterator[dict[str, Any]]:
        sent.append(state)
        yield {"event": "source_done", "source": "s", "ok": True, "counts": {}}

    recheck = RecheckService(app, crawl=crawl)
    try:
        t0 = utcnow()
        rows = [(f"u:{i}", "s", f"http://127.0.0.1:9/{i}", "page", t0 + timedelta(minutes=i)) for i in range(5)]
        recheck.store.track(rows)
        report = recheck.run_once(t0 + timedelta(hours=3))
        assert report.checked == 0
        assert [i["document_id"] for i in sent[0]["s"]["recheck"]] == ["u:0", "u:1"]
        assert [i.document_id for i in recheck.store.due(t0 + timedelta(hours=3), 10)] == [f"u:{i}" for i in range(5)]
    finally:
        recheck.close()
        app.close()
    service["recheck"] = {"enabled": False}
    (cfg / "service.yaml").write_text(yaml.safe_dump(service))
    disabled = _app(cfg)
    try:
        assert attach_recheck(disabled) is None
    finally:
        disabled.close()
