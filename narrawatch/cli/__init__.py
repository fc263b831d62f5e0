"""The ``narrawatch`` command line.

This module is the parser and the command groups it mounts.

Every command takes ``--config DIR`` (default ``$NARRAWATCH_CONFIG`` or ``./config``).
Exit codes: 0 ok, 1 a command failed (e.g. a source failed), 2 bad usage or invalid config.

Each command group is one module with ``add_commands(sub, command)``; :data:`GROUPS` lists them
in the order ``--help`` shows them. Commands get their parts from an :class:`narrawatch.app.App`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

from core.errors import ConfigError, NarrawatchError
from core.safe_text import inert_stdio
from narrawatch import __version__
from narrawatch.builtins import register_builtins
from narrawatch.cli import (
    alerting,
    demo,
    evidence,
    index,
    ingest,
    matches,
    narratives,
    rules,
    search,
    serve,
    sources,
    trace,
)
from narrawatch.cli.args import MAX_K, Handler, bounded_float, bounded_int, check_time_range, when_arg

__all__ = ["GROUPS", "MAX_K", "bounded_float", "bounded_int", "build_parser", "check_time_range", "main", "when_arg"]

log = logging.getLogger("narrawatch")

GROUPS: tuple[ModuleType, ...] = (
    ingest,
    sources,
    search,
    demo,
    narratives,
    alerting,
    rules,
    trace,
    evidence,
    serve,
    index,
    matches,
)
"""The command groups the parser mounts, in ``--help`` order."""


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Handler]]:
    """The argument parser and its handlers by dotted name (``alerts.list``; each sub-command's
    ``func`` default names its handler)."""
    parser = argparse.ArgumentParser(prog="narrawatch", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--config", type=Path, default=Path(os.environ.get("NARRAWATCH_CONFIG", "config")), help="config directory"
    )
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--log-format", choices=["text", "json"])
    parser.add_argument("--version", action="version", version=f"narrawatch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    handlers: dict[str, Handler] = {}

    def command(name: str) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            if name in handlers:
                raise ValueError(f"command {name!r} registered twice")
            handlers[name] = fn
            return fn

        return register

    for group in GROUPS:
        group.add_commands(sub, command)
    return parser, handlers


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``narrawatch`` console script."""
    register_builtins()  # before any command loads a config
    parser, handlers = build_parser()
    args = parser.parse_args(argv)
    bad_range = check_time_range(args)
    if bad_range:
        print(f"{parser.prog}: error: {bad_range}", file=sys.stderr)
        return 2
    handler = handlers[args.func]
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
