"""``narrawatch search``: the read model's search (query syntax, filters, sort, copies grouped),
a page of results, or a streamed export of every result (``--export csv|jsonl``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import IO, Any

from pydantic import ValidationError

from core.errors import QuerySyntaxError, UnknownFilterValue
from core.markup import strip_markup
from narrawatch.app import open_app
from narrawatch.cli.args import MAX_K, Register, add_filter_args, bounded_int, load
from narrawatch.read.params import MAX_PAGE, SearchParams
from narrawatch.read.search import EXPORT_FIELDS, export_rows, iter_csv, iter_jsonl, search
from narrawatch.terminal import print_json

__all__ = ["add_commands", "cmd_search"]


def _params(args: argparse.Namespace) -> SearchParams:
    return SearchParams(
        q=args.text,
        mode=args.mode,
        sort=args.sort,
        sources=args.source or [],
        languages=args.lang or [],
        kinds=args.kind or [],
        since=args.since,
        until=args.until,
        page=args.page,
        page_size=args.k,
    )


def _progress(rows: Iterator[dict[str, Any]], stream: IO[str]) -> Iterator[dict[str, Any]]:
    """Count rows on ``stream`` (a terminal) every 500 rows and at the end."""
    n = 0
    for n, row in enumerate(rows, start=1):
        if n % 500 == 0:
            stream.write(f"\rexported {n} rows")
            stream.flush()
        yield row
    stream.write(f"\rexported {n} rows\n")
    stream.flush()


def _export(app: Any, params: SearchParams, fmt: str, out: str | None) -> None:
    rows = export_rows(app, params)
    first = next(rows, None)  # the search runs (and fails) before the output file is created

    def all_rows() -> Iterator[dict[str, Any]]:
        if first is not None:
            yield first
            yield from rows

    source = _progress(all_rows(), sys.stderr) if sys.stderr.isatty() else all_rows()
    chunks = iter_csv(source, EXPORT_FIELDS) if fmt == "csv" else iter_jsonl(source)
    if out is None or out == "-":
        for chunk in chunks:
            sys.stdout.write(chunk)
        sys.stdout.flush()
        return
    with open(out, "w", encoding="utf-8", newline="") as fh:
        for chunk in chunks:
            fh.write(chunk)


def cmd_search(args: argparse.Namespace) -> int:
    """Search with the query syntax; a page of results, ``--json`` records or a streamed export."""
    config = load(args, require_sources=True)
    try:
        params = _params(args)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'search'}: {e['msg']}" for e in exc.errors())
        print(f"narrawatch search: error: {problems}", file=sys.stderr)
        return 2
    with open_app(config, read_only=True) as app:
        try:
            if args.export:
                _export(app, params, args.export, args.output)
                return 0
            page = search(app, params)
        except (QuerySyntaxError, UnknownFilterValue) as exc:
            print(f"narrawatch search: error: {exc}", file=sys.stderr)
            return 2
    rows = [r.as_dict() for r in page.results]
    if args.json:
        print_json(rows)
        return 0
    # rich is imported on use: --json never pays for it
    from rich.console import Console
    from rich.markup import escape

    console = Console()
    more = "+" if page.total_is_lower_bound else ""
    console.print(
        f"[dim]{page.total}{more} results ({page.total_documents} documents with copies) · page {page.page}"
        f" of {max(page.pages, 1)} · {page.mode} · sorted by {page.sort}[/dim]"
    )
    if not rows:
        console.print("no results")
    for r in rows:
        copies = f" · +{r['copies']['count']} copies" if r["copies"]["count"] else ""
        views = f" · {r['views']} views" if r["views"] is not None else ""
        console.print(
            f"[bold]{r['rank']}. {escape(strip_markup(r['title'] or '') or '(untitled)')}[/bold]  "
            f"[dim]{escape(r['source_id'])} · {r['language']} · {(r['published'] or '')[:16]} · {r['score']:.4f}"
            f"{views}{copies}[/dim]"
        )
        console.print(f"   {escape(r['url'])}")
        console.print(f"   {escape(strip_markup(r['passage']['text'])[:240])}")
    return 0


def add_commands(sub: Any, command: Register) -> None:
    """Add ``search`` to ``sub`` (an argparse sub-parsers object)."""
    command("search")(cmd_search)
    p = sub.add_parser(
        "search",
        help='search with the query syntax ("phrases", OR, -word, source: lang: outlet: kind: actor: country: tag:)',
    )
    p.add_argument("text", help="the query, e.g. '\"ядерного оружия\" -учения lang:ru'")
    p.add_argument("-k", type=bounded_int(1, MAX_K), default=10, help=f"results per page, 1..{MAX_K} (default 10)")
    p.add_argument("--page", type=bounded_int(1, MAX_PAGE), default=1, help="page number (default 1)")
    p.add_argument("--mode", choices=["hybrid", "keyword", "semantic"], default="hybrid")
    p.add_argument("--sort", choices=["relevance", "newest", "oldest", "views"], default="relevance")
    p.add_argument("--kind", action="append", help="source kind (repeatable)")
    p.add_argument("--json", action="store_true", help="the page's result records as JSON")
    p.add_argument(
        "--export",
        choices=["csv", "jsonl"],
        help="stream every result (originals, then their copies) instead of a page",
    )
    p.add_argument("-o", "--output", help="with --export: write to this file (default stdout)")
    add_filter_args(p)
    p.set_defaults(func="search")
