"""``narrawatch alerts list|show|ack`` (the alert inbox); ``rules ...`` is :mod:`narrawatch.cli.rules`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pydantic import ValidationError

from narrawatch.app import open_app
from narrawatch.cli.args import Register, bounded_int, load, when_arg
from narrawatch.read.alerts import ack_alert, list_alerts, show_alert
from narrawatch.read.params import MAX_ALERTS_PAGE, AlertParams
from narrawatch.terminal import print_json

__all__ = ["add_commands"]


def cmd_alerts_list(args: argparse.Namespace) -> int:
    """Alerts created in [--since, --until), newest first, one page, with delivery status per channel."""
    if args.since is not None and args.until is not None and args.since >= args.until:
        print(f"--since {args.since.isoformat()} is not before --until {args.until.isoformat()}", file=sys.stderr)
        return 2
    try:
        page = AlertParams(
            since=args.since,
            until=args.until,
            rule=args.rule,
            severity=args.severity,
            unacked=args.unacked,
            limit=args.limit,
            offset=args.offset,
        )
    except ValidationError as exc:
        print("alerts list: " + "; ".join(str(e["msg"]) for e in exc.errors()), file=sys.stderr)
        return 2
    with open_app(load(args), read_only=True) as app:
        rows = [a.as_dict() for a in list_alerts(app, page)]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no alerts")
    for r in rows:
        ack = "acked" if r.get("acked_at") else "NEW  "
        print(f"{r['id']}  {ack} {r['severity']:8} {str(r['created'])[:16]}  {r['title']}")
        if r.get("acked_at"):
            note = f": {r['ack_note']}" if r.get("ack_note") else ""
            print(f"{'':26}acknowledged {str(r['acked_at'])[:16]} by {r.get('acked_by') or '-'}{note}")
    if len(rows) == args.limit:
        print(f"(more may follow: --offset {args.offset + len(rows)})", file=sys.stderr)
    return 0


def _ack_line(data: dict[str, Any]) -> str:
    if not data.get("acked_at"):
        return "acknowledgement: not acknowledged"
    note = f" (note: {data['ack_note']})" if data.get("ack_note") else ""
    return f"acknowledgement: acknowledged {data['acked_at']} by {data.get('acked_by') or '-'}{note}"


def cmd_alerts_show(args: argparse.Namespace) -> int:
    """One alert in full: events, evidence, rendered text, acknowledgement, deliveries."""
    with open_app(load(args), read_only=True) as app:
        data = show_alert(app, args.id).as_dict()
    if args.json:
        print_json(data)
        return 0
    print(data.get("text") or json.dumps(data, ensure_ascii=False, indent=2, default=str))
    print()
    print(_ack_line(data))
    for d in data.get("deliveries", []):
        sent = f" sent {d['sent_at']}" if d.get("sent_at") else ""
        error = f" last error: {d['last_error']}" if d.get("last_error") else ""
        print(f"delivery {d['channel']}: {d['status']} after {d['attempts']} attempt(s){sent}{error}")
    return 0


def cmd_alerts_ack(args: argparse.Namespace) -> int:
    """Acknowledge an alert (who, when and the note are stored)."""
    with open_app(load(args)) as app:
        changed = ack_alert(app, args.id, by=args.by, note=args.note).changed
    print("acknowledged" if changed else "already acknowledged")
    return 0


def add_commands(sub: Any, command: Register) -> None:
    """Add ``alerts ...`` to ``sub`` (an argparse sub-parsers object)."""
    for name, fn in (
        ("alerts.list", cmd_alerts_list),
        ("alerts.show", cmd_alerts_show),
        ("alerts.ack", cmd_alerts_ack),
    ):
        command(name)(fn)

    al = sub.add_parser("alerts", help="the alert inbox").add_subparsers(dest="sub", required=True)
    p = al.add_parser("list", help="alerts, newest first")
    p.add_argument("--since", type=when_arg, help="created at or after")
    p.add_argument("--until", type=when_arg, help="created before")
    p.add_argument("--rule")
    p.add_argument("--severity", choices=("info", "warning", "critical"))
    p.add_argument("--unacked", action="store_true")
    p.add_argument(
        "--limit",
        type=bounded_int(1, MAX_ALERTS_PAGE),
        default=50,
        help=f"rows per page, 1..{MAX_ALERTS_PAGE} (default 50)",
    )
    p.add_argument("--offset", type=bounded_int(0, 10_000_000), default=0, help="skip this many rows (paging)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func="alerts.list")
    p = al.add_parser("show", help="one alert in full")
    p.add_argument("id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func="alerts.show")
    p = al.add_parser("ack", help="acknowledge an alert")
    p.add_argument("id")
    p.add_argument("--by", default="cli")
    p.add_argument("--note", default="", help="why (stored with the acknowledgement)")
    p.set_defaults(func="alerts.ack")
