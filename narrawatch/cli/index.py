"""``narrawatch index create|status|reindex``: the index lifecycle for the configured backend.

Each backend implements :class:`index.base.IndexLifecycle`; this command only asks it.
"""

from __future__ import annotations

import argparse
from typing import Any

from narrawatch.app import open_app
from narrawatch.cli.args import Register
from narrawatch.cli.args import load as _config
from narrawatch.terminal import print_json as _out

__all__ = ["add_commands", "cmd_index"]


def cmd_index(args: argparse.Namespace) -> int:
    """index create | status | reindex, for the configured backend."""
    with open_app(_config(args)) as app:
        if args.action == "status":
            _out(app.lifecycle.status())
        elif args.action == "create":
            print(app.lifecycle.create(app.embedder.space))
        else:
            _out(app.lifecycle.reindex(app.embedder))
    return 0


def add_commands(sub: Any, command: Register) -> None:
    """Add ``index ...`` to ``sub`` (an argparse sub-parsers object)."""
    command("index")(cmd_index)
    p = sub.add_parser("index", help="index lifecycle: create | status | reindex (model change)")
    p.add_argument("action", choices=["create", "status", "reindex"])
    p.set_defaults(func="index")
