"""The ``narrawatch`` command line.

Every command takes ``--config DIR`` (default ``$NARRAWATCH_CONFIG`` or ``./config``).
Exit codes: 0 ok, 1 a command failed (e.g. a source failed), 2 bad usage or invalid config.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import alerts.config  # noqa: F401  (registers the config section "alerts")
import monitors.catalogue
import monitors.detectors  # noqa: F401  (registers the built-in detectors)
from core.documents import SearchFilters, SearchQuery, utcnow
from core.errors import ConfigError, NarrawatchError
from core.logging import setup_logging
from core.safe_text import inert_stdio
from core.serialize import document_to_dict
from core.settings import Config, load_config, parse_when
from narrawatch import __version__
from narrawatch.pipeline import SourceReport
from narrawatch.scheduler import in_shard, parse_shard

__all__ = ["MAX_K", "bounded_float", "bounded_int", "build_parser", "check_time_range", "main", "when_arg"]

log = logging.getLogger("narrawatch")

Handler = Callable[[argparse.Namespace], int]
_COMMANDS: dict[str, Handler] = {}


def command(name: str) -> Callable[[Handler], Handler]:
    """Register a sub-command handler under a dotted name (``config.check``)."""

    def deco(fn: Handler) -> Handler:
        _COMMANDS[name] = fn
        return fn

    return deco


def _load(args: argparse.Namespace, *, require_sources: bool = True) -> Config:
    config = load_config(args.config, require_sources=require_sources)
    setup_logging(args.log_level or config.service.log_level, args.log_format or config.service.log_format)
    return config


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2, default=str)
    sys.stdout.write("\n")


# --- config -------------------------------------------------------------------------------


@command("config.check")
def cmd_config_check(args: argparse.Namespace) -> int:
    """Validate the config directory; print every problem as ``file:path: message``."""
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        for issue in exc.issues:
            print(str(issue), file=sys.stderr)
        print(f"{len(exc.issues)} problem(s) in {args.config}", file=sys.stderr)
        return 2
    kinds: dict[str, int] = {}
    for s in config.sources:
        kinds[s.kind] = kinds.get(s.kind, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    extra = "".join(f", {len(v)} {k}" for k, v in config.extra.items() if hasattr(v, "__len__"))
    print(f"ok: {len(config.sources)} sources ({summary}){extra}; data in {config.data_dir}")
    return 0


# --- crawl / run ----------------------------------------------------------------------------


def _progress_printer(sources: Sequence[str]) -> tuple[Callable[[dict[str, Any]], None], Callable[[], None]]:
    """A live rich progress display on a terminal; a no-op otherwise."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        return (lambda e: None), (lambda: None)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[source]}"),
        TextColumn("fetched {task.fields[fetched]} · docs {task.fields[docs]} · dropped {task.fields[dropped]}"),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
    )
    tasks = {
        sid: progress.add_task(sid, total=None, source=sid, fetched=0, docs=0, dropped=0, status="") for sid in sources
    }
    counts: dict[str, dict[str, int]] = {sid: {"fetched": 0, "docs": 0, "dropped": 0} for sid in sources}
    progress.start()

    def on_event(event: dict[str, Any]) -> None:
        sid = event.get("source", "")
        if sid not in tasks:
            return
        kind = event.get("event")
        c = counts[sid]
        if kind == "fetched":
            c["fetched"] += 1
        elif kind == "document":
            c["docs"] += 1
        elif kind == "dropped":
            c["dropped"] += 1
        status = ""
        if kind == "source_done":
            status = "[green]done" if event.get("ok") else "[red]failed"
        fields: dict[str, Any] = dict(c)
        if status:
            fields["status"] = status
        progress.update(tasks[sid], **fields)

    return on_event, progress.stop


def _print_reports(reports: list[SourceReport], as_json: bool) -> None:
    if as_json:
        _print_json([r.as_dict() for r in reports])
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="crawl summary")
    for col in ("source", "fetched", "new", "updated", "unchanged", "dropped", "status"):
        table.add_column(col)
    for r in reports:
        dropped = ", ".join(f"{k}={v}" for k, v in sorted(r.dropped.items())) or "-"
        last = r.errors[-1] if r.errors else "unknown"
        status = "ok" if r.ok else "FAILED: " + (last if len(last) <= 90 else last[:87] + "...")
        table.add_row(r.source_id, str(r.fetched), str(r.new), str(r.updated), str(r.unchanged), dropped, status)
    Console().print(table)


@command("crawl")
def cmd_crawl(args: argparse.Namespace) -> int:
    """One pass over all (or the given) sources."""
    from narrawatch.app import open_app

    config = _load(args)
    if not args.once:
        print("crawl runs one pass and needs --once; use 'narrawatch run' for the service", file=sys.stderr)
        return 2
    sources = args.source or [s.id for s in config.sources if s.enabled and in_shard(s.id, args.shard)]
    for sid in sources:
        config.source(sid)
    with open_app(config) as app:
        from narrawatch.monitoring import attach_monitoring

        monitoring = attach_monitoring(app)
        on_event, stop = _progress_printer(sources)
        try:
            reports = app.pipeline.ingest(sources, on_event=on_event)
        finally:
            stop()
        if monitoring is not None:
            monitoring.after_pass()
        app.pipeline.counters.log(log, "counters")
    _print_reports(reports, args.json)
    return 0 if all(r.ok for r in reports) else 1


@command("run")
def cmd_run(args: argparse.Namespace) -> int:
    """The service: scheduled crawls (and monitoring) until SIGINT/SIGTERM."""
    from narrawatch.app import open_app
    from narrawatch.scheduler import Service

    config = _load(args)
    with open_app(config) as app:
        from narrawatch.monitoring import attach_monitoring

        service = Service(config, app.pipeline, shard=args.shard)
        monitoring = attach_monitoring(app)
        if monitoring is not None:
            service.add_job("monitoring", monitoring.after_pass, timedelta(seconds=30))
        api = None
        if config.service.api.enabled and not args.no_api:
            from narrawatch.api import ApiServer

            api = ApiServer(config, app, host=config.service.api.host, port=config.service.api.port)
            api.start()
            log.info("API and web UI on http://%s:%d/", config.service.api.host, api.port)
        log.info("narrawatch %s: %d sources scheduled; Ctrl-C to stop", __version__, len(config.sources))
        try:
            service.run_forever()
        finally:
            if api is not None:
                api.stop()
            if monitoring is not None:
                monitoring.close()
    return 0


# --- read side ------------------------------------------------------------------------------


def _filters(args: argparse.Namespace) -> SearchFilters:
    return SearchFilters(
        sources=tuple(args.source or ()),
        languages=tuple(args.lang or ()),
        since=args.since,
        until=getattr(args, "until", None),
    )


@command("search")
def cmd_search(args: argparse.Namespace) -> int:
    """Hybrid search over passages, one hit per document."""
    from narrawatch.app import open_app

    config = _load(args)
    with open_app(config, read_only=True) as app:
        vector = app.embedder.embed_query(args.text) if args.mode != "keyword" else None
        hits = app.index.search(
            SearchQuery(text=args.text, vector=vector, k=args.k, mode=args.mode, filters=_filters(args))
        )
    rows: list[dict[str, Any]] = [
        {
            "id": h.document_id,
            "url": h.url,
            "title": h.title,
            "source": h.source_id,
            "language": h.language,
            "published": h.published.isoformat(),
            "score": round(h.score, 6),
            "snippet": h.snippet[:400],
        }
        for h in hits
    ]
    if args.json:
        _print_json(rows)
        return 0
    from rich.console import Console
    from rich.markup import escape

    console = Console()
    if not rows:
        console.print("no results")
    for i, r in enumerate(rows, 1):
        console.print(
            f"[bold]{i}. {escape(r['title'] or '(untitled)')}[/bold]  "
            f"[dim]{escape(r['source'])} · {r['language']} · {r['published'][:16]} · {r['score']:.4f}[/dim]"
        )
        console.print(f"   {escape(r['url'])}")
        console.print(f"   {escape(r['snippet'][:240])}")
    return 0


@command("stats")
def cmd_stats(args: argparse.Namespace) -> int:
    """Documents, passages, counts by source and language, index size, embedding model."""
    from narrawatch.app import open_app

    config = _load(args)
    with open_app(config, read_only=True) as app:
        stats = app.index.stats().as_dict()
        stats["backend"] = config.service.index.backend
    if args.json:
        _print_json(stats)
    else:
        for k, v in stats.items():
            print(f"{k}: {json.dumps(v, ensure_ascii=False, default=str)}")
    return 0


@command("sources")
def cmd_sources(args: argparse.Namespace) -> int:
    """Per-source health: last success, last error, consecutive failures, items in 24 h."""
    from crawlers.state import CrawlStateStore

    config = _load(args)
    store = CrawlStateStore(config.data_dir / "state.db")
    now = utcnow()
    rows = []
    for s in config.sources:
        h = store.health(s.id, now)
        h.update({"kind": s.kind, "enabled": s.enabled, "every": str(s.every)})
        rows.append(h)
    store.close()
    rows.sort(key=lambda r: (-r["consecutive_failures"], r["id"]))
    if args.json:
        _print_json(rows)
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="sources (failing first)")
    for col in ("id", "kind", "last success", "failures", "items 24h", "last error", "notes"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["id"],
            r["kind"],
            (r["last_success"] or "never")[:19],
            str(r["consecutive_failures"]),
            str(r["items_24h"]),
            (r["last_error"] or "")[:80],
            r.get("notes", ""),
        )
    Console().print(table)
    return 0


@command("export")
def cmd_export(args: argparse.Namespace) -> int:
    """One document per line (JSONL) with full text and metadata."""
    from narrawatch.app import open_app

    config = _load(args)
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
    n = 0
    try:
        with open_app(config, read_only=True) as app:
            for doc in app.index.iter_documents(_filters(args)):
                out.write(json.dumps(document_to_dict(doc, passages=False), ensure_ascii=False) + "\n")
                n += 1
    finally:
        if out is not sys.stdout:
            out.close()
    log.info("exported %d documents", n)
    return 0


# --- parser -------------------------------------------------------------------------------


MAX_K = 1000
"""Most documents one ``search`` returns (``-k``); the API pages instead (``page_size`` <= 100)."""


def bounded_int(lo: int, hi: int) -> Callable[[str], int]:
    """argparse type: an integer in ``lo..hi`` (a usage error, exit 2, otherwise)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is out of range; use {lo}..{hi}")
        return value

    return parse


def bounded_float(lo: float, hi: float, *, open_low: bool = False) -> Callable[[str], float]:
    """argparse type: a number in ``lo..hi`` (``open_low``: above ``lo``), else a usage error."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not (lo < value <= hi if open_low else lo <= value <= hi):  # also false for NaN
            raise argparse.ArgumentTypeError(f"{text} is out of range; use {'>' if open_low else ''}{lo}..{hi}")
        return value

    return parse


def check_time_range(args: argparse.Namespace) -> str | None:
    """The usage error when ``--since`` is not before ``--until`` (that range holds nothing), else None."""
    since, until = getattr(args, "since", None), getattr(args, "until", None)
    if isinstance(since, datetime) and isinstance(until, datetime) and since >= until:
        return f"--since {since.isoformat()} is not before --until {until.isoformat()}: the range is empty"
    return None


def when_arg(text: str) -> datetime | None:
    """argparse type for ``--since/--until``: a clear usage error on bad input."""
    try:
        return parse_when(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_filter_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lang", action="append", help="language code (repeatable)")
    p.add_argument("--source", action="append", help="source id (repeatable)")
    p.add_argument("--since", type=when_arg, help="e.g. 7d, 12h, or an ISO date")
    p.add_argument("--until", type=when_arg, help="e.g. 1d, or an ISO date (exclusive)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (sub-commands register their handler as ``func``)."""
    parser = argparse.ArgumentParser(prog="narrawatch", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--config", type=Path, default=Path(os.environ.get("NARRAWATCH_CONFIG", "config")), help="config directory"
    )
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--log-format", choices=["text", "json"])
    parser.add_argument("--version", action="version", version=f"narrawatch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    cfg = sub.add_parser("config", help="configuration tools").add_subparsers(dest="sub", required=True)
    cfg.add_parser("check", help="validate the config directory").set_defaults(func="config.check")

    p = sub.add_parser("crawl", help="crawl sources once")
    p.add_argument("--once", action="store_true", help="one pass (required)")
    p.add_argument("--source", action="append", help="only this source id (repeatable)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--shard", type=parse_shard, help="I/N: only sources whose id hashes to shard I of N")
    p.set_defaults(func="crawl")

    p = sub.add_parser("run", help="run the scheduled service")
    p.add_argument("--shard", type=parse_shard, help="I/N: run only sources whose id hashes to shard I of N")
    p.add_argument("--no-api", action="store_true", help="do not start the HTTP API and web UI")
    p.set_defaults(func="run")

    p = sub.add_parser("search", help="hybrid keyword + semantic search")
    p.add_argument("text")
    p.add_argument("-k", type=bounded_int(1, MAX_K), default=10, help=f"number of documents, 1..{MAX_K} (default 10)")
    p.add_argument("--mode", choices=["hybrid", "keyword", "semantic"], default="hybrid")
    p.add_argument("--json", action="store_true")
    _add_filter_args(p)
    p.set_defaults(func="search")

    p = sub.add_parser("stats", help="index statistics")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func="stats")

    p = sub.add_parser("sources", help="per-source health")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func="sources")

    p = sub.add_parser("export", help="export documents")
    p.add_argument("--format", choices=["jsonl"], default="jsonl")
    p.add_argument("--output", "-o", help="file (default stdout)")
    _add_filter_args(p)
    p.set_defaults(func="export")

    from narrawatch.cli import matches as cli_matches
    from narrawatch.cli import more as cli_more

    cli_more.add_commands(sub, command)
    cli_matches.add_commands(sub, command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``narrawatch`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    bad_range = check_time_range(args)
    if bad_range:
        print(f"{parser.prog}: error: {bad_range}", file=sys.stderr)
        return 2
    handler = _COMMANDS[args.func]
    try:
        with inert_stdio():  # scraped text's bidi controls reach the terminal as inert \u202e escapes
            return handler(args)
    except ConfigError as exc:
        for issue in exc.issues:
            print(str(issue), file=sys.stderr)
        return 2
    except NarrawatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
