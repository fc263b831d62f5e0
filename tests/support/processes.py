"""Results from worker processes of a cross-process test."""

from __future__ import annotations

import queue
import time
from collections.abc import Sequence
from typing import Any


def collect(out: Any, procs: Sequence[Any], n: int, *, timeout: float = 120) -> list[Any]:
    """``n`` results from the queue ``out``, failing at once when a process died without one
    (its traceback is in the captured output) or after ``timeout`` seconds."""
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        try:
            got.append(out.get(timeout=0.5))
        except queue.Empty:
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            assert not dead and time.monotonic() < deadline, f"worker exit codes {dead} (see the traceback above)"
    return got
