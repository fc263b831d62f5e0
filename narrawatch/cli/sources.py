"""``sources``: the configured sources with their metadata and health, and source lists in and out.

* ``narrawatch sources [--json]``: per source: status, actor type, country, platform, language,
  tags, last success, failures in a row, items in 24 h, documents, last error.
* ``narrawatch sources import FILE [--dry-run] [--format csv|opml] [--print]``: validate a CSV or
  OPML list through the source models; print what would be added (``+``), changed (``~``), left as
  it is (``=``) and refused (``!``, with why); without ``--dry-run`` write it to
  ``<data_dir>/sources.d/imported.yaml`` (``--print``: print the YAML entries for the operator
  instead of writing). Exit 2 when a row is invalid (every error as ``file:row N: message``).
* ``narrawatch sources export --format csv|opml [-o FILE]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from core.documents import utcnow
from core.errors import ConfigError
from narrawatch.app import open_app
from narrawatch.cli.args import Register, load
from narrawatch.read.sources import source_health
from narrawatch.source_lists import apply_plan, export_csv, export_opml, plan_import, source_yaml
from narrawatch.terminal import print_json, print_table

__all__ = ["add_commands"]


def cmd_sources(args: argparse.Namespace) -> int:
    """Per-source metadata and health: status, actor, country, platform, language, tags, last success..."""
    config = load(args, require_sources=True)
    with open_app(config, read_only=True) as app:
        rows = [s.as_dict() for s in source_health(app, utcnow())]
    if args.json:
        print_json(rows)
        return 0
    print_table(
        "sources (failing first)",
        (
            "id",
            "status",
            "actor",
            "country",
            "platform",
            "lang",
            "tags",
            "last success",
            "failures",
            "items 24h",
            "documents",
            "last error",
            "notes",
        ),
        [
            (
                r["id"],
                r["status"],
                r.get("actor_label") or "-",
                r.get("country") or "-",
                r["platform"],
                r.get("language") or "-",
                ", ".join(r.get("tags") or ()),
                (r["last_success"] or "never")[:19],
                str(r["consecutive_failures"]),
                str(r["items_24h"]),
                str(r["documents"]),
                (r["last_error"] or "")[:80],
                r.get("notes", ""),
            )
            for r in rows
        ],
    )
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Validate a source list, print the plan, and (without ``--dry-run``) apply it."""
    config = load(args)
    path: Path = args.file
    try:
        data = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as exc:
        print(f"error: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    plan = plan_import(config, data, path.name if str(path) != "-" else "stdin", args.format)
    for issue in plan.issues:
        print(str(issue), file=sys.stderr)
    for line in plan.lines()[len(plan.issues) :]:
        print(line, file=sys.stderr if args.print else sys.stdout)  # --print: stdout is the YAML alone
    summary = (
        f"{len(plan.added)} to add, {len(plan.changed)} to change, {len(plan.unchanged)} unchanged,"
        f" {len(plan.blocked)} not applied, {len(plan.issues)} invalid"
    )
    if not plan.ok:
        print(f"{summary}: nothing imported", file=sys.stderr)
        return 2
    if args.print:
        print(source_yaml([*plan.added, *(new for _, new in plan.changed)]), end="")
        return 0
    if args.dry_run or not (plan.added or plan.changed):
        print(f"{summary}{' (dry run)' if args.dry_run else ''}")
        return 0
    try:
        target = apply_plan(config, plan)
    except ConfigError as exc:
        for problem in exc.issues:
            print(str(problem), file=sys.stderr)
        print("the config would not load with these sources: nothing imported", file=sys.stderr)
        return 2
    print(f"{summary}; written to {target} (the running service reads it on its next config reload)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Every configured source as CSV or OPML (metadata included)."""
    config = load(args, require_sources=True)
    text = export_opml(config.sources) if args.format == "opml" else export_csv(config.sources)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def add_commands(sub: Any, command: Register) -> None:
    """Add ``sources``, ``sources import`` and ``sources export`` to ``sub``."""
    command("sources")(cmd_sources)
    command("sources.import")(cmd_import)
    command("sources.export")(cmd_export)

    p = sub.add_parser("sources", help="per-source metadata and health; import/export source lists")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func="sources")
    actions = p.add_subparsers(dest="sources_command", metavar="ACTION")

    imp = actions.add_parser("import", help="import a CSV or OPML source list (validated; --dry-run)")
    imp.add_argument("file", type=Path, help="the list (- for stdin)")
    imp.add_argument("--dry-run", action="store_true", help="print what would change; write nothing")
    imp.add_argument("--format", choices=["csv", "opml"], help="default: from the file name or content")
    imp.add_argument("--print", action="store_true", help="print the new entries as YAML instead of writing")
    imp.set_defaults(func="sources.import")

    exp = actions.add_parser("export", help="export every source as CSV or OPML")
    exp.add_argument("--format", choices=["csv", "opml"], default="csv")
    exp.add_argument("--output", "-o", help="file (default stdout)")
    exp.set_defaults(func="sources.export")
