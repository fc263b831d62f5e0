"""The ``narrawatch`` command end to end, as a user runs it, against a loopback replay of real posts.

Real subprocesses all the way: the CLI, its Scrapy crawl child, the embedded index on disk.
The hashing embedder keeps it quick; the real model runs in the demo and monitor tests.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from narrawatch.demo.replay import ReplayServer, load_demo_posts

HANDLES = ("bbc_russian_demo", "ria_novosti_demo", "mash_demo")


def posts_for(handles: tuple[str, ...], per_channel: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for h in handles:
        mine = sorted((p for p in load_demo_posts() if p["handle"] == h), key=lambda p: p["message_id"])
        out.extend(mine[:per_channel])
    return out


def write_config(root: Path, base_url: str, *, every: str = "1h") -> Path:
    cfg = root / "config"
    cfg.mkdir(parents=True, exist_ok=True)
    sources = [
        {"id": f"tg-{h}", "kind": "telegram", "channel": h, "base_url": base_url, "max_pages": 50, "every": every}
        for h in HANDLES
    ]
    sources.append({"id": "dead", "kind": "feed", "url": "http://127.0.0.1:9/rss.xml", "every": every})
    (cfg / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}), encoding="utf-8")
    service = {
        "data_dir": "../data",
        "embedding": {"model": "hashing"},
        "crawl": {"download_delay": "0s", "autothrottle": False, "retry_times": 0, "timeout": "5s"},
        "api": {"port": 0},
    }
    (cfg / "service.yaml").write_text(yaml.safe_dump(service), encoding="utf-8")
    return cfg


def nw(cfg: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "narrawatch", "--config", str(cfg), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "NARRAWATCH_CRAWL_LOG_LEVEL": "WARNING"},
    )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Path, ReplayServer, list[dict[str, Any]]]]:
    posts = posts_for(HANDLES, 45)
    with ReplayServer(posts) as server:
        yield write_config(tmp_path, server.base_url), server, posts


def test_crawl_search_stats_sources_export(world: tuple[Path, ReplayServer, list[dict[str, Any]]]) -> None:
    cfg, server, posts = world
    first = nw(cfg, "crawl", "--once", "--json")
    assert first.returncode == 1, first.stderr  # the dead feed fails; the rest succeed
    summary = {r["source"]: r for r in json.loads(first.stdout)}
    for h in HANDLES:
        assert summary[f"tg-{h}"]["ok"] and summary[f"tg-{h}"]["new"] == 45, summary[f"tg-{h}"]
    assert summary["dead"]["failed"] and summary["dead"]["errors"]

    again = nw(cfg, "crawl", "--once", "--json", "--source", "tg-mash_demo")
    (only,) = json.loads(again.stdout)
    assert only["new"] == 0 and only["updated"] == 0 and only["ok"]
    # the second run stopped at the newest seen post: one page, no paging back
    assert sum(1 for r in server.requests if r.startswith("/s/mash_demo")) <= 6

    stats = json.loads(nw(cfg, "stats", "--json").stdout)
    assert stats["documents"] == 135 and stats["by_source"]["tg-mash_demo"] == 45
    assert stats["embedding_model"]["model"] == "hashing" and stats["passages"] >= 135

    probe = next(p for p in posts if p["handle"] == "bbc_russian_demo" and len(p["text"].split()) > 12)
    words = " ".join(probe["text"].split()[:8])
    hits = json.loads(nw(cfg, "search", words, "--json", "-k", "5").stdout)
    # the API's hit shape (narrawatch.read.search.SearchResult.as_dict): one shape on every surface
    assert hits and set(hits[0]) == {
        "rank",
        "document_id",
        "url",
        "title",
        "source_id",
        "language",
        "published",
        "score",
        "keyword_rank",
        "semantic_rank",
        "semantic_score",
        "passage",
        "versions",  # edit/deletion history (issue 15)
        "edited",
        "deleted",
        "kind",  # source kind, outlet label and reach (issue 14)
        "outlet",
        "views",
        "copies",  # copies of the same post, grouped under their first appearance
    }
    assert hits[0]["document_id"] == f"tg:bbc_russian_demo/{probe['message_id']}"
    assert [h["rank"] for h in hits] == list(range(1, len(hits) + 1)) and hits[0]["passage"]["text"]
    filtered = json.loads(nw(cfg, "search", words, "--json", "--source", "tg-mash_demo").stdout)
    assert all(h["source_id"] == "tg-mash_demo" for h in filtered)

    health = {h["id"]: h for h in json.loads(nw(cfg, "sources", "--json").stdout)}
    assert health["dead"]["consecutive_failures"] == 1 and health["dead"]["last_error"]
    assert health["tg-mash_demo"]["items_24h"] == 45 and health["tg-mash_demo"]["last_success"]

    exported = nw(cfg, "export", "--format", "jsonl").stdout.splitlines()
    docs = [json.loads(line) for line in exported]
    assert len(docs) == 135 and len({d["id"] for d in docs}) == 135
    assert all(d["text"] and d["published"] and d["language"] for d in docs)


def test_new_posts_are_picked_up_without_reingesting(
    world: tuple[Path, ReplayServer, list[dict[str, Any]]],
) -> None:
    cfg, server, posts = world
    nw(cfg, "crawl", "--once", "--source", "tg-ria_novosti_demo")
    newer = [p for p in posts_for(("ria_novosti_demo",), 60) if p not in posts]
    server.release(newer)
    (r,) = json.loads(nw(cfg, "crawl", "--once", "--json", "--source", "tg-ria_novosti_demo").stdout)
    assert r["new"] == len(newer) == 15 and r["unchanged"] == 0


def test_kill_9_mid_crawl_then_restart_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    posts = posts_for(HANDLES, 250)
    with ReplayServer(posts) as server:
        cfg = write_config(tmp_path, server.base_url)
        proc = subprocess.Popen(
            [sys.executable, "-m", "narrawatch", "--config", str(cfg), "crawl", "--once"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        state_db = tmp_path / "data" / "state.db"
        deadline = time.monotonic() + 120
        import sqlite3

        def seen() -> int:
            try:
                with sqlite3.connect(state_db) as db:
                    return int(db.execute("select count(*) from seen").fetchone()[0])
            except sqlite3.Error:
                return 0

        while seen() < 64 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its crawl child, mid-ingest
        proc.wait()
        acknowledged = seen()
        assert 0 < acknowledged < len(posts), "the kill should land mid-ingest"

        done = nw(cfg, "crawl", "--once", "--json")
        summary = {r["source"]: r for r in json.loads(done.stdout)}
        stats = json.loads(nw(cfg, "stats", "--json").stdout)
        assert stats["documents"] == len(posts)
        # everything acknowledged before the kill was kept; the restart brought back exactly the rest:
        # new items, plus any batch that was indexed but not yet marked seen when the kill landed
        # (it comes back "unchanged": not re-embedded, only re-matched)
        redone = [summary[f"tg-{h}"] for h in HANDLES]
        assert sum(r["new"] + r["unchanged"] for r in redone) == len(posts) - acknowledged
        assert sum(r["unchanged"] for r in redone) <= 64 * len(HANDLES)  # at most one batch per source
        ids = [json.loads(line)["id"] for line in nw(cfg, "export").stdout.splitlines()]
        assert len(ids) == len(set(ids)) == len(posts)


def test_run_schedules_and_stops_cleanly_on_sigterm(world: tuple[Path, ReplayServer, list[dict[str, Any]]]) -> None:
    cfg, _, _ = world
    proc = subprocess.Popen(
        [sys.executable, "-m", "narrawatch", "--config", str(cfg), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            out = nw(cfg, "sources", "--json").stdout
            if out and all(h["last_success"] for h in json.loads(out) if h["id"] != "dead"):
                break
            time.sleep(1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert "shutting down" in err and "stopped" in err
    stats = json.loads(nw(cfg, "stats", "--json").stdout)
    assert stats["documents"] == 135


def test_config_check_reports_problems(tmp_path: Path) -> None:
    cfg = tmp_path / "bad"
    cfg.mkdir()
    (cfg / "sources.yaml").write_text("sources:\n  - {id: a, kind: rss, url: x}\n", encoding="utf-8")
    r = nw(cfg, "config", "check")
    assert r.returncode == 2
    assert (
        "sources.yaml:sources[0].kind: unknown source kind 'rss'; known: feed, rutube, site, telegram, vk, youtube"
        in r.stderr
    )


def test_demo_posts_are_bundled_with_attribution() -> None:
    from narrawatch.demo.replay import DEMO_DATA

    assert "CC BY 4.0" in (DEMO_DATA / "ORIGIN.md").read_text(encoding="utf-8")
    with gzip.open(DEMO_DATA / "telegram_posts.jsonl.gz", "rt", encoding="utf-8") as fh:
        first = json.loads(fh.readline())
    assert {"channel", "message_id", "date", "text", "handle"} <= set(first)
