"""Scheduling: sources leased from the crawl state, restart-aware first runs, takeover, clean stop.

The crawl is the pipeline's injectable crawl function: what is under test is the lease loop
(claim, renew, release, takeover), not fetching. Two :class:`Service` objects on one crawl
state play two workers (SQLite here; the PostgreSQL claim is in tests/e2e/test_workers_pg.py).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from core.documents import utcnow
from core.settings import load_config
from crawlers.state import CrawlStateStore, SourceRelease
from index.embed import HashingEmbedder
from index.local import EmbeddedIndex
from narrawatch.pipeline import Pipeline
from narrawatch.scheduler import Service, claim_every, first_run_time, next_due, runnable_sources

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


def test_claim_tick_follows_the_lease() -> None:
    assert claim_every(timedelta(minutes=2)) == timedelta(seconds=5)
    assert claim_every(timedelta(seconds=5)) == timedelta(seconds=1)
    assert claim_every(timedelta(seconds=1)) == timedelta(seconds=0.5)


SOURCES = (
    "sources:\n"
    "  - {id: a, kind: telegram, channel: aaa_demo, every: 1s, jitter: 0s}\n"
    "  - {id: b, kind: telegram, channel: bbb_demo, every: 1h, enabled: false}\n"
)


def make_service(
    root: Path,
    calls: list[list[str]],
    *,
    sleep: float = 0.3,
    state: CrawlStateStore | None = None,
    lease: str = "2m",
    worker: str | None = None,
    gate: threading.Event | None = None,
) -> Service:
    if not (root / "sources.yaml").exists():
        (root / "sources.yaml").write_text(SOURCES, encoding="utf-8")
        (root / "service.yaml").write_text(f"crawl: {{lease: {lease}}}\n", encoding="utf-8")
    config = load_config(root)
    emb = HashingEmbedder()

    def crawl(cfg: Any, sources: list[str], job_state: Any) -> Any:
        calls.append(sources)
        if gate is not None:
            gate.wait(30)
        time.sleep(sleep)  # a slow crawl: a second claim of a leased source must not start
        return iter([{"event": "source_done", "source": sources[0], "ok": True}])

    pipeline = Pipeline(
        config,
        embedder=emb,
        index=EmbeddedIndex(config.index_path, emb.space) if state is None else EmbeddedIndex(root / "ix", emb.space),
        state=state or CrawlStateStore(config.data_dir / "state.db"),
        crawl=crawl,
    )
    return Service(config, pipeline, worker=worker)


def test_enabled_sources_get_a_lease_row_and_the_claim_and_renew_jobs(tmp_path: Path) -> None:
    service = make_service(tmp_path, [])
    service.schedule_sources()
    assert set(runnable_sources(service.config)) == {"a"}
    (row,) = service.pipeline.state.leases()
    assert row.source_id == "a" and row.owner is None and row.due_at <= utcnow() + timedelta(seconds=5)
    jobs = {j.id: j for j in service.scheduler.get_jobs()}
    assert set(jobs) == {"sources:claim", "sources:renew"}
    assert all(j.coalesce is True and j.max_instances == 1 for j in jobs.values())


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
    (row,) = service.pipeline.state.leases()
    assert row.owner is None and row.claims == len(calls)  # every pass claimed once, every lease given back


def test_a_released_source_is_due_every_after_its_pass(tmp_path: Path) -> None:
    service = make_service(tmp_path, [], sleep=0)
    service.schedule_sources()
    state = service.pipeline.state
    (claimed,) = state.claim_due(service.worker, utcnow() + timedelta(seconds=6), 60, 5)
    assert claimed.source_id == "a" and claimed.owner == service.worker
    before = utcnow()
    service._release("a", True)
    row = state.lease("a")
    assert row is not None and row.owner is None
    src = service.config.source("a")
    assert before + src.every <= row.due_at <= next_due(src, utcnow())


def test_two_workers_never_crawl_one_source_at_once_and_a_dead_ones_source_is_taken_over(tmp_path: Path) -> None:
    """Worker 1 claims ``a`` and hangs (as if killed: it never renews); worker 2 takes ``a`` over
    once the 1 s lease has run out, crawls it once and releases it; worker 1's late release is refused."""
    state = CrawlStateStore(tmp_path / "shared-state.db")
    hung = threading.Event()
    calls1: list[list[str]] = []
    calls2: list[list[str]] = []
    (tmp_path / "w1").mkdir()
    (tmp_path / "w2").mkdir()
    for w in ("w1", "w2"):
        (tmp_path / w / "sources.yaml").write_text(SOURCES.replace("every: 1s", "every: 1h"), encoding="utf-8")
        (tmp_path / w / "service.yaml").write_text("crawl: {lease: 1s}\n", encoding="utf-8")
    one = make_service(tmp_path / "w1", calls1, state=state, worker="w1", gate=hung)
    two = make_service(tmp_path / "w2", calls2, state=state, worker="w2", sleep=0)
    one.schedule_sources()
    one.scheduler.remove_job("sources:renew")  # a dead worker renews nothing
    one.scheduler.start()
    try:
        deadline = time.monotonic() + 20
        while not calls1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert calls1 == [["a"]]
        row = state.lease("a")
        assert row is not None and row.owner == "w1"
        two.schedule_sources()
        two.scheduler.start()
        deadline = time.monotonic() + 20
        while not calls2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert calls2 == [["a"]], "worker 2 takes the source over when worker 1's lease runs out"
        deadline = time.monotonic() + 20
        while two.running and time.monotonic() < deadline:
            time.sleep(0.05)
        row = state.lease("a")
        assert row is not None and row.owner is None and row.claims == 2
        assert row.due_at > utcnow() + timedelta(minutes=50)  # worker 2's pass set the next due time
    finally:
        hung.set()
        one.scheduler.shutdown(wait=True)
        two.scheduler.shutdown(wait=True)
    # worker 1 woke up after losing its lease: its release changes nothing
    row = state.lease("a")
    assert row is not None and row.owner is None and row.claims == 2


def test_a_source_only_another_worker_knows_is_handed_back(tmp_path: Path) -> None:
    service = make_service(tmp_path, [])
    state = service.pipeline.state
    state.schedule({"elsewhere": utcnow() - timedelta(seconds=1)})
    assert service.claim_tick() in ([], ["a"])
    row = state.lease("elsewhere")
    assert row is not None and row.owner is None and row.claims == 1 and row.due_at > utcnow()
    assert state.release("elsewhere", service.worker, SourceRelease(next_due=utcnow())) is False
