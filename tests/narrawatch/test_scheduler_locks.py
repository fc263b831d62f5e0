"""One detector pass and one dispatcher at a time: the monitoring ticks run only under their locks.

Two processes' worth of locks on one SQLite install (``flock`` files in ``<data_dir>/locks/``,
the same seam as the PostgreSQL advisory locks): while another holder has the detector lock, a
tick skips its pass; once it is free, the pass runs and gives the lock back.
"""

from __future__ import annotations

from pathlib import Path

from core.locks import FileLock
from core.settings import load_config
from narrawatch.app import App
from narrawatch.monitoring import attach_monitoring
from narrawatch.state import DETECTOR_LOCK, DISPATCH_LOCK


def test_a_held_lock_skips_the_tick_and_a_free_one_runs_it(tmp_path: Path) -> None:
    (tmp_path / "sources.yaml").write_text("sources:\n  - {id: a, kind: telegram, channel: aaa_demo}\n")
    (tmp_path / "service.yaml").write_text("embedding: {model: hashing}\n")
    (tmp_path / "alerts.yaml").write_text("rules:\n  - {id: watch, detector: query, options: {query: Орешник}}\n")
    config = load_config(tmp_path)
    app = App(config)
    try:
        monitoring = attach_monitoring(app)
        assert monitoring is not None
        other = FileLock.in_dir(config.data_dir / "locks", DETECTOR_LOCK)  # another worker's pass
        dispatcher = FileLock.in_dir(config.data_dir / "locks", DISPATCH_LOCK)
        assert other.acquire() and dispatcher.acquire()
        assert monitoring.detect() is None and monitoring.dispatch() is None
        assert monitoring.skipped == {"detect": 1, "dispatch": 1}
        other.release()
        dispatcher.release()
        assert monitoring.detect() == 0  # ran: no items, no alerts
        assert monitoring.dispatch() is not None
        assert not monitoring.detector_lock.held and not monitoring.dispatch_lock.held  # given back
        assert other.acquire()  # free for the next worker
        other.release()
        monitoring.close()
    finally:
        app.close()
