"""The crawl child's lifetime: a wall-clock budget, SIGTERM honoured, no orphan when the parent goes.

Every child here is stuck on a loopback response that never completes (a stalled or trickling
feed), the case in which Scrapy's own per-request timeout is not what ends the run. Waits are
hang-guards (pytest-timeout, or a generous bound on polling), never asserted durations.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from core.settings import CrawlSettings
from crawlers.runner import crawl_budget, run_crawl
from tests.support.server import LoopbackServer, Reply, events_of, write_crawl_config

ROOT = Path(__file__).resolve().parents[2]
RSS = "application/rss+xml; charset=utf-8"
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _wait_for(condition: object, what: str, bound: float = 60.0) -> None:
    """Poll ``condition()`` until true; fail (not hang) past ``bound`` seconds."""
    end = time.monotonic() + bound
    while not condition():  # type: ignore[operator]
        if time.monotonic() > end:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


def _crawler_children(parent: int) -> list[int]:
    """Live (non-zombie) ``crawlers.runner`` processes whose parent is ``parent``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == parent and state != "Z" and b"crawlers.runner" in cmdline:
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def stuck_server() -> Iterator[LoopbackServer]:
    """``/stalled`` answers after 10 minutes; ``/trickle`` sends one byte every half second, for hours."""
    with LoopbackServer() as server:
        server.slow("/stalled", 600, Reply(200, b"<rss/>", content_type=RSS))
        server.route(
            "/trickle",
            Reply(
                200, b"<rss>" + b" " * 100_000, content_type=RSS, chunk_size=1, chunk_delay=0.5, content_length=False
            ),
        )
        yield server


def test_budget_setting_is_validated_and_scales_with_batches() -> None:
    assert CrawlSettings().max_run_time == timedelta(minutes=30)
    crawl = CrawlSettings(max_run_time="10m", max_parallel_sources=4)
    assert crawl_budget(crawl, 1) == crawl_budget(crawl, 4) == 600.0
    assert crawl_budget(crawl, 5) == 1200.0
    for bad in ("0s", "2d", "soon"):
        with pytest.raises(ValidationError, match="max_run_time"):
            CrawlSettings(max_run_time=bad)


@pytest.mark.timeout(120)
def test_budget_from_the_config_stops_a_child_stuck_on_a_never_ending_response(
    stuck_server: LoopbackServer, tmp_path: Path
) -> None:
    cfg = write_crawl_config(
        tmp_path / "cfg",
        [{"id": "stuck", "kind": "feed", "url": stuck_server.url("/trickle")}],
        timeout=600,  # the per-request timeout is not what ends this run
        max_run_time="4s",
    )

    events = list(run_crawl(cfg, ["stuck"], {}))  # no timeout argument: the configured budget applies

    assert stuck_server.hits("/trickle") >= 1
    budget = [e for e in events_of(events, "error") if e["reason"] == "budget"]
    assert [e["source"] for e in budget] == [None, "stuck"]
    assert "over its wall-clock budget of 4s (crawl.max_run_time)" in budget[0]["message"]
    assert "budget of 4s ran out before this source finished" in budget[1]["message"]
    assert events_of(events, "source_done") == [{"event": "source_done", "source": "stuck", "ok": False, "counts": {}}]
    if sys.platform.startswith("linux"):
        assert _crawler_children(os.getpid()) == []


def _start_child(cfg: Path, sources: list[str], tmp_path: Path) -> subprocess.Popen[bytes]:
    """The crawl child exactly as run_crawl starts it (minus the pipes' readers)."""
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"sources": sources, "state": {}}))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NARRAWATCH_CRAWL_PARENT_PID": str(os.getpid())}
    return subprocess.Popen(
        [sys.executable, "-m", "crawlers.runner", "--config", str(cfg), "--job", str(job)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=str(ROOT),
    )


@pytest.mark.timeout(120)
def test_sigterm_makes_a_busy_crawl_child_exit(stuck_server: LoopbackServer, tmp_path: Path) -> None:
    cfg = write_crawl_config(
        tmp_path / "cfg", [{"id": "stuck", "kind": "feed", "url": stuck_server.url("/stalled")}], timeout=600
    )
    child = _start_child(cfg, ["stuck"], tmp_path)
    try:
        _wait_for(lambda: stuck_server.hits("/stalled") >= 1, "the child's request")  # the reactor is running
        child.send_signal(signal.SIGTERM)
        # Scrapy's graceful shutdown would wait for the stalled download (10 minutes).
        assert child.wait(timeout=30) == -signal.SIGTERM
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


@linux_only
@pytest.mark.timeout(120)
def test_closing_the_event_stream_stops_the_child(stuck_server: LoopbackServer, tmp_path: Path) -> None:
    """A consumer that stops reading (a stopping service, an exception) must not leave the child behind."""
    feed = (Path(__file__).resolve().parents[1] / "data" / "site" / "meduza_all_2026-09-24.rss").read_bytes()
    stuck_server.add("/rss", feed, content_type=RSS)
    sources = [
        {"id": "quick", "kind": "feed", "url": stuck_server.url("/rss"), "fetch_articles": False},
        {"id": "stuck", "kind": "feed", "url": stuck_server.url("/stalled")},
    ]
    cfg = write_crawl_config(tmp_path / "cfg", sources, timeout=600)
    events = run_crawl(cfg, ["quick", "stuck"], {}, timeout=600)
    assert next(events)["source"] == "quick"
    children = _crawler_children(os.getpid())
    assert len(children) == 1

    events.close()

    assert not _alive(children[0])


@linux_only
@pytest.mark.timeout(120)
def test_child_dies_with_its_parent(stuck_server: LoopbackServer, tmp_path: Path) -> None:
    cfg = write_crawl_config(
        tmp_path / "cfg", [{"id": "stuck", "kind": "feed", "url": stuck_server.url("/stalled")}], timeout=600
    )
    script = (
        "import sys\n"
        "from crawlers.runner import run_crawl\n"
        f"for event in run_crawl({str(cfg)!r}, ['stuck'], {{}}, timeout=600):\n"
        "    pass\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], cwd=str(ROOT), env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for(lambda: stuck_server.hits("/stalled") >= 1, "the child's request")
        children = _crawler_children(parent.pid)
        assert len(children) == 1
        parent.kill()  # SIGKILL: no finally block, no atexit in the parent runs
        parent.wait()
        _wait_for(lambda: not _alive(children[0]), "the orphaned child to die", bound=30)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
