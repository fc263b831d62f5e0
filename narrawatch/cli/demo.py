"""``narrawatch demo``: real bundled content replayed over loopback through the whole pipeline."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.logging import setup_logging
from narrawatch.cli.args import Register

__all__ = ["add_commands", "cmd_demo"]


def cmd_demo(args: argparse.Namespace) -> int:
    """Offline demo on real bundled content (see :mod:`narrawatch.demo`)."""
    from narrawatch.demo import run_demo  # the replay server and the whole pipeline: this command only

    setup_logging(args.log_level or "WARNING", args.log_format or "text")
    return run_demo(Path(args.dir).resolve(), json_out=args.json)


def add_commands(sub: Any, command: Register) -> None:
    """Add ``demo`` to ``sub`` (an argparse sub-parsers object)."""
    command("demo")(cmd_demo)
    p = sub.add_parser("demo", help="offline demo: replay real content over loopback through the whole pipeline")
    p.add_argument("--dir", default="demo", help="work directory (default ./demo)")
    p.add_argument("--json", action="store_true", help="print the crawl summary as JSON")
    p.set_defaults(func="demo")
