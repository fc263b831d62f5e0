"""Contract: an ExclusiveLock (FileLock, AdvisoryLock) is exclusive across processes and freed
when its holder is killed with SIGKILL."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from core.locks import ExclusiveLock, FileLock


def _lock(kind: str, where: str) -> ExclusiveLock:
    if kind == "file":
        return FileLock.in_dir(Path(where), "detector-pass")
    from core.pgsql import AdvisoryLock

    return AdvisoryLock(where, "detector-pass")


def _holder(kind: str, where: str, held: object) -> None:
    lock = _lock(kind, where)
    assert lock.acquire()
    held.set()  # type: ignore[attr-defined]
    while True:  # until killed
        time.sleep(1)


@pytest.mark.parametrize("kind", ["file", "advisory"])
def test_exclusive_and_freed_on_sigkill(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    where = str(tmp_path / "locks") if kind == "file" else str(request.getfixturevalue("pg_url"))
    ctx = multiprocessing.get_context("spawn")
    held = ctx.Event()
    proc = ctx.Process(target=_holder, args=(kind, where, held))
    proc.start()
    mine = _lock(kind, where)
    try:
        assert held.wait(60)
        assert not mine.acquire() and not mine.held
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(60)
        assert proc.exitcode == -signal.SIGKILL
        deadline = time.monotonic() + 30  # the server notices the dead session's socket close
        while not mine.acquire():
            assert time.monotonic() < deadline, "lock not freed after the holder was killed"
            time.sleep(0.1)
        assert mine.held
        other = _lock(kind, where)
        try:
            assert not other.acquire()  # exclusive within one process too
        finally:
            other.close()
    finally:
        mine.close()
        if proc.is_alive():
            proc.kill()
