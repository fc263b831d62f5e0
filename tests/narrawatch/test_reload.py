"""Config reload while the scheduler runs: new sources scheduled, removed ones unscheduled without
interrupting their crawl in flight, bad edits refused with ``file:path: message``, SIGHUP.

The crawl is the pipeline's injectable crawl function (as in test_scheduler.py): what is under
test is the scheduler and the reload, not fetching.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.settings import load_config
from crawlers.state import CrawlStateStore
from index.embed import HashingEmbedder
from index.local import EmbeddedIndex
from narrawatch.app import App
from narrawatch.monitoring import attach_monitoring
from narrawatch.pipeline import Pipeline
from narrawatch.reload import ConfigWatcher, attach_reload, config_hash
from narrawatch.rules_store import effective_alerts
from narrawatch.scheduler import Service

SOURCES = (
    "sources:\n"
    "  # the operator's comment stays: nothing here is ever rewritten\n"
    "  - {id: slow, kind: telegram, channel: slow_demo, every: 1h, jitter: 0s}\n"
    "  - {id: keep, kind: telegram, channel: keep_demo, every: 1h, jitter: 0s, enabled: false}\n"
)
RULES = "rules:\n  - {id: watch, detector: query, options: {query: Орешник}}\n"


class World:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "sources.yaml").write_text(SOURCES, encoding="utf-8")
        (root / "service.yaml").write_text("embedding: {model: hashing}\n", encoding="utf-8")
        (root / "alerts.yaml").write_text(RULES, encoding="utf-8")
        self.started = threading.Event()
        self.release = threading.Event()
        self.calls: list[str] = []
        config = load_config(root)
        emb = HashingEmbedder()
        state = CrawlStateStore(config.data_dir / "state.db")
        index = EmbeddedIndex(config.index_path, emb.space)
        self.pipeline = Pipeline(config, embedder=emb, index=index, state=state, crawl=self.crawl)
        self.app = App(config, embedder=emb, index=index, state=state, pipeline=self.pipeline)
        self.service = Service(config, self.pipeline)
        self.monitoring = attach_monitoring(self.app)

    def crawl(self, cfg: Any, sources: list[str], state: Any) -> Any:
        self.calls.extend(sources)
        if "slow" in sources:
            self.started.set()
            self.release.wait(30)  # a crawl in flight while the config changes under it
        return iter([{"event": "source_done", "source": s, "ok": True} for s in sources])

    def jobs(self) -> set[str]:
        """The sources in the shared lease table (what any worker may claim)."""
        return {f"source:{row.source_id}" for row in self.pipeline.state.leases()}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    w.service.schedule_sources()
    w.service.scheduler.start()
    try:
        yield w
    finally:
        w.release.set()
        w.service.scheduler.shutdown(wait=True)
        w.app.close()


def test_new_source_is_scheduled_and_a_removed_one_finishes_its_crawl(world: World) -> None:
    watcher = ConfigWatcher(world.app, world.service, world.monitoring)
    assert world.jobs() == {"source:slow"}
    assert world.started.wait(20), "the first crawl of 'slow' should start at once"
    assert watcher.check() is False  # nothing changed yet

    edited = SOURCES.replace("slow, kind: telegram, channel: slow_demo", "fresh, kind: telegram, channel: fresh_demo")
    (world.root / "sources.yaml").write_text(edited, encoding="utf-8")
    assert watcher.check() is True
    assert world.jobs() == {"source:fresh"}
    assert [s.id for s in world.app.config.sources] == ["fresh", "keep"]
    assert world.pipeline.config is world.app.config

    world.release.set()  # the crawl that was in flight when 'slow' was removed completes
    deadline = time.monotonic() + 20
    while world.pipeline.state.get("slow").last_success is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert world.pipeline.state.get("slow").last_success is not None
    deadline = time.monotonic() + 20
    while "fresh" not in world.calls and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "fresh" in world.calls  # the new source ran without a restart


def test_a_source_the_service_wrote_to_sources_d_is_scheduled(world: World) -> None:
    """``sources import`` and the web UI's "add source" write ``<data_dir>/sources.d/*.yaml``: the
    running service picks such a file up like an edit of its own config."""
    watcher = ConfigWatcher(world.app, world.service, world.monitoring)
    assert watcher.check() is False
    included = world.app.config.data_dir / "sources.d"
    included.mkdir(parents=True, exist_ok=True)
    (included / "imported.yaml").write_text(
        "sources:\n  - {id: added, kind: telegram, channel: added_demo, every: 1h, jitter: 0s}\n", encoding="utf-8"
    )
    assert watcher.check() is True
    assert world.jobs() == {"source:slow", "source:added"}
    assert watcher.check() is False  # the same bytes again: no second reload


def test_bad_edit_keeps_the_old_config_and_says_where(world: World, caplog: pytest.LogCaptureFixture) -> None:
    watcher = ConfigWatcher(world.app, world.service, world.monitoring)
    before = world.app.config
    (world.root / "sources.yaml").write_text(SOURCES.replace("every: 1h", "every: soon", 1), encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="narrawatch.reload"):
        assert watcher.check() is False
    assert world.app.config is before and world.jobs() == {"source:slow"}
    assert any("sources.yaml:sources[0].every: invalid duration 'soon'" in r.getMessage() for r in caplog.records)
    assert watcher.last_issues == [
        "sources.yaml:sources[0].every: invalid duration 'soon'; use e.g. '30s', '15m', '1h30m', '7d'"
    ]
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="narrawatch.reload"):
        assert watcher.check() is False  # the same broken content is not reported again
    assert not caplog.records

    (world.root / "alerts.yaml").write_text(RULES + "  - {id: spike, detector: spike, options: {nope: 1}}\n")
    (world.root / "sources.yaml").write_text(SOURCES, encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="narrawatch.reload"):
        assert watcher.check() is False
    assert any("alerts.yaml:rules[1].options.nope: unknown key" in r.getMessage() for r in caplog.records)
    assert [r.id for r in world.app.alerts_config.rules] == ["watch"]


def test_rule_and_narrative_changes_reach_the_next_pass(world: World) -> None:
    watcher = ConfigWatcher(world.app, world.service, world.monitoring)
    assert world.monitoring is not None and [r.id for r in world.monitoring.alerts.rules] == ["watch"]
    (world.root / "alerts.yaml").write_text(RULES + "  - {id: spike, detector: spike}\n", encoding="utf-8")
    (world.root / "narratives").mkdir()
    (world.root / "narratives" / "n.yaml").write_text(
        '{"id": "n-threat", "title": "Threat", "description": "d", "exemplars": {"ru": ["Орешник уничтожит цели."]}}',
        encoding="utf-8",
    )
    assert watcher.check() is True
    assert [r.id for r in world.monitoring.alerts.rules] == ["watch", "spike"]
    assert [r.id for r in effective_alerts(world.app).rules] == ["watch", "spike"]
    assert [n.id for n in world.monitoring.catalogue.enabled] == ["n-threat"]
    assert world.jobs() == {"source:slow"}  # sources untouched


def test_sighup_reloads(world: World, caplog: pytest.LogCaptureFixture) -> None:
    previous = signal.getsignal(signal.SIGHUP)
    try:
        watcher = attach_reload(world.app, world.service, world.monitoring)
        (world.root / "sources.yaml").write_text(SOURCES + "  - {id: more, kind: telegram, channel: more_demo}\n")
        watcher.seen = config_hash(world.root, watcher.data_dir)  # the poll sees nothing new: only the signal reloads
        with caplog.at_level(logging.INFO, logger="narrawatch.reload"):
            os.kill(os.getpid(), signal.SIGHUP)
            deadline = time.monotonic() + 20
            while watcher.reloads == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
        assert watcher.reloads == 1
        assert "source:more" in world.jobs()
        assert any("config reloaded (SIGHUP)" in r.getMessage() for r in caplog.records)
    finally:
        signal.signal(signal.SIGHUP, previous)
