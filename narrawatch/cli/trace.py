"""``narrawatch trace`` (a claim, URL, document or narrative across outlets, languages and time)
and ``narrawatch themes`` (emerging themes among recent unmatched passages)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from core.markup import strip_markup
from narrawatch.app import open_app
from narrawatch.cli.args import Register, bounded_float, bounded_int, load, when_arg
from narrawatch.terminal import print_json

__all__ = ["TRACE_MAX_ITEMS", "add_commands"]

TRACE_MAX_ITEMS = 1000
"""``trace --max-items``: the same ceiling as the API's ``limit``."""


def cmd_trace(args: argparse.Namespace) -> int:
    """Trace a claim, URL, document or narrative across outlets, languages and time."""
    # spread (numpy, networkx, matplotlib) and normalize (courlan): only trace needs them
    from crawlers.normalize import canonical_url
    from monitors.spread import TraceQuery
    from narrawatch.read.trace import trace, write_exports

    query = TraceQuery(
        claim=args.claim or "",
        url=canonical_url(args.url) if args.url else "",
        document_id=args.document or "",
        narrative_id=args.narrative or "",
        since=args.since,
        until=args.until,
        languages=tuple(args.lang or ()),
        sources=tuple(args.source or ()),
        threshold=args.threshold,
        max_items=args.max_items,
    )
    with open_app(load(args), read_only=True) as app:
        view = trace(app, query)
    if args.export_dir:
        out = Path(args.export_dir)
        names = " ".join(p.name for p in write_exports(view, out))
        print(f"exports written to {out}: {names}", file=sys.stderr)
    data = view.as_dict()
    if args.json:
        print_json(data)
        return 0
    _print_trace(data)
    return 0


def _print_trace(data: dict[str, Any]) -> None:
    items = data.get("items", [])
    first = data.get("first_appearances", {})
    print(f"{len(items)} items; first appearance: {first.get('overall')}; per language: {first.get('by_language')}")
    for it in items[:50]:
        print(
            f"  {str(it.get('published'))[:16]}  {it.get('outlet', ''):28} {it.get('language', ''):3} "
            f"{it.get('similarity', 0):.3f}  {strip_markup(str(it.get('passage') or it.get('title') or ''))[:90]!r}"
        )
        for c in it.get("carriers", []):
            print(f"      carried by {c['source']} ({c['outlet']}) first seen {c['first_seen'][:16]}")
    print(
        f"{len(data.get('copy_groups', []))} copy groups, {len(data.get('translation_groups', []))} translation "
        f"groups, {len(data.get('edges', []))} edges"
    )


def cmd_themes(args: argparse.Namespace) -> int:
    """Emerging themes: clusters of recent unmatched passages; --promote N writes a draft narrative."""
    from narrawatch.read.themes import list_themes, promote_theme_to_draft  # numpy clustering: this command only

    with open_app(load(args), read_only=True) as app:
        themes = list_themes(app, args.since, args.until, min_size=args.min_size, max_themes=args.max)
        if args.promote is not None:
            if not 1 <= args.promote <= len(themes) or not args.id:
                print(f"--promote takes a theme number 1..{len(themes)} and --id NARRATIVE_ID", file=sys.stderr)
                return 2
            promoted = promote_theme_to_draft(app, themes[args.promote - 1], args.id)
            print(
                f"draft narrative written to {promoted.path} (enabled: false; review its exemplars, "
                "then move it into <config>/narratives/ and enable it)"
            )
            return 0
    if args.json:
        print_json([t.as_dict() for t in themes])
        return 0
    if not themes:
        print("no emerging themes")
    for i, t in enumerate(themes, 1):
        d = t.as_dict()
        print(
            f"{i}. {d.get('label')}  ({len(d.get('documents', []))} documents, {len(d.get('outlets', []))} outlets, "
            f"growth {d.get('growth')})"
        )
    return 0


def add_commands(sub: Any, command: Register) -> None:
    """Add ``trace`` and ``themes`` to ``sub`` (an argparse sub-parsers object)."""
    command("trace")(cmd_trace)
    command("themes")(cmd_themes)

    p = sub.add_parser("trace", help="trace a claim, URL, document or narrative: timeline, copies, graph")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--claim", help="claim text, any language")
    what.add_argument("--url", help="URL of an indexed document")
    what.add_argument("--document", help="document id")
    what.add_argument("--narrative", help="narrative id")
    p.add_argument("--since", type=when_arg)
    p.add_argument("--until", type=when_arg)
    p.add_argument("--lang", action="append")
    p.add_argument("--source", action="append")
    p.add_argument(
        "--threshold", type=bounded_float(-1.0, 1.0), help="similarity threshold, -1..1 (default: the space's)"
    )
    p.add_argument("--max-items", type=bounded_int(1, TRACE_MAX_ITEMS), default=500, help="1..1000 (default 500)")
    p.add_argument("--export-dir", help="write items.csv/jsonl, graph.gexf/graphml, timeline.png/svg here")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func="trace")

    p = sub.add_parser("themes", help="emerging themes among recent unmatched passages")
    p.add_argument(
        "--since", type=when_arg, help="start (ISO or duration); default: 7 days before the newest stored document"
    )
    p.add_argument("--until", type=when_arg, help="end, exclusive; default: the newest stored document's day")
    p.add_argument("--min-size", type=bounded_int(1, 10_000), default=5, help="distinct texts a theme needs")
    p.add_argument("--max", type=bounded_int(1, 1000), default=20, help="themes to show, 1..1000")
    p.add_argument("--promote", type=int, help="theme number to promote to a draft narrative")
    p.add_argument("--id", help="narrative id for --promote")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func="themes")
