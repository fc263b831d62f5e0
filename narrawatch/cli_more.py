"""Sub-commands beyond ingest and search: demo (and the monitoring side as it lands).

Kept apart from cli.py so each module stays small; registered by :func:`add_commands`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.logging import setup_logging

__all__ = ["add_commands"]

Register = Callable[[str], Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]]


def cmd_demo(args: argparse.Namespace) -> int:
    """Offline demo on real bundled content (see narrawatch.demo)."""
    from narrawatch.demo import run_demo

    setup_logging(args.log_level or "WARNING", args.log_format or "text")
    return run_demo(Path(args.dir).resolve(), json_out=args.json)


def add_commands(sub: Any, command: Register) -> None:
    """Add the extra sub-commands to ``sub`` (an argparse sub-parsers object)."""
    command("demo")(cmd_demo)
    p = sub.add_parser("demo", help="offline demo: replay real content over loopback through the whole pipeline")
    p.add_argument("--dir", default="demo", help="work directory (default ./demo)")
    p.add_argument("--json", action="store_true", help="print the crawl summary as JSON")
    p.set_defaults(func="demo")
