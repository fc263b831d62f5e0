"""The crawl subprocess and the parent-side function that runs it.

Scrapy's Twisted reactor cannot be restarted within one process, so every crawl runs in a child::

    python -m crawlers.runner --config DIR --job JOB.json

``JOB.json``: ``{"sources": [id, ...], "state": {id: {"etag", "last_modified", "seen", "last_message_id"}}}``,
plus ``"mode": "recheck"`` for a re-check run (state per source: ``{"recheck": [item, ...]}``, see
:mod:`crawlers.scrapy_project.spiders.recheck`).
The child writes one JSON event per line to stdout (see :mod:`crawlers.scrapy_project.events`);
all logging goes to stderr. :func:`run_crawl` starts the child and yields the events as they come.

Lifetime: every run has a wall-clock budget (:func:`crawl_budget`, from ``crawl.max_run_time``);
past it the child gets SIGTERM, then SIGKILL after :data:`KILL_GRACE` seconds. The child dies at
once on SIGTERM or SIGINT (the default action, which works even while it is stuck in C code such
as a regular expression; Scrapy's "graceful" handler would wait for the reactor, which may never
come back). It also dies with its parent: on Linux the kernel sends it SIGKILL when the thread
that started it exits (``prctl(PR_SET_PDEATHSIG)``), elsewhere a watchdog thread polls the parent
id. The parent kills it when the event generator is closed, garbage-collected or interrupted.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import ctypes
import ctypes.util
import json
import logging
import math
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.settings import CrawlSettings

__all__ = ["KILL_GRACE", "crawl_budget", "main", "run_crawl", "run_job"]

logger = logging.getLogger(__name__)

_STDERR_TAIL = 30
KILL_GRACE = 5.0
"""Seconds between SIGTERM and SIGKILL when the parent stops a crawl child."""
_PARENT_ENV = "NARRAWATCH_CRAWL_PARENT_PID"
_PR_SET_PDEATHSIG = 1


class _QuietScrapy(logging.Filter):
    """Drop Scrapy's and Twisted's records below ``level`` (Scrapy resets their loggers to DEBUG)."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.split(".", 1)[0] in ("scrapy", "twisted", "py"):
            return record.levelno >= self.level
        return True


def run_job(
    config_dir: str | Path, sources: Sequence[str], state: Mapping[str, Any], out: IO[bytes], mode: str = "crawl"
) -> int:
    """Run one crawl in this process (the child side): every named source, events to ``out``.

    ``mode``: ``crawl`` (each kind's spider) or ``recheck`` (the re-check spiders).

    Returns the exit status (0 unless the config or a source id is invalid).
    """
    from scrapy.crawler import CrawlerProcess
    from twisted.internet.defer import DeferredSemaphore

    from core.errors import NarrawatchError
    from core.settings import load_config
    from crawlers.addresses import AddressPolicy
    from crawlers.archive_scrapy import archive_settings
    from crawlers.scrapy_project.events import EventWriter
    from crawlers.scrapy_project.settings import build_settings
    from crawlers.sources import register_builtins

    events = EventWriter(out)
    register_builtins()  # this process's composition root: the source kinds its config names
    try:
        config = load_config(config_dir)
        plan = [(config.source(sid), _spider(config.source(sid).kind, mode)) for sid in sources]
    except NarrawatchError as exc:
        for sid in sources:
            events.emit("error", sid, message=str(exc), url="", reason="config")
            events.emit("source_done", sid, ok=False, counts={})
        return 2
    crawl = config.service.crawl
    level = os.environ.get("NARRAWATCH_SCRAPY_LOG_LEVEL", "WARNING")
    own_hosts = {host for source, _ in plan for host in AddressPolicy.for_source(source).own_hosts}
    # Scrapy connects to a configured proxy (http_proxy/https_proxy) instead: it may be internal.
    own_hosts |= AddressPolicy.for_urls(urllib.request.getproxies().values()).own_hosts
    settings = build_settings(crawl, log_level=level, own_hosts=own_hosts) | archive_settings(config)
    process = CrawlerProcess({**settings, "LOG_INSTALL_ROOT_HANDLER": False})
    for name in ("scrapy", "twisted", "py.warnings"):  # Scrapy's dictConfig sets these to DEBUG
        logging.getLogger(name).setLevel(level)
    limit = DeferredSemaphore(crawl.max_parallel_sources)
    for source, spider_cls in plan:
        limit.run(process.crawl, spider_cls, source=source, state=dict(state.get(source.id) or {}), events=events)
    # Scrapy's and Twisted's handlers turn SIGTERM into a graceful stop that waits on the reactor;
    # main() leaves SIGTERM/SIGINT at their default action (exit now) instead.
    process.start(install_signal_handlers=False)
    return 0


def _spider(kind: str, mode: str) -> type:
    """The spider class running sources of ``kind`` in ``mode`` (``crawl`` or ``recheck``)."""
    from core.errors import UnknownNameError
    from crawlers.sources import spider_for

    if mode == "crawl":
        return spider_for(kind)
    if mode != "recheck":
        raise UnknownNameError("crawl mode", mode, ("crawl", "recheck"))
    from crawlers.recheck import RECHECK_KINDS
    from crawlers.scrapy_project.spiders.recheck import recheck_spider_for

    spider = recheck_spider_for(kind)
    if spider is None:
        raise UnknownNameError("re-checked source kind", kind, RECHECK_KINDS)
    return spider


def _die_with_parent() -> None:
    """Make this process exit when the parent that started it goes away (see the module docstring)."""
    expected = os.environ.get(_PARENT_ENV)
    if not expected or not expected.isdigit():
        return
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != int(expected):  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == int(expected):
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m crawlers.runner``."""
    parser = argparse.ArgumentParser(prog="python -m crawlers.runner", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="config directory")
    parser.add_argument("--job", required=True, help="job JSON file (sources and per-source state)")
    args = parser.parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)
    _die_with_parent()
    from core.logging import setup_logging

    setup_logging(os.environ.get("NARRAWATCH_CRAWL_LOG_LEVEL", "INFO"))
    # Scrapy 2.19 warns about its own RANDOMIZE_DOWNLOAD_DELAY default on every crawl.
    warnings.filterwarnings("ignore", message=".*RANDOMIZE_DOWNLOAD_DELAY.*")
    scrapy_level = logging.getLevelName(os.environ.get("NARRAWATCH_SCRAPY_LOG_LEVEL", "WARNING"))
    for handler in logging.getLogger().handlers:
        handler.addFilter(_QuietScrapy(scrapy_level if isinstance(scrapy_level, int) else logging.WARNING))
    # Events own the real stdout; anything else printing to fd 1 lands on stderr instead.
    sys.stdout.flush()
    events_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    out = os.fdopen(events_fd, "wb", buffering=0)
    job = json.loads(Path(args.job).read_text(encoding="utf-8"))
    try:
        sources, state = list(job.get("sources") or []), dict(job.get("state") or {})
        return run_job(args.config, sources, state, out, mode=str(job.get("mode") or "crawl"))
    finally:
        out.flush()


def _pump(stream: IO[bytes], q: queue.Queue[tuple[str, bytes | None]], tag: str) -> None:
    try:
        for line in iter(stream.readline, b""):
            q.put((tag, line))
    finally:
        q.put((tag, None))


def _error(source: str | None, message: str, reason: str = "runner") -> dict[str, Any]:
    return {"event": "error", "source": source, "message": message, "url": "", "reason": reason}


def crawl_budget(crawl: CrawlSettings, n_sources: int) -> float:
    """Wall-clock seconds a run of ``n_sources`` sources may take.

    ``crawl.max_run_time`` per batch of ``crawl.max_parallel_sources`` sources (the child crawls
    that many at once), so ``ingest`` of every source gets proportionally longer than one source.
    """
    batches = max(1, math.ceil(n_sources / crawl.max_parallel_sources))
    return crawl.max_run_time.total_seconds() * batches


def _configured_budget(config_dir: str | Path, n_sources: int) -> float:
    from core.errors import NarrawatchError
    from core.settings import CrawlSettings, load_config
    from crawlers.sources import register_builtins

    register_builtins()  # idempotent; the caller's root has usually done it already
    try:
        crawl = load_config(config_dir).service.crawl
    except NarrawatchError:  # the child reports the config errors; the default budget still applies
        crawl = CrawlSettings()
    return crawl_budget(crawl, n_sources)


def run_crawl(
    config_dir: str | Path,
    sources: Sequence[str],
    state: Mapping[str, Any],
    python: str = sys.executable,
    timeout: float | None = None,
    mode: str = "crawl",
) -> Iterator[dict[str, Any]]:
    """Run one crawl in a subprocess and yield its events as they arrive.

    ``timeout`` is the run's wall-clock budget in seconds; by default :func:`crawl_budget` of the
    config's crawl settings. Never hangs and never raises for the child's failures: a line that
    is not a JSON event, a child that dies, or one that outlives its budget (it is stopped) each
    yield an ``error`` event, and every source that got no ``source_done`` gets a synthesised
    one with ``ok: false``. The child's stderr is relayed to this process's stderr. Closing the
    generator early (or an exception such as KeyboardInterrupt while it waits) stops the child.
    ``mode="recheck"`` runs the re-check spiders instead of the crawl (see the module docstring).
    """
    if not sources:
        return
    if timeout is None:
        timeout = _configured_budget(config_dir, len(sources))
    with tempfile.TemporaryDirectory(prefix="narrawatch-crawl-") as tmp:
        job_path = Path(tmp) / "job.json"
        job = {"sources": list(sources), "state": dict(state), "mode": mode}
        job_path.write_text(json.dumps(job), encoding="utf-8")
        root = Path(__file__).resolve().parent.parent
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
        env.setdefault("PYTHONIOENCODING", "utf-8")
        env[_PARENT_ENV] = str(os.getpid())
        proc = subprocess.Popen(
            [python, "-m", "crawlers.runner", "--config", str(Path(config_dir).resolve()), "--job", str(job_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=str(root),
        )
        yield from _read_events(proc, list(sources), timeout)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after :data:`KILL_GRACE` seconds; waits for the child either way."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(timeout=KILL_GRACE)
        except subprocess.TimeoutExpired:
            logger.warning("crawler process %d ignored SIGTERM; killing it", proc.pid)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):  # SIGKILL cannot be ignored; belt and braces
        proc.wait(timeout=10)


def _read_events(proc: subprocess.Popen[bytes], sources: list[str], timeout: float) -> Iterator[dict[str, Any]]:
    assert proc.stdout is not None and proc.stderr is not None
    q: queue.Queue[tuple[str, bytes | None]] = queue.Queue()
    threads = [
        threading.Thread(target=_pump, args=(proc.stdout, q, "out"), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, q, "err"), daemon=True),
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    tail: collections.deque[str] = collections.deque(maxlen=_STDERR_TAIL)
    done: set[str] = set()
    open_streams = 2
    timed_out = False
    try:
        while open_streams:
            wait = max(0.0, deadline - time.monotonic())
            try:
                tag, line = q.get(timeout=wait)
            except queue.Empty:
                timed_out = True
                break
            if line is None:
                open_streams -= 1
                continue
            if tag == "err":
                text = line.decode("utf-8", errors="replace").rstrip()
                tail.append(text)
                sys.stderr.write(text + "\n")
                continue
            event = _parse_line(line)
            if event.get("event") == "source_done":
                done.add(str(event.get("source")))
            yield event
    finally:  # also on GeneratorExit (closed early) and KeyboardInterrupt: never leave the child behind
        if timed_out or open_streams:
            _stop(proc)
        else:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
            if proc.poll() is None:  # closed its pipes but did not exit
                _stop(proc)
    if timed_out:
        logger.warning("crawl exceeded its %.0fs budget; crawler process %d stopped", timeout, proc.pid)
        yield _error(
            None,
            f"crawl timed out: over its wall-clock budget of {timeout:.0f}s (crawl.max_run_time); "
            "the crawler process was stopped",
            "budget",
        )
        for sid in sources:
            if sid not in done:
                yield _error(sid, f"crawl budget of {timeout:.0f}s ran out before this source finished", "budget")
                yield {"event": "source_done", "source": sid, "ok": False, "counts": {}}
        return
    if proc.returncode is not None and proc.returncode < 0:
        name = next((sig.name for sig in signal.Signals if sig == -proc.returncode), f"signal {-proc.returncode}")
        yield _error(None, f"crawler process was stopped by {name}")
    elif proc.returncode != 0:
        last = " | ".join(line for line in tail if line.strip())[-800:]
        yield _error(None, f"crawler process exited with status {proc.returncode}: {last}")
    for sid in sources:
        if sid not in done:
            yield _error(sid, "crawl ended without finishing this source")
            yield {"event": "source_done", "source": sid, "ok": False, "counts": {}}


def _parse_line(line: bytes) -> dict[str, Any]:
    try:
        event = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return _error(None, f"bad line from the crawler process ({exc}): {line[:200]!r}")
    if not isinstance(event, dict) or "event" not in event:
        return _error(None, f"bad line from the crawler process: {line[:200]!r}")
    return event


if __name__ == "__main__":
    sys.exit(main())
