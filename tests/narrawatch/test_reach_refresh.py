"""Telegram reach refresh end to end: the real crawl subprocess against t.me-like pages on loopback,
the real pipeline, embedded index and crawl state.

Pages are built (tests/support/tme.py) from 30 real BBC Russian posts (tests/data/site), re-dated so
that the newest 25 are hours old and the 5 oldest days old. The first pass indexes them; the server
then serves a second copy of the same pages with higher views and new reactions. The second pass
updates the stored counters of the posts younger than ``crawl.reach_refresh`` (48h) only, without
re-embedding, re-matching or changing a content hash, and reads one page more than it would for
new posts because the first page's posts are all that young.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from core.documents import IndexedDocument, UpsertResult, document_id_for_telegram, utcnow
from core.settings import load_config
from crawlers.state import CrawlStateStore
from index.embed import HashingEmbedder
from index.local import EmbeddedIndex
from narrawatch.pipeline import Pipeline
from tests.support.server import LoopbackServer, load_posts, serve_telegram_channel, write_crawl_config


def _posts(test_data: Path) -> list[dict[str, Any]]:
    posts = load_posts(test_data / "site" / "telegram_bbcrussian_posts.jsonl")[-30:]
    now = utcnow()
    for i, post in enumerate(posts):  # oldest first: 5 posts of last week, then 25 from the last hours
        age = timedelta(days=6, hours=-i) if i < 5 else timedelta(minutes=20 * (len(posts) - i))
        post["date"] = (now - age).isoformat()
        post["views"] = 100 + i * 7
    return posts


def _pipeline(cfg: Path) -> tuple[Pipeline, list[int]]:
    config = load_config(cfg)
    emb = HashingEmbedder()
    p = Pipeline(
        config,
        embedder=emb,
        index=EmbeddedIndex(config.index_path, emb.space),
        state=CrawlStateStore(config.data_dir / "state.db"),
    )
    hooked: list[int] = []

    def hook(docs: Sequence[IndexedDocument], _result: UpsertResult) -> None:
        hooked.append(len(docs))

    p.hooks.append(hook)
    return p, hooked


def test_recent_posts_get_fresh_reach_without_reembedding(test_data: Path, tmp_path: Path) -> None:
    posts = _posts(test_data)
    with LoopbackServer() as server:
        serve_telegram_channel(server, "bbcrussian", posts)
        source = {"id": "bbc", "kind": "telegram", "channel": "bbcrussian", "base_url": server.base}
        cfg = write_crawl_config(tmp_path / "cfg", [source])
        p, hooked = _pipeline(cfg)

        (first,) = p.ingest(["bbc"])
        assert first.ok and first.new == 30 and first.reach_updated == 0
        ids = {int(x["message_id"]): document_id_for_telegram("bbcrussian", int(x["message_id"])) for x in posts}
        before = {m: p.index.get(d) for m, d in ids.items()}
        assert all(doc is not None for doc in before.values())
        hashes = p.index.content_hashes(list(ids.values()))
        passages = p.counters.get("embed.passages")
        watermark = p.state.get("bbc").last_message_id
        assert hooked == [30]
        requests_before = len(server.requests_for("/s/bbcrussian"))

        # Later: the same posts, more views; one post has reactions now.
        later = [dict(x, views=int(x["views"]) * 3 + 5) for x in posts]  # under 1000: exact on t.me
        later[-1]["reactions"] = {"👍": 42, "🔥": 7}
        serve_telegram_channel(server, "bbcrussian", later)
        (second,) = p.ingest(["bbc"])

        assert second.ok and second.new == 0 and second.updated == 0
        assert second.reach_updated == 25  # the 25 young posts, not the 5 of last week
        # Page 1 (20 posts, all young) reached seen posts; page 2 was read for reach only.
        assert len(server.requests_for("/s/bbcrussian")) == requests_before + 2
        for post, old in zip(later, posts, strict=True):
            mid = int(post["message_id"])
            doc = p.index.get(ids[mid])
            assert doc is not None
            young = posts.index(old) >= 5
            assert doc.views == (post["views"] if young else old["views"])
            assert doc.text == before[mid].text  # type: ignore[union-attr]
            if young:
                assert doc.extra.get("reach_at")
        newest = p.index.get(ids[int(later[-1]["message_id"])])
        assert newest is not None and newest.extra["reactions"] == {"👍": 42, "🔥": 7}
        assert newest.extra["channel"] == "bbcrussian"  # other extra keys kept
        # Nothing re-embedded, re-matched or re-hashed; the watermark did not move.
        assert p.index.content_hashes(list(ids.values())) == hashes
        assert hooked == [30]
        assert p.counters.get("embed.passages") == passages > 0
        assert p.state.get("bbc").last_message_id == watermark
        p.close()


def test_reach_refresh_zero_freezes_reach_at_first_fetch(test_data: Path, tmp_path: Path) -> None:
    posts = _posts(test_data)[-10:]
    with LoopbackServer() as server:
        serve_telegram_channel(server, "bbcrussian", posts)
        source = {"id": "bbc", "kind": "telegram", "channel": "bbcrussian", "base_url": server.base}
        cfg = write_crawl_config(tmp_path / "cfg", [source], reach_refresh="0s")
        p, _ = _pipeline(cfg)
        (first,) = p.ingest(["bbc"])
        assert first.new == 10
        serve_telegram_channel(server, "bbcrussian", [dict(x, views=99_999) for x in posts])
        requests = len(server.requests_for("/s/bbcrussian"))
        (second,) = p.ingest(["bbc"])
        assert second.ok and second.reach_updated == 0
        assert len(server.requests_for("/s/bbcrussian")) == requests + 1
        doc = p.index.get(document_id_for_telegram("bbcrussian", int(posts[-1]["message_id"])))
        assert doc is not None and doc.views == posts[-1]["views"]
        p.close()
