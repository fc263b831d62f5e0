"""Helpers for the platform-kind tests (YouTube, VK, RuTube): the real ingest pass and health.

Everything after the crawl child is real: the hashing embedder, the embedded index, the crawl
state store, and the health ``narrawatch sources --json`` prints.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.settings import Config
from crawlers.state import CrawlStateStore
from index.embed import HashingEmbedder
from index.local import EmbeddedIndex
from narrawatch.pipeline import Pipeline

__all__ = ["cli_sources", "ingest_pipeline"]


def ingest_pipeline(config: Config) -> Pipeline:
    """A pipeline over the config's data directory (crawls run in the real crawl subprocess)."""
    emb = HashingEmbedder()
    return Pipeline(
        config,
        embedder=emb,
        index=EmbeddedIndex(config.index_path, emb.space),
        state=CrawlStateStore(config.data_dir / "state.db"),
    )


def cli_sources(cfg: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, Any]]:
    """``narrawatch sources --json`` by source id."""
    from narrawatch.cli import main

    capsys.readouterr()
    assert main(["--config", str(cfg), "sources", "--json"]) == 0
    return {h["id"]: h for h in json.loads(capsys.readouterr().out)}
