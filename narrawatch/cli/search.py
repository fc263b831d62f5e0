"""``narrawatch search``: hybrid keyword + semantic search, one hit per document."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pydantic import ValidationError

from core.markup import strip_markup
from narrawatch.app import open_app
from narrawatch.cli.args import MAX_K, Register, add_filter_args, bounded_int, load
from narrawatch.read.params import SearchParams
from narrawatch.read.search import ranked
from narrawatch.terminal import print_json

__all__ = ["add_commands", "cmd_search"]


def cmd_search(args: argparse.Namespace) -> int:
    """Hybrid search over passages, one hit per document (the API's ranking and hit shape)."""
    config = load(args, require_sources=True)
    try:
        params = SearchParams(
            q=args.text,
            mode=args.mode,
            sources=args.source or [],
            languages=args.lang or [],
            since=args.since,
            until=args.until,
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'search'}: {e['msg']}" for e in exc.errors())
        print(f"narrawatch search: error: {problems}", file=sys.stderr)
        return 2
    with open_app(config, read_only=True) as app:
        rows = [r.as_dict() for r in ranked(app, params, args.k)]
    if args.json:
        print_json(rows)
        return 0
    # rich is imported on use: --json never pays for it
    from rich.console import Console
    from rich.markup import escape

    console = Console()
    if not rows:
        console.print("no results")
    for r in rows:
        console.print(
            f"[bold]{r['rank']}. {escape(strip_markup(r['title'] or '') or '(untitled)')}[/bold]  "
            f"[dim]{escape(r['source_id'])} · {r['language']} · {(r['published'] or '')[:16]} · {r['score']:.4f}[/dim]"
        )
        console.print(f"   {escape(r['url'])}")
        console.print(f"   {escape(strip_markup(r['passage']['text'])[:240])}")
    return 0


def add_commands(sub: Any, command: Register) -> None:
    """Add ``search`` to ``sub`` (an argparse sub-parsers object)."""
    command("search")(cmd_search)
    p = sub.add_parser("search", help="hybrid keyword + semantic search")
    p.add_argument("text")
    p.add_argument("-k", type=bounded_int(1, MAX_K), default=10, help=f"number of documents, 1..{MAX_K} (default 10)")
    p.add_argument("--mode", choices=["hybrid", "keyword", "semantic"], default="hybrid")
    p.add_argument("--json", action="store_true")
    add_filter_args(p)
    p.set_defaults(func="search")
