"""The crawl subprocess protocol: config errors, dead or garbled children, timeouts; retry delays."""

from __future__ import annotations

import stat
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from core.errors import UnknownNameError
from core.settings import SOURCE_KINDS
from crawlers.runner import run_crawl
from crawlers.scrapy_project.middlewares import backoff_delay, parse_retry_after
from crawlers.sources import spider_for
from tests.support.server import LoopbackServer, Reply, crawl_events, events_of, write_crawl_config


def test_registry_maps_kinds_and_lists_known_ones() -> None:
    assert SOURCE_KINDS.names() == ["feed", "rutube", "site", "telegram", "vk", "youtube"]
    assert spider_for("feed").kind == "feed"
    with pytest.raises(UnknownNameError, match="known: feed, rutube, site, telegram, vk, youtube"):
        spider_for("gopher")


def test_retry_after_and_backoff() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30.0
    assert parse_retry_after(b"soon") is None and parse_retry_after(None) is None
    assert [backoff_delay(n, 0.5, 3.0) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 3.0]
    assert backoff_delay(1, 0.5, 3.0, retry_after=10) == 3.0  # capped at backoff_max
    assert backoff_delay(1, 0.5, 3.0, retry_after=2) == 2.0


def test_unknown_source_id_fails_that_source(tmp_path: Path) -> None:
    cfg = write_crawl_config(tmp_path / "cfg", [{"id": "real", "kind": "feed", "url": "http://127.0.0.1:1/rss"}])
    events = crawl_events(cfg, ["nope"])
    assert "unknown source 'nope'; known: real" in events_of(events, "error", "nope")[0]["message"]
    assert [e["ok"] for e in events_of(events, "source_done")] == [False]


def test_garbled_or_dead_child_yields_errors_not_hangs(tmp_path: Path) -> None:
    fake = tmp_path / "fake-python"
    fake.write_text(
        "#!/bin/sh\necho 'Traceback: not json'\n"
        'echo \'{"event": "fetched", "source": "a", "url": "http://x/", "status": 200}\'\nexit 3\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    events = list(run_crawl(tmp_path, ["a", "b"], {}, python=str(fake), timeout=30))
    assert [e["event"] for e in events] == [
        "error",
        "fetched",
        "error",
        "error",
        "source_done",
        "error",
        "source_done",
    ]
    assert "bad line" in events[0]["message"]
    assert "exited with status 3" in events[2]["message"]
    assert [e["ok"] for e in events_of(events, "source_done")] == [False, False]


def test_timeout_kills_the_crawl(tmp_path: Path) -> None:
    with LoopbackServer() as server:
        server.slow("/rss", 30, Reply(200, b"<rss/>"))
        cfg = write_crawl_config(
            tmp_path / "cfg", [{"id": "stuck", "kind": "feed", "url": server.url("/rss")}], timeout=60
        )
        started = time.monotonic()
        events = list(run_crawl(cfg, ["stuck"], {}, timeout=8))
        assert time.monotonic() - started < 25
        assert any("timed out" in e.get("message", "") for e in events_of(events, "error"))
        assert events_of(events, "source_done") == [
            {"event": "source_done", "source": "stuck", "ok": False, "counts": {}}
        ]
