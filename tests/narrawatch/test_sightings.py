"""One source cannot overwrite another's document: the first publisher keeps the record, carriers are sightings.

Two loopback feeds through the real crawl subprocess, the pipeline, the embedded index and the
sightings store. Feed A is Meduza's real RSS (tests/data/site) with its article pages served
from A's server; feed B is liga.net's real RSS (tests/data/feeds) whose first entry links to
A's first article with ``?utm_source=x`` (the same canonical URL, so the same document id) and
whose next entries link to ``javascript:``, ``data:``, ``mailto:`` and ``ftp:`` URLs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from core.documents import Document, document_id_for_url
from core.settings import Config, load_config
from crawlers.normalize import canonical_url, make_document
from crawlers.state import CrawlStateStore
from index.embed import HashingEmbedder
from index.local import EmbeddedIndex
from monitors.spread import TraceQuery, trace
from narrawatch.cli import main
from narrawatch.pipeline import Pipeline
from tests.support.server import LoopbackServer, read_page, rewrite_feed_links, write_crawl_config

RSS = "application/rss+xml; charset=utf-8"
PAGES = ("football.ua.podolski.html.gz", "Pravda_2026_01_08.html.gz", "BBC_2024_08_01.html.gz")
A_TITLE = "Подольски завершил карьеру в сборной"
HOSTILE_LINKS = ("javascript:alert(1)", "javascript:alert(2)", "data:text/html,hi", "mailto:editor@liga.net")


@dataclass
class World:
    config: Config
    pipeline: Pipeline
    index: EmbeddedIndex
    a_article: str
    """A's first article URL as A's feed links it."""


@pytest.fixture
def world(tmp_path: Path, test_data: Path) -> Iterator[World]:
    with LoopbackServer() as server_a, LoopbackServer() as server_b:
        meduza = (test_data / "site" / "meduza_all_2026-09-24.rss").read_bytes()
        feed_a, paths = rewrite_feed_links(meduza, server_a.base, lambda i, _l: f"/news/{i}")
        server_a.add("/rss", feed_a, content_type=RSS)
        for i, path in enumerate(paths):
            server_a.add(path, read_page(test_data / "site" / "pages" / PAGES[i % len(PAGES)]))
        a_article = server_a.url(paths[0])
        b_links = (a_article + "?utm_source=x", *HOSTILE_LINKS)
        liga = (test_data / "feeds" / "liga_net_2021-08-22.rss").read_bytes()
        feed_b, _ = rewrite_feed_links(
            liga, "", lambda i, _l: b_links[i] if i < len(b_links) else server_b.url(f"/b/{i}")
        )
        server_b.add("/rss", feed_b, content_type=RSS)
        cfg = write_crawl_config(
            tmp_path / "cfg",
            [
                {"id": "meduza", "kind": "feed", "url": server_a.url("/rss"), "outlet": "meduza.io"},
                {
                    "id": "liga",
                    "kind": "feed",
                    "url": server_b.url("/rss"),
                    "outlet": "liga.net",
                    "fetch_articles": False,
                },
            ],
        )
        service = yaml.safe_load((cfg / "service.yaml").read_text())
        service["embedding"] = {"model": "hashing"}
        (cfg / "service.yaml").write_text(yaml.safe_dump(service))
        config = load_config(cfg)
        emb = HashingEmbedder()
        index = EmbeddedIndex(config.index_path, emb.space)
        state = CrawlStateStore(config.data_dir / "state.db")
        pipeline = Pipeline(config, embedder=emb, index=index, state=state)
        try:
            yield World(config, pipeline, index, a_article)
        finally:
            pipeline.close()
            index.close()
            state.close()


@pytest.mark.timeout(300)
def test_a_second_feed_linking_to_an_article_is_a_sighting_not_its_author(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    (a,) = world.pipeline.ingest(["meduza"])
    assert a.ok and a.new == 4
    doc_id = document_id_for_url(canonical_url(world.a_article))
    before = world.index.get(doc_id)
    assert before is not None and before.title == A_TITLE and before.source_id == "meduza"

    (b,) = world.pipeline.ingest(["liga"])

    assert b.ok, b.errors
    after = world.index.get(doc_id)
    assert after is not None
    assert (after.source_id, after.title, after.text, after.content_hash) == (
        "meduza",
        A_TITLE,
        before.text,
        before.content_hash,
    )
    assert b.carried == 1
    # javascript:, data:, mailto: links are dropped and counted, never one shared https://javascript/ id.
    assert b.dropped["unsupported_url"] == len(HOSTILE_LINKS)
    assert b.new == 12 - 1 - len(HOSTILE_LINKS)
    urls = [d.url for d in world.index.iter_documents()]
    assert not [u for u in urls if not u.startswith("http://127.0.0.1")], urls
    # Both sources are sightings of the document; the carrier's claim is kept beside the record.
    seen = world.pipeline.sightings.for_documents([doc_id])[doc_id]
    assert [(s.source_id, s.outlet) for s in seen] == [("meduza", "meduza.io"), ("liga", "liga.net")]
    assert seen[1].title.startswith("Футбол.") and seen[1].url == after.url
    # A second pass of B is a no-op: its item is seen, the record still A's.
    (again,) = world.pipeline.ingest(["liga"])
    assert again.carried == 0 and world.index.get(doc_id) == after

    # Spread tracing shows B as a carrier of A's record.
    result = trace(world.index, world.pipeline.embedder, TraceQuery(url=after.url), sightings=world.pipeline.sightings)
    item = result.item(doc_id)
    assert item.source_id == "meduza"
    assert [(c.source_id, c.outlet) for c in item.carriers] == [("liga", "liga.net")]
    assert result.graph.nodes[doc_id]["carried_by"] == "liga"

    # ... and so does the CLI, given the URL as B linked it.
    world.pipeline.close()
    assert (
        main(["--config", str(world.config.root), "trace", "--url", world.a_article + "?utm_source=x", "--json"]) == 0
    )
    out = json.loads(capsys.readouterr().out)
    (cli_item,) = [i for i in out["items"] if i["document_id"] == doc_id]
    assert cli_item["source"] == "meduza" and cli_item["title"] == A_TITLE
    assert [c["source"] for c in cli_item["carriers"]] == ["liga"]


@pytest.mark.timeout(300)
def test_a_carrier_that_came_first_yields_the_record_to_the_outlet_that_serves_the_url(world: World) -> None:
    (b,) = world.pipeline.ingest(["liga"])
    doc_id = document_id_for_url(canonical_url(world.a_article))
    squatted = world.index.get(doc_id)
    assert b.new == 12 - len(HOSTILE_LINKS) and squatted is not None and squatted.source_id == "liga"

    (a,) = world.pipeline.ingest(["meduza"])

    assert a.ok and a.carried == 0
    owned = world.index.get(doc_id)
    assert owned is not None and (owned.source_id, owned.title) == ("meduza", A_TITLE)
    seen = world.pipeline.sightings.for_documents([doc_id])[doc_id]
    assert [s.source_id for s in seen] == ["liga", "meduza"]


def _post(source: str, text: str, *, published: datetime | None = None, views: int | None = None) -> Document:
    return make_document(
        source_id=source,
        kind="feed",
        url="https://meduza.io/news/2026/09/24/podolski?utm_source=x",
        title="Подольски",
        text=text,
        published=published or datetime(2026, 9, 24, 9, tzinfo=UTC),
        fetched=datetime.now(UTC),
        views=views,
    )


def test_the_owner_still_updates_its_own_document_and_a_carrier_never_does(world: World) -> None:
    first = _post("meduza", "Лукас Подольски объявил о завершении карьеры в сборной.")
    edited = _post("meduza", "Лукас Подольски объявил о завершении карьеры в сборной Германии. Обновлено.")
    forged = _post("liga", "Подольски возвращается.")
    p = world.pipeline
    assert p.index_documents([first]).new == (first.id,)
    assert p.index_documents([forged]).carried == (first.id,)
    assert p.index_documents([edited]).updated == (first.id,)
    stored = world.index.get(first.id)
    assert stored is not None and stored.text == edited.text and stored.source_id == "meduza"
    # In one mixed batch too: the owner's later copy wins, the carrier's is a sighting.
    again = _post("meduza", "Третья редакция текста о Подольски.")
    result = p.index_documents([again, _post("liga", "Ещё одна подделка.")])
    assert result.updated == (first.id,) and result.carried == ()
    stored = world.index.get(first.id)
    assert stored is not None and stored.text == again.text


def test_values_no_backend_stores_are_replaced_before_indexing(world: World) -> None:
    now = datetime.now(UTC)
    future = _post("meduza", "Пост из будущего.", published=now + timedelta(days=400), views=2**64)
    result = world.pipeline.index_documents([future])
    assert result.new == (future.id,)
    stored = world.index.get(future.id)
    assert stored is not None
    assert stored.published == stored.fetched <= datetime.now(UTC) and stored.views is None
    assert stored.extra["clamped"]["published"]["reason"] == "published_in_future"
    assert stored.extra["clamped"]["views"] == {"reason": "views_out_of_range", "claimed": str(2**64)}
    assert world.pipeline.counters.get("normalise.published_in_future") == 1
