"""Run the benchmarks: ``python -m bench --quick`` (a few minutes) or ``--full`` (about an hour).

Each benchmark prints JSON lines and appends its Markdown tables to bench/RESULTS.md as soon as
it finishes (a long run that is interrupted keeps what completed). ``--only`` picks some:
floor, ingest, search, matching, alert, trace; and, opt-in only (never run by default), workers
(several ``narrawatch run`` workers on one PostgreSQL). Reproduction commands: docs/bench.md.
"""

from __future__ import annotations

import argparse
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import append_table, emit

PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "quick": {
        "floor": {"n": 192},
        "ingest": {"posts": 1000, "floor_sample": 512},
        "search": {"sizes": (10_000,), "queries": 100},
        "matching": {"docs": 500, "narratives": 1000, "store_matches": (10_000,), "passes": 3},
        "alert": {"reps": 3, "every": 5},
        "trace": {"sizes": (10_000,), "queries": 5},
    },
    "full": {
        "floor": {"n": 1024},
        "ingest": {"posts": 25_000, "floor_sample": 1024},
        "search": {"sizes": (10_000, 100_000, 1_000_000), "queries": 200},
        "matching": {"docs": 2000, "narratives": 1000, "store_matches": (10_000, 100_000), "passes": 3},
        "alert": {"reps": 5, "every": 5},
        "trace": {"sizes": (100_000, 1_000_000), "queries": 10},
    },
}

OPT_IN: dict[str, dict[str, dict[str, Any]]] = {
    "quick": {"workers": {"quick": True}},
    "full": {"workers": {"quick": False}},
}
"""Benchmarks run only when named in ``--only`` (bench/workers.py starts PostgreSQL and worker processes)."""


def floor(n: int, batch: int = 64, threads: int = 2, models: str = "use-multilingual-v3") -> list[dict[str, Any]]:
    """bench/embed_floor.py: the default model alone on real 60-word passages."""
    from bench.embed_floor import measure, passages

    texts = passages(n)
    rows = [emit("embed_floor", **measure(m, texts, batch, threads)) for m in models.split(",") if m]
    append_table(
        "Embedding floor (bench/embed_floor.py): model alone, 60-word Russian Telegram passages",
        rows,
        params={"passages": len(texts), "batch": batch, "threads": threads},
        columns=[
            "model",
            "passages",
            "passages_per_s",
            "tokens_per_s",
            "passages_per_cpu_s",
            "tokens_per_passage",
            "dim",
            "loadavg_1m_before",
        ],
    )
    return rows


def _runners() -> dict[str, Callable[..., list[dict[str, Any]]]]:
    from bench import alert_latency, ingest, matching, search, trace, workers

    return {
        "floor": floor,
        "ingest": ingest.run,
        "search": search.run,
        "matching": matching.run,
        "alert": alert_latency.run,
        "trace": trace.run,
        "workers": workers.run,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks of a profile; returns 1 if any failed."""
    ap = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="small sizes (default)")
    g.add_argument("--full", action="store_true", help="the sizes of the targets (about an hour)")
    ap.add_argument("--only", default="", help="comma-separated: " + ",".join([*PROFILES["quick"], *OPT_IN["quick"]]))
    ap.add_argument("--search-dir", default="/tmp/nw-bench-search", help="where search/trace indexes are built")
    a = ap.parse_args(argv)
    profile = "full" if a.full else "quick"
    wanted = [x for x in a.only.split(",") if x] or list(PROFILES[profile])
    runners = _runners()
    failed = 0
    for name in wanted:
        kwargs = dict(PROFILES[profile][name] if name in PROFILES[profile] else OPT_IN[profile][name])
        if name in ("search", "trace"):
            kwargs["base"] = Path(a.search_dir)
        emit("bench", stage="start", benchmark=name, profile=profile, **{k: str(v) for k, v in kwargs.items()})
        try:
            runners[name](**kwargs)
        except Exception as exc:  # keep going: the other benchmarks still report
            failed += 1
            emit("bench", stage="error", benchmark=name, error=repr(exc), traceback=traceback.format_exc()[-2000:])
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
