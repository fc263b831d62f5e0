"""A small world for the sources surfaces: a config with labelled sources (tests/data/source_lists),
an embedded index, crawl state, tokens, and a loopback server with a real saved feed
(tests/data/feeds/meduza_all_2026-09-24.rss), a page that is not a feed, and a t.me-like channel
built from real posts (tests/support/tme.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from core.settings import Config, load_config
from crawlers.state import CrawlStateStore
from index.embed import HashingEmbedder
from index.local import EmbeddedIndex
from narrawatch.app import App
from narrawatch.builtins import register_builtins
from narrawatch.http.tokens import TokenStore
from narrawatch.pipeline import Pipeline
from narrawatch.source_lists import apply_plan, plan_import
from narrawatch.state import register_builtins as register_state_backends
from tests.support.server import LoopbackServer, Reply, load_posts, serve_telegram_channel

DATA = Path(__file__).resolve().parents[1] / "data"


@dataclass
class SourcesWorld:
    """The config, the App, tokens by role and the loopback server."""

    config: Config
    app: App
    tokens: dict[str, str]
    server: LoopbackServer


def _config(root: Path, *, private_hosts: bool) -> Config:
    root.mkdir(parents=True)
    (root / "sources.yaml").write_text(
        "# operator's list\nsources:\n"
        "  - {id: meduza, kind: feed, url: 'https://meduza.io/rss/all', outlet: Meduza, actor: exile_media,"
        " country: RU, owner: 'Meduza Project', language: ru, tags: [exile]}\n",
        encoding="utf-8",
    )
    service = {"data_dir": "data", "embedding": {"model": "hashing"}, "api": {"analyst_private_hosts": private_hosts}}
    service["crawl"] = {"download_delay": 0, "autothrottle": False, "retry_times": 0, "timeout": 5}
    (root / "service.yaml").write_text(yaml.safe_dump(service), encoding="utf-8")
    config = load_config(root)
    plan = plan_import(config, (DATA / "source_lists" / "sources.csv").read_bytes(), "sources.csv")
    apply_plan(config, plan)  # tutby, bbcrussian, rian (state media)
    return load_config(root)


@contextmanager
def sources_world(root: Path, *, private_hosts: bool = True) -> Iterator[SourcesWorld]:
    """Build the world under ``root``; closes everything on exit."""
    register_builtins()
    register_state_backends()  # idempotent; while narrawatch.builtins does not do it yet
    with LoopbackServer() as server:
        server.add(
            "/rss/meduza.xml",
            (DATA / "feeds" / "meduza_all_2026-09-24.rss").read_bytes(),
            content_type="application/rss+xml",
        )
        server.add("/about.html", b"<html><head><title>About us</title></head><body><p>Not a feed.</p></body></html>")
        server.add("/robots.txt", b"User-agent: *\nAllow: /\n", content_type="text/plain")
        posts = load_posts(DATA / "site" / "telegram_bbcrussian_posts.jsonl")[-5:]
        serve_telegram_channel(server, "svtvnews", posts)
        server.route("/broken.xml", Reply(500, b"oops"))
        config = _config(root / "config", private_hosts=private_hosts)
        emb = HashingEmbedder()
        index = EmbeddedIndex(config.index_path, emb.space)
        state = CrawlStateStore(config.data_dir / "state.db")
        pipeline = Pipeline(config, embedder=emb, index=index, state=state)
        app = App(config, embedder=emb, index=index, state=state, pipeline=pipeline)
        try:
            with TokenStore.for_config(config) as ts:
                tokens = {"read": ts.create("reader", "read"), "analyst": ts.create("alice", "analyst")}
            yield SourcesWorld(config, app, tokens, server)
        finally:
            app.close()
