"""The write side: ``config check``, ``crawl``, ``run``, ``stats``, ``export``.

``sources`` (metadata, health, import/export) lives in :mod:`narrawatch.cli.sources`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from core.errors import ConfigError
from core.serialize import document_to_dict
from core.settings import load_config
from narrawatch.app import open_app
from narrawatch.cli.args import Register, add_filter_args, load, search_filters
from narrawatch.terminal import print_json, print_reports, progress_printer

__all__ = ["add_commands"]

log = logging.getLogger("narrawatch")


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
    disabled = 0
    for s in config.sources:
        kinds[s.kind] = kinds.get(s.kind, 0) + 1
        if s.disabled_reason:  # valid, but lacks a prerequisite (a token): say so, not an error
            disabled += 1
            print(f"sources.{s.id}: {s.disabled_reason}")
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    extra = "".join(f", {len(v)} {k}" for k, v in config.extra.items() if hasattr(v, "__len__"))
    off = f"; {disabled} disabled (see above)" if disabled else ""
    print(f"ok: {len(config.sources)} sources ({summary}){extra}{off}; data in {config.data_dir}")
    return 0


def cmd_crawl(args: argparse.Namespace) -> int:
    """One pass over all (or the given) sources."""
    # the topology pulls in the matcher and detectors: only crawl and run need it
    from narrawatch.topology import crawl_once

    config = load(args, require_sources=True)
    if not args.once:
        print("crawl runs one pass and needs --once; use 'narrawatch run' for the service", file=sys.stderr)
        return 2
    sources = args.source or [s.id for s in config.sources if s.enabled and not s.disabled_reason]
    for sid in sources:
        config.source(sid)
    with open_app(config) as app:
        on_event, stop = progress_printer(sources)
        try:
            reports = crawl_once(app, sources, on_event=on_event)
        finally:
            stop()
    print_reports(reports, args.json)
    return 0 if all(r.ok for r in reports) else 1


def cmd_run(args: argparse.Namespace) -> int:
    """The service: scheduled crawls (and monitoring) until SIGINT/SIGTERM."""
    from narrawatch.topology import run_service  # the matcher, detectors and scheduler, as in crawl

    with open_app(load(args, require_sources=True)) as app:
        run_service(app, with_api=not args.no_api)
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    """Documents, passages, counts by source and language, index size, embedding model."""
    config = load(args, require_sources=True)
    with open_app(config, read_only=True) as app:
        stats = app.index.stats().as_dict()
        stats["backend"] = config.service.index.backend
    if args.json:
        print_json(stats)
    else:
        for k, v in stats.items():
            print(f"{k}: {json.dumps(v, ensure_ascii=False, default=str)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """One document per line (JSONL) with full text and metadata."""
    config = load(args, require_sources=True)
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
    n = 0
    try:
        with open_app(config, read_only=True) as app:
            for doc in app.index.iter_documents(search_filters(args)):
                out.write(json.dumps(document_to_dict(doc, passages=False), ensure_ascii=False) + "\n")
                n += 1
    finally:
        if out is not sys.stdout:
            out.close()
    log.info("exported %d documents", n)
    return 0


def add_commands(sub: Any, command: Register) -> None:
    """Add ``config check``, ``crawl``, ``run``, ``stats``, ``export`` to ``sub``."""
    for name, fn in (
        ("config.check", cmd_config_check),
        ("crawl", cmd_crawl),
        ("run", cmd_run),
        ("stats", cmd_stats),
        ("export", cmd_export),
    ):
        command(name)(fn)

    cfg = sub.add_parser("config", help="configuration tools").add_subparsers(dest="sub", required=True)
    cfg.add_parser("check", help="validate the config directory").set_defaults(func="config.check")

    p = sub.add_parser("crawl", help="crawl sources once")
    p.add_argument("--once", action="store_true", help="one pass (required)")
    p.add_argument("--source", action="append", help="only this source id (repeatable)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func="crawl")

    p = sub.add_parser("run", help="run the scheduled service")
    p.add_argument("--no-api", action="store_true", help="do not start the HTTP API and web UI")
    p.set_defaults(func="run")

    p = sub.add_parser("stats", help="index statistics")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func="stats")

    p = sub.add_parser("export", help="export documents")
    p.add_argument("--format", choices=["jsonl"], default="jsonl")
    p.add_argument("--output", "-o", help="file (default stdout)")
    add_filter_args(p)
    p.set_defaults(func="export")
