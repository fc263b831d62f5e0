"""``narrawatch rules list|show|add|edit|test|delete``: alert rules, saved searches among them.

Rules made here are stored in ``<data_dir>/rules.sqlite`` and run by the service from its next
pass (no restart); YAML rules are listed read-only. ``rules test`` runs a rule over stored data
and prints what it would have raised, raising nothing (``--send`` enqueues and delivers what a
YAML or stored match-based rule would have sent, as before).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from core.documents import utcnow
from core.settings import ACTOR_TYPES
from narrawatch.app import open_app
from narrawatch.cli.args import Register, bounded_float, bounded_int, load, when_arg
from narrawatch.read.rules import (
    MAX_TEST_EVALUATIONS,
    create_rule,
    delete_rule,
    dry_run_rule,
    get_rule,
    list_rules,
    update_rule,
)
from narrawatch.terminal import print_json, print_table

__all__ = ["add_commands"]


def _who(args: argparse.Namespace) -> str:
    return str(args.by or os.environ.get("USER") or "cli")


def _fields(args: argparse.Namespace, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The rule the flags describe, on top of ``base`` (an edited rule's fields, or a --file)."""
    data: dict[str, Any] = dict(base or {})
    if getattr(args, "file", None):
        loaded = yaml.safe_load(Path(args.file).read_text(encoding="utf-8"))
        if not isinstance(loaded, dict):
            raise SystemExit(f"{args.file}: expected one rule as a mapping")
        data.update(loaded)
    options: dict[str, Any] = dict(data.get("options") or {})
    if args.options:
        options.update(json.loads(args.options))
    for flag, key in (("query", "query"), ("mode", "mode"), ("min_score", "min_score"), ("group", "group")):
        value = getattr(args, flag)
        if value is not None:
            options[key] = value
    if args.lang:
        options["languages"] = args.lang
    if args.kind:
        options["kinds"] = args.kind
    if args.detector:
        data["detector"] = args.detector
    elif args.query is not None:
        data.setdefault("detector", "query")
    data["options"] = options
    for flag, key in (("source", "sources"), ("actor", "actors"), ("country", "countries"), ("channel", "channels")):
        value = getattr(args, flag)
        if value:
            data[key] = value
    for flag in ("severity", "realert", "description"):
        value = getattr(args, flag)
        if value is not None:
            data[flag] = value
    if args.digest is not None:
        data["digest"] = {"every": args.digest} if args.digest not in ("", "off", "none") else None
    if args.enabled is not None:
        data["enabled"] = args.enabled == "on"
    for key in ("origin", "editable", "created_at", "updated_at", "created_by", "updated_by"):
        data.pop(key, None)
    return data


def cmd_rules_list(args: argparse.Namespace) -> int:
    """YAML rules (read-only) and stored rules."""
    with open_app(load(args), read_only=True) as app:
        rows = [r.as_dict() for r in list_rules(app)]
    if args.json:
        print_json(rows)
        return 0
    print_table(
        "alert rules",
        ("id", "origin", "detector", "severity", "enabled", "what"),
        [
            (
                r["id"],
                r["origin"],
                r["detector"],
                r["severity"],
                "yes" if r["enabled"] else "no",
                (r["options"].get("query") or r.get("description") or json.dumps(r["options"], ensure_ascii=False))[
                    :80
                ],
            )
            for r in rows
        ],
    )
    return 0


def cmd_rules_show(args: argparse.Namespace) -> int:
    """One rule as JSON."""
    with open_app(load(args), read_only=True) as app:
        print_json(get_rule(app, args.id).as_dict())
    return 0


def cmd_rules_add(args: argparse.Namespace) -> int:
    """Store a new rule (a saved search with --query)."""
    data = _fields(args)
    data["id"] = args.id
    with open_app(load(args)) as app:
        record = create_rule(app, data, by=_who(args))
    print_json(record.as_dict())
    print(f"rule {args.id!r} saved; the service runs it from its next pass", file=sys.stderr)
    return 0


def cmd_rules_edit(args: argparse.Namespace) -> int:
    """Change a stored rule: only the given flags change."""
    with open_app(load(args)) as app:
        current = get_rule(app, args.id).as_dict()
        record = update_rule(app, args.id, _fields(args, current), by=_who(args))
    print_json(record.as_dict())
    return 0


def cmd_rules_delete(args: argparse.Namespace) -> int:
    """Delete a stored rule."""
    with open_app(load(args)) as app:
        delete_rule(app, args.id, by=_who(args))
    print(f"rule {args.id!r} deleted")
    return 0


def cmd_rules_test(args: argparse.Namespace) -> int:
    """Dry-run a rule over stored data and print what it would have raised."""
    config = load(args)
    now = utcnow()
    since = args.since or (now - timedelta(days=30))
    evaluations = max(0.0, (now - since).total_seconds()) / args.step
    with open_app(config, read_only=not args.send) as app:
        rule = get_rule(app, args.rule).stored.rule
        if rule.detector != "query" and evaluations > MAX_TEST_EVALUATIONS:
            print(
                f"--step {args.step} over --since {since.isoformat()} would evaluate the rule {evaluations:,.0f} "
                f"times; at most {MAX_TEST_EVALUATIONS:,}: raise --step or shorten --since",
                file=sys.stderr,
            )
            return 2
        if args.send:
            from narrawatch.read.alerts import rules_test  # enqueues and delivers: YAML and stored rules alike

            result = rules_test(app, args.rule, since, send=True, step=timedelta(seconds=args.step)).as_dict()
        else:
            result = dry_run_rule(app, rule, since, now=now, step=timedelta(seconds=args.step)).as_dict()
    if not args.text:
        print_json(result)
        return 0
    print(
        f"rule {result['rule']} ({result['detector']}) from {result['since'][:19]} to {result['until'][:19]}: "
        f"{len(result['events'])} event(s), {len(result['alerts'])} alert(s) would have been raised"
    )
    for e in result["events"]:
        print(f"- {e['title']}  (score {e.get('score', 0.0):.3f})")
        for m in e.get("evidence", [])[:5]:
            words = ", ".join(m["matched_words"])
            print(f"    {m['published'][:16]}  {m['outlet']}  {m['score']:.3f}  {m['url']}")
            print(f"      {m['passage'][:200]!s}" + (f"  [matched: {words}]" if words else ""))
    return 0


def _rule_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--file", help="a YAML/JSON file with the rule's fields (flags override it)")
    p.add_argument("--detector", help="detector name (default 'query' when --query is given)")
    p.add_argument("--options", help="detector options as JSON (merged; flags below override)")
    p.add_argument("--query", help="saved search: the query in the search syntax")
    p.add_argument("--mode", choices=("keyword", "hybrid", "semantic"))
    p.add_argument("--min-score", type=bounded_float(0, 1000), dest="min_score")
    p.add_argument("--group", choices=("item", "pass"), help="one alert per item (default) or per pass")
    p.add_argument("--lang", action="append", help="language code (repeatable)")
    p.add_argument("--kind", action="append", help="source kind: feed, telegram, site (repeatable)")
    p.add_argument("--source", action="append", help="scope: source id (repeatable)")
    p.add_argument("--actor", action="append", choices=ACTOR_TYPES, help="scope: source actor type (repeatable)")
    p.add_argument("--country", action="append", help="scope: source country, ISO 3166-1 alpha-2 (repeatable)")
    p.add_argument("--severity", choices=("info", "warning", "critical"))
    p.add_argument("--realert", help="suppress repeats for this long, e.g. 6h")
    p.add_argument("--digest", help="send one digest every period, e.g. 1h ('off' to stop)")
    p.add_argument("--channel", action="append", help="channel id from the YAML config (repeatable)")
    p.add_argument("--description")
    p.add_argument("--enabled", choices=("on", "off"))
    p.add_argument("--by", help="who makes the change (default $USER)")


def add_commands(sub: Any, command: Register) -> None:
    """Add ``rules list|show|add|edit|test|delete`` to ``sub``."""
    for name, fn in (
        ("rules.list", cmd_rules_list),
        ("rules.show", cmd_rules_show),
        ("rules.add", cmd_rules_add),
        ("rules.edit", cmd_rules_edit),
        ("rules.delete", cmd_rules_delete),
        ("rules.test", cmd_rules_test),
    ):
        command(name)(fn)

    ru = sub.add_parser("rules", help="alert rules and saved searches").add_subparsers(dest="sub", required=True)
    p = ru.add_parser("list", help="YAML (read-only) and stored rules")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func="rules.list")
    p = ru.add_parser("show", help="one rule as JSON")
    p.add_argument("id")
    p.set_defaults(func="rules.show")
    p = ru.add_parser("add", help="store a new rule, e.g. --query '\"ядерный удар\" -учения'")
    p.add_argument("id")
    _rule_flags(p)
    p.set_defaults(func="rules.add")
    p = ru.add_parser("edit", help="change a stored rule (only the given flags)")
    p.add_argument("id")
    _rule_flags(p)
    p.set_defaults(func="rules.edit")
    p = ru.add_parser("delete", help="delete a stored rule")
    p.add_argument("id")
    p.add_argument("--by", help="who deletes it (default $USER)")
    p.set_defaults(func="rules.delete")
    p = ru.add_parser("test", help="dry-run a rule over stored data (raises nothing)")
    p.add_argument("rule")
    p.add_argument("--since", default="30d", type=when_arg)
    p.add_argument(
        "--step",
        type=bounded_int(1, 7 * 86400),
        default=3600,
        help=f"evaluation step in seconds, 1..604800 (default 3600; at most {MAX_TEST_EVALUATIONS:,} steps)",
    )
    p.add_argument("--text", action="store_true", help="a summary for people instead of JSON")
    p.add_argument("--send", action="store_true", help="enqueue and deliver what it would send")
    p.set_defaults(func="rules.test")
