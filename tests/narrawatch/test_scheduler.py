"""Scheduling: one job per enabled source, restart-aware first runs, clean stop."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from core.settings import load_config
from crawlers.state import CrawlStateStore
from index.embed import HashingEmbedder
from index.local import EmbeddedIndex
from narrawatch.pipeline import Pipeline
from narrawatch.scheduler import Service, first_run_time

NOW = datetime(2024, 11, 30, 12, 0, tzinfo=UTC)


def test_first_run_after_restart_waits_for_the_interval() -> None:
    every = timedelta(minutes=15)
    recent = NOW - timedelta(minutes=5)
    due = first_run_time(recent, every, NOW, timedelta(0))
    assert due == recent + every  # not re-crawled early after a restart
    overdue = first_run_time(NOW - timedelta(hours=3), every, NOW, timedelta(0))
    assert overdue == NOW  # a missed run happens at once, not skipped
    fresh = first_run_time(None, every, NOW, timedelta(seconds=30))
    assert NOW <= fresh <= NOW + timedelta(seconds=5)


def make_service(tmp_path: Path, calls: list[list[str]]) -> Service:
    (tmp_path / "sources.yaml").write_text(
        "sources:\n"
        "  - {id: a, kind: telegram, channel: aaa_demo, every: 1s, jitter: 0s}\n"
        "  - {id: b, kind: telegram, channel: bbb_demo, every: 1h, enabled: false}\n",
        encoding="utf-8",
    )
    config = load_config(tmp_path)
    emb = HashingEmbedder()

    def crawl(cfg: Any, sources: list[str], state: Any) -> Any:
        calls.append(sources)
        time.sleep(0.3)  # a slow crawl: overlapping runs must not start (max_instances=1)
        return iter([{"event": "source_done", "source": sources[0], "ok": True}])

    pipeline = Pipeline(
        config,
        embedder=emb,
        index=EmbeddedIndex(config.index_path, emb.space),
        state=CrawlStateStore(config.data_dir / "state.db"),
        crawl=crawl,
    )
    return Service(config, pipeline)


def test_jobs_are_per_enabled_source_with_coalescing(tmp_path: Path) -> None:
    service = make_service(tmp_path, [])
    service.schedule_sources()
    jobs = {j.id: j for j in service.scheduler.get_jobs()}
    assert set(jobs) == {"source:a"}
    job = jobs["source:a"]
    assert job.coalesce is True and job.max_instances == 1


def test_service_runs_sources_and_stops_cleanly(tmp_path: Path) -> None:
    calls: list[list[str]] = []
    service = make_service(tmp_path, calls)
    t = threading.Thread(target=service.run_forever, kwargs={"install_signals": False})
    t.start()
    deadline = time.monotonic() + 20
    while len(calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    service.stop()
    t.join(timeout=20)
    assert not t.is_alive()
    assert len(calls) >= 2 and all(c == ["a"] for c in calls)
    assert service.pipeline.state.get("a").last_success is not None


def test_shards_partition_the_sources() -> None:
    import pytest

    from narrawatch.scheduler import in_shard, parse_shard

    ids = [f"source-{i}" for i in range(300)]
    parts = [{s for s in ids if in_shard(s, (i, 3))} for i in range(3)]
    assert set().union(*parts) == set(ids) and sum(len(p) for p in parts) == 300
    assert all(60 < len(p) < 140 for p in parts)  # roughly balanced
    assert parse_shard("2/3") == (2, 3)
    for bad in ("3/3", "x", "1-3"):
        with pytest.raises(ValueError):
            parse_shard(bad)
