"""``narrawatch serve`` (the HTTP API and web UI) and ``narrawatch token`` (API tokens)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from narrawatch.app import open_app
from narrawatch.cli.args import Register, bounded_int, load
from narrawatch.terminal import print_json

__all__ = ["add_commands"]


def cmd_serve(args: argparse.Namespace) -> int:
    """The HTTP API and web UI (index opened read-only, so a crawl may run beside it)."""
    from narrawatch.server import serve  # FastAPI and uvicorn: only serve needs them

    config = load(args)
    with open_app(config, read_only=True) as app:
        serve(config, host=args.host or config.service.api.host, port=args.port or config.service.api.port, app=app)
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    """API tokens: create (printed once), revoke, list."""
    with open_app(load(args)) as app:
        if args.action == "create":
            if not args.name:
                print("token create needs a NAME", file=sys.stderr)
                return 2
            token = app.tokens.create(args.name, args.role)
            print(token)
            print(f"token {args.name!r} ({args.role}) created; it is shown only this once", file=sys.stderr)
            return 0
        if args.action == "revoke":
            ok = app.tokens.revoke(args.name or "")
            print("revoked" if ok else f"no active token named {args.name!r}")
            return 0 if ok else 1
        print_json([t.as_dict() for t in app.tokens.list()])
    return 0


def add_commands(sub: Any, command: Register) -> None:
    """Add ``serve`` and ``token`` to ``sub`` (an argparse sub-parsers object)."""
    command("serve")(cmd_serve)
    command("token")(cmd_token)

    p = sub.add_parser("serve", help="HTTP API and web UI")
    p.add_argument("--host", help="default api.host (127.0.0.1)")
    p.add_argument("--port", type=bounded_int(0, 65535), help="default api.port (8765)")
    p.set_defaults(func="serve")

    p = sub.add_parser("token", help="API tokens: create NAME --role read|analyst | revoke NAME | list")
    p.add_argument("action", choices=["create", "revoke", "list"])
    p.add_argument("name", nargs="?")
    p.add_argument("--role", choices=["read", "analyst"], default="read")
    p.set_defaults(func="token")
