"""``narrawatch evidence``: write an evidence pack for an alert or a document, or verify one.

narrawatch evidence --alert ID -o FILE.zip
narrawatch evidence --document ID -o FILE.zip
narrawatch evidence verify FILE.zip        exit 0 when every hash matches, 1 naming what differs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from narrawatch.app import open_app
from narrawatch.cli.args import Register, load
from narrawatch.terminal import print_json

__all__ = ["add_commands"]


def cmd_evidence(args: argparse.Namespace) -> int:
    """Write a pack (``--alert``/``--document`` with ``-o``) or verify one (``verify FILE``)."""
    from narrawatch.evidence import alert_pack, document_pack, verify_pack, write_pack

    if args.action:
        if args.action[0] != "verify" or len(args.action) != 2 or args.alert or args.document:
            print("usage: narrawatch evidence verify FILE.zip", file=sys.stderr)
            return 2
        path = Path(args.action[1])
        if not path.is_file():
            print(f"error: no such file: {path}", file=sys.stderr)
            return 2
        report = verify_pack(path)
        if args.json:
            print_json(report.as_dict())
        elif report.ok:
            print(f"{path}: ok ({report.checked} hashes checked)")
        else:
            for problem in report.problems:
                print(f"{path}: {problem}", file=sys.stderr)
            print(f"{path}: FAILED ({len(report.problems)} problems)", file=sys.stderr)
        return 0 if report.ok else 1
    if bool(args.alert) == bool(args.document) or not args.output:
        print("usage: narrawatch evidence (--alert ID | --document ID) -o FILE.zip", file=sys.stderr)
        return 2
    with open_app(load(args), read_only=True) as app:
        data = alert_pack(app, args.alert) if args.alert else document_pack(app, args.document)
    out = write_pack(data, Path(args.output))
    print(f"evidence pack written to {out} ({len(data)} bytes)", file=sys.stderr)
    return 0


def add_commands(sub: Any, command: Register) -> None:
    """Add ``evidence`` to ``sub`` (an argparse sub-parsers object)."""
    command("evidence")(cmd_evidence)
    p = sub.add_parser(
        "evidence",
        help="evidence pack (WARC records, manifest, summary) for an alert or a document; or verify one",
        description="(--alert ID | --document ID) -o FILE.zip  |  verify FILE.zip",
    )
    p.add_argument("action", nargs="*", metavar="verify FILE.zip", help="verify a pack: recompute every hash")
    p.add_argument("--alert", help="alert id")
    p.add_argument("--document", help="document id")
    p.add_argument("-o", "--output", help="the pack to write (.zip)")
    p.add_argument("--json", action="store_true", help="verify: print the report as JSON")
    p.set_defaults(func="evidence")
