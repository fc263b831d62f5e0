"""A fresh install for API, web and CLI tests: a config directory and no data yet.

``write_fresh_config`` writes what a user writes before the first crawl (a Telegram source per
channel of the real posts in tests/data/index/posts.jsonl, the hashing embedder, the shipped
sanctions narrative written in flow style, one alert rule); ``ingest_posts`` then does what the
first crawl's indexing does (the real Pipeline into the configured index, as the writer).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from fastapi.testclient import TestClient

from core.settings import Config, load_config
from crawlers.state import CrawlStateStore
from index.embed import HashingEmbedder
from narrawatch.backends import open_index
from narrawatch.pipeline import Pipeline
from tests.support.posts import telegram_document

DATA = Path(__file__).resolve().parents[1] / "data"
POSTS = DATA / "index" / "posts.jsonl"
FETCHED = datetime(2024, 11, 21, 18, tzinfo=UTC)

ROOT = Path(__file__).resolve().parents[2]
NARRATIVE_ID = "sanctions-hurt-europe-more"


def narrative_in_flow_style() -> str:
    """The shipped narrative file re-written in YAML flow style (valid YAML, as some users write it)."""
    data = yaml.safe_load((ROOT / "config" / "narratives" / f"{NARRATIVE_ID}.yaml").read_text(encoding="utf-8"))
    return str(yaml.safe_dump(data, default_flow_style=True, allow_unicode=True, sort_keys=False, width=100))


def load_posts() -> list[dict[str, Any]]:
    """The real Telegram posts of tests/data/index/posts.jsonl."""
    return [json.loads(x) for x in POSTS.read_text(encoding="utf-8").splitlines() if x.strip()]


def write_fresh_config(root: Path) -> Path:
    """A config directory under ``root`` whose data directory does not exist yet."""
    cfg = root / "config"
    (cfg / "narratives").mkdir(parents=True)
    channels = sorted({abs(int(p["channel_id"])) for p in load_posts()})
    lines = ["sources:"] + [f"  - {{id: tg{c}, kind: telegram, channel: c{c}}}" for c in channels]
    (cfg / "sources.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (cfg / "service.yaml").write_text("embedding: {model: hashing}\n", encoding="utf-8")
    (cfg / "narratives" / f"{NARRATIVE_ID}.yaml").write_text(narrative_in_flow_style(), encoding="utf-8")
    (cfg / "alerts.yaml").write_text(
        "rules:\n  - {id: recurrence, detector: recurrence, options: {window: 24h}, severity: warning}\n",
        encoding="utf-8",
    )
    return cfg


def ingest_posts(config: Config, limit: int = 60) -> list[str]:
    """Index the first ``limit`` real posts as the writer would; returns their document ids."""
    docs = [telegram_document(p, FETCHED) for p in load_posts()[:limit]]
    emb = HashingEmbedder()
    index = open_index(config, emb.space)  # the configured backend, as the writer opens it
    state = CrawlStateStore(config.data_dir / "state.db")
    try:
        Pipeline(config, embedder=emb, index=index, state=state).index_documents(docs)
    finally:
        index.close()
        state.close()
    return [d.id for d in docs]


def fresh_config(root: Path) -> Config:
    """:func:`write_fresh_config` loaded."""
    return load_config(write_fresh_config(root))


def web_login(client: TestClient, token: str) -> None:
    """Sign in through the real login form (nonce cookie + form), leaving the session cookie set."""
    page = client.get("/login")
    found = re.search(r'name="nonce" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    resp = client.post("/login", data={"token": token, "nonce": found.group(1), "next": "/alerts"})
    assert resp.status_code == 200 and resp.url.path == "/alerts", (resp.status_code, resp.url)
