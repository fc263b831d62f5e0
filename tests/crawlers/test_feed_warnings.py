"""Malformed feeds through the real crawl subprocess and the ingest pass: warnings reach logs and health.

Bodies are real saved feeds (tests/data/feeds: onliner.by, ukranews.com) broken the way transfers
and CMSs break them, and a real news page (tests/data/pages) served as a feed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from core.settings import load_config
from crawlers.state import CrawlStateStore
from index.embed import HashingEmbedder
from index.local import EmbeddedIndex
from narrawatch.pipeline import Pipeline
from tests.support.server import LoopbackServer, read_page, write_crawl_config

RSS = "application/rss+xml; charset=utf-8"


def _feeds(data: Path) -> dict[str, bytes]:
    onliner = (data / "feeds" / "onliner_by_2021-10-26.rss").read_bytes()
    tenth = 0
    for _ in range(10):
        tenth = onliner.index(b"</item>", tenth + 1)
    first_item = onliner.index(b"<item>")
    ukranews = (data / "feeds" / "stub_ukranews_rss.xml").read_bytes()
    items = ukranews.split(b"<item>")
    no_links = items[0] + b"".join(b"<item>" + _drop_link(i) for i in items[1:])
    assert no_links.count(b"<link>") == ukranews.count(b"<link>") - 2 and b"<guid>" not in no_links
    return {
        "truncated": onliner[: tenth + 200],  # cut inside the 11th entry: 10 complete ones
        "cut_first": onliner[: first_item + 300],  # cut inside the first entry: nothing usable
        "html": read_page(data / "pages" / "de_Golem_2024_04_28.html.gz"),  # a web page, not a feed
        "no_links": no_links,  # well-formed RSS whose items have neither link nor guid
    }


def _drop_link(item: bytes) -> bytes:
    for tag in (b"link", b"guid"):
        start = item.index(b"<" + tag + b">")
        end = item.index(b"</" + tag + b">") + len(tag) + 3
        item = item[:start] + item[end:]
    return item


def _health(cfg: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    from narrawatch.cli import main

    capsys.readouterr()
    assert main(["--config", str(cfg), "sources", "--json"]) == 0
    return {h["id"]: h for h in json.loads(capsys.readouterr().out)}


@pytest.mark.timeout(180)
def test_malformed_feeds_report_warnings_or_fail(
    test_data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    feeds = _feeds(test_data)
    with LoopbackServer() as server:
        for name, body in feeds.items():
            server.add(f"/{name}.rss", body, content_type=RSS)
        sources = [
            {"id": name, "kind": "feed", "url": server.url(f"/{name}.rss"), "fetch_articles": False} for name in feeds
        ]
        cfg = write_crawl_config(tmp_path / "cfg", sources)
        config = load_config(cfg)
        emb = HashingEmbedder()
        p = Pipeline(
            config,
            embedder=emb,
            index=EmbeddedIndex(config.index_path, emb.space),
            state=CrawlStateStore(config.data_dir / "state.db"),
        )
        with caplog.at_level(logging.WARNING, logger="narrawatch.pipeline"):
            reports = {r.source_id: r for r in p.ingest(list(feeds))}

    # A truncated feed keeps its complete entries; its warnings are logged once and kept in health.
    assert reports["truncated"].ok and reports["truncated"].new == 10
    assert any("SAXParseException" in m for _, m in reports["truncated"].warnings)
    # Not a feed at all, or nothing usable in a broken body: the source failed, with a clear error.
    assert not reports["cut_first"].ok and reports["cut_first"].new == 0
    assert not reports["html"].ok and reports["html"].new == 0
    # Well-formed but every entry unusable: not a failure, but not silent either.
    assert reports["no_links"].ok and reports["no_links"].new == 0

    health = _health(cfg, capsys)
    truncated = health["truncated"]
    assert truncated["last_pass_warnings"] == len(reports["truncated"].warnings) >= 2
    assert truncated["warning_reasons"] == {"feed": truncated["last_pass_warnings"]}
    assert any("flagged the feed (SAXParseException" in w for w in truncated["last_warnings"])
    assert truncated["notes"].startswith(f"last pass: {truncated['last_pass_warnings']} warnings (feed ")
    assert "broken feed: 1 entries, none complete (SAXParseException" in health["cut_first"]["last_error"]
    assert "not a feed" in health["html"]["last_error"]
    assert health["cut_first"]["consecutive_failures"] == health["html"]["consecutive_failures"] == 1
    no_links = health["no_links"]
    assert no_links["last_error"] is None and no_links["items_24h"] == 0
    assert any("2 entries in a non-empty body, none usable" in w for w in no_links["last_warnings"])

    logged = [
        r.getMessage()
        for r in caplog.records
        if r.name == "narrawatch.pipeline" and "warnings this pass" in r.getMessage()
    ]
    assert sorted(m.split(":")[0] for m in logged) == ["source no_links", "source truncated"]
    assert len(logged) == 2  # once per source and pass, not once per warning
