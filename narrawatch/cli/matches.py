"""``narrawatch matches list|show|confirm|reject|export-verdicts``: analysts' review of matches.

An unknown match id is an error like an unknown alert id in ``alerts ack`` (one line on stderr,
exit 1).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Literal

from narrawatch.app import open_app
from narrawatch.cli.args import Register, bounded_int, load
from narrawatch.read.narratives import list_matches, match_detail, record_verdict
from narrawatch.terminal import print_json
from narrawatch.verdict_export import app_verdict_gold_lines, verdict_gold_text

__all__ = ["add_commands"]


def _default_analyst() -> str:
    return os.environ.get("USER") or "cli"


def cmd_matches_list(args: argparse.Namespace) -> int:
    """Stored matches, newest first, with their verdicts (the API's match shape)."""
    with open_app(load(args), read_only=True) as app:
        rows = [
            m.as_dict() for m in list_matches(app, narrative_id=args.narrative, verdict=args.verdict, limit=args.limit)
        ]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no matches")
    for r in rows:
        verdict = (r["verdict"] or {}).get("verdict") or "-"
        print(
            f"{r['id']}  {r['narrative_id']:28} {r['tier']:7} {r['score']:.3f}  {(r['published'] or '')[:16]}  "
            f"{verdict:9} {str(r['outlet'])[:40]}"
        )
    return 0


def cmd_matches_show(args: argparse.Namespace) -> int:
    """One match: evidence passage, reasons, decision, and its verdict."""
    with open_app(load(args), read_only=True) as app:
        data = match_detail(app, args.id).as_dict()
    if args.json:
        print_json(data)
        return 0
    print(f"match {data['id']}  narrative {data['narrative_id']}  tier {data['tier']}  score {data['score']:.3f}")
    print(f"{data['outlet']} · {data['language']} · {(data['published'] or '')[:16]} · {data['url']}")
    if data["title"]:
        print(f"title: {data['title']}")
    prob = "" if data["probability"] is None else f" (probability {data['probability']:.3f})"
    print(f"decision: {data['decision']}{prob}")
    print("\n" + data["passage"].strip() + "\n")
    if data["reasons"]:
        print("reasons:")
        for reason in data["reasons"]:
            print(f"  - {reason}")
    v = data["verdict"]
    if v is None:
        print("verdict: none")
    else:
        print(f"verdict: {v['verdict']} by {v['analyst']} at {v['at'][:19]}" + (f": {v['note']}" if v["note"] else ""))
    return 0


def _judge(args: argparse.Namespace, verdict: Literal["confirmed", "rejected"]) -> int:
    with open_app(load(args)) as app:
        v = record_verdict(app, args.id, verdict, analyst=args.by or _default_analyst(), note=args.note or "")
    print(f"{v.verdict}: match {v.match_id} ({v.narrative_id}) by {v.analyst}")
    return 0


def cmd_matches_confirm(args: argparse.Namespace) -> int:
    """Confirm a match: it asserts its narrative."""
    return _judge(args, "confirmed")


def cmd_matches_reject(args: argparse.Namespace) -> int:
    """Reject a match: it does not assert its narrative; it never counts towards a detector again."""
    return _judge(args, "rejected")


def cmd_matches_export(args: argparse.Namespace) -> int:
    """Every latest verdict as a gold JSONL line (stdout or --out FILE)."""
    with open_app(load(args), read_only=True) as app:
        lines = app_verdict_gold_lines(app, narrative_id=args.narrative)
    text = verdict_gold_text(lines)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"{len(lines)} verdicts written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def add_commands(sub: Any, command: Register) -> None:
    """Add ``matches ...`` to ``sub`` (an argparse sub-parsers object)."""
    for name, fn in (
        ("matches.list", cmd_matches_list),
        ("matches.show", cmd_matches_show),
        ("matches.confirm", cmd_matches_confirm),
        ("matches.reject", cmd_matches_reject),
        ("matches.export", cmd_matches_export),
    ):
        command(name)(fn)

    ma = sub.add_parser("matches", help="review narrative matches: list, show, confirm, reject, export verdicts")
    msub = ma.add_subparsers(dest="sub", required=True)
    p = msub.add_parser("list", help="stored matches, newest first, with verdicts")
    p.add_argument("--narrative", help="only this narrative id")
    p.add_argument("--verdict", choices=["confirmed", "rejected", "none"], help="only matches with this verdict")
    p.add_argument("--limit", type=bounded_int(1, 100_000), default=50, help="at most N rows, 1..100000 (default 50)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func="matches.list")
    p = msub.add_parser("show", help="one match: passage, reasons, decision, verdict")
    p.add_argument("id", metavar="MATCH_ID")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func="matches.show")
    for action, help_text in (
        ("confirm", "confirm a match (it asserts the narrative)"),
        ("reject", "reject a match (not the narrative; never counts towards detectors again)"),
    ):
        p = msub.add_parser(action, help=help_text)
        p.add_argument("id", metavar="MATCH_ID")
        p.add_argument("--note", default="", help="why (kept with the verdict)")
        p.add_argument("--by", help="analyst name (default $USER or 'cli')")
        p.set_defaults(func=f"matches.{action}")
    p = msub.add_parser("export-verdicts", help="verdicts as gold JSONL (for narratives eval/learn)")
    p.add_argument("--out", help="file (default stdout)")
    p.add_argument("--narrative", help="only this narrative id")
    p.set_defaults(func="matches.export")
