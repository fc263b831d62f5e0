"""Sub-commands beyond ingest and search: narratives, alerts, rules, index, demo.

Kept apart from cli.py so each module stays small; registered by :func:`add_commands`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from core.documents import utcnow
from core.logging import setup_logging
from core.settings import Config, load_config

__all__ = ["add_commands"]

Handler = Callable[[argparse.Namespace], int]
Register = Callable[[str], Callable[[Handler], Handler]]


def _config(args: argparse.Namespace) -> Config:
    config = load_config(args.config, require_sources=False)
    setup_logging(args.log_level or config.service.log_level, args.log_format or config.service.log_format)
    return config


def _out(data: Any) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2, default=str)
    sys.stdout.write("\n")


# --- demo ---------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    """Offline demo on real bundled content (see narrawatch.demo)."""
    from narrawatch.demo import run_demo

    setup_logging(args.log_level or "WARNING", args.log_format or "text")
    return run_demo(Path(args.dir).resolve(), json_out=args.json)


# --- narratives -----------------------------------------------------------------------------


def cmd_narratives_list(args: argparse.Namespace) -> int:
    """The catalogue: id, title, languages, thresholds."""
    from monitors.catalogue import Catalogue

    config = _config(args)
    cat = config.extra.get("narratives")
    rows: list[dict[str, Any]] = []
    if isinstance(cat, Catalogue):
        for n in cat.narratives:
            rows.append(
                {
                    "id": n.id,
                    "title": n.title,
                    "enabled": n.enabled,
                    "exemplar_languages": sorted(n.exemplars),
                    "thresholds": n.thresholds.model_dump() if n.thresholds else None,
                }
            )
    if args.json:
        _out(rows)
    else:
        for r in rows:
            th = r["thresholds"] or {}
            print(
                f"{r['id']:45} {','.join(r['exemplar_languages']):14} "
                f"suggest={th.get('suggest', '-')} alert={th.get('alert', '-')}  {r['title']}"
            )
    return 0


def cmd_narratives_eval(args: argparse.Namespace) -> int:
    """Precision/recall/F1 per narrative, language and overall on a gold file."""
    from monitors.evaluate import eval_command

    report = eval_command(_config(args), args.gold, args.tier)
    if args.json:
        _out(report)
        return 0
    o = report["overall"]
    print(f"overall ({args.tier}): precision {o['precision']:.3f} recall {o['recall']:.3f} f1 {o['f1']:.3f}")
    for section in ("per_language", "per_narrative"):
        print(f"\n{section.replace('_', ' ')}:")
        for key, m in sorted(report[section].items()):
            print(f"  {key:45} P {m['precision']:.3f} R {m['recall']:.3f} F1 {m['f1']:.3f} (n={m.get('support', '?')})")
    return 0


def cmd_narratives_calibrate(args: argparse.Namespace) -> int:
    """Propose thresholds per narrative from a gold file; --write stores them."""
    from monitors.evaluate import calibrate_command

    _out(calibrate_command(_config(args), args.gold, args.target_precision, args.write))
    return 0


def cmd_narratives_match(args: argparse.Namespace) -> int:
    """Backfill: match documents already in the index against the catalogue."""
    from narrawatch.app import open_app
    from narrawatch.monitoring import attach_monitoring
    from narrawatch.pipeline import since_to_datetime

    config = _config(args)
    with open_app(config) as app:
        service = attach_monitoring(app)
        if service is None:
            print("no narratives configured", file=sys.stderr)
            return 1
        n = 0
        matches = []
        for m in service.matcher.match_backfill(app.index, since_to_datetime(args.since)):
            matches.append(m)
            n += 1
            if len(matches) >= 500:
                service.store.add(matches)
                matches.clear()
        service.store.add(matches)
        service.close()
    print(f"{n} matches stored")
    return 0


def cmd_narratives_import(args: argparse.Namespace) -> int:
    """EUvsDisinfo cases -> candidate exemplars for review."""
    from monitors.euvsdisinfo import import_command

    config = _config(args)
    out = Path(args.out) if args.out else config.root / "candidates"
    _out(import_command(config, args.csv, out))
    return 0


# --- alerts and rules -----------------------------------------------------------------------


def cmd_alerts_list(args: argparse.Namespace) -> int:
    """Alerts, newest first, with delivery status per channel."""
    from alerts.admin import alerts_list
    from narrawatch.pipeline import since_to_datetime

    rows = alerts_list(
        _config(args), since=since_to_datetime(args.since), rule=args.rule, unacked=args.unacked, limit=args.limit
    )
    if args.json:
        _out(rows)
        return 0
    if not rows:
        print("no alerts")
    for r in rows:
        ack = "acked" if r.get("acked") else "NEW  "
        print(f"{r['id']}  {ack} {r['severity']:8} {str(r['created'])[:16]}  {r['title']}")
    return 0


def cmd_alerts_show(args: argparse.Namespace) -> int:
    """One alert in full: events, evidence, rendered text, deliveries."""
    from alerts.admin import alerts_show

    data = alerts_show(_config(args), args.id)
    if args.json:
        _out(data)
    else:
        print(data.get("text") or json.dumps(data, ensure_ascii=False, indent=2, default=str))
    return 0


def cmd_alerts_ack(args: argparse.Namespace) -> int:
    """Acknowledge an alert."""
    from alerts.admin import alerts_ack

    changed = alerts_ack(_config(args), args.id, by=args.by)
    print("acknowledged" if changed else "already acknowledged")
    return 0


def cmd_rules_test(args: argparse.Namespace) -> int:
    """Dry-run a rule against stored matches (and optionally send what it would send)."""
    from alerts.admin import rules_test
    from monitors.catalogue import Catalogue
    from monitors.store import MatchStore
    from narrawatch.app import open_app
    from narrawatch.monitoring import source_health
    from narrawatch.pipeline import since_to_datetime

    config = _config(args)
    since = since_to_datetime(args.since) or (utcnow() - timedelta(days=30))
    cat = config.extra.get("narratives")
    titles = {n.id: n.title for n in cat.enabled} if isinstance(cat, Catalogue) else {}
    with open_app(config, read_only=True) as app:
        health = source_health(app, utcnow())
    store = MatchStore(config.data_dir / "matches.sqlite")
    try:
        result = rules_test(
            config, args.rule, since, args.send, store, health, narratives=titles, step=timedelta(seconds=args.step)
        )
    finally:
        store.close()
    _out(result)
    return 0


# --- index --------------------------------------------------------------------------------


def cmd_index(args: argparse.Namespace) -> int:
    """index create | status | reindex, for the configured backend."""
    from narrawatch.backends import open_embedder, open_index

    config = _config(args)
    backend = config.service.index.backend
    if args.action == "status":
        if backend == "elasticsearch":
            from index.elastic import index_status

            _out(index_status(config))
        else:
            from narrawatch.reindex import stored_space

            space = stored_space(config.index_path)
            data: dict[str, Any] = {
                "backend": "embedded",
                "path": str(config.index_path),
                "embedding_space": space.to_dict() if space else None,
            }
            if space is not None:
                idx = open_index(config, space, read_only=True)
                try:
                    data["stats"] = idx.stats().as_dict()
                    consistency = getattr(idx, "consistency", None)
                    if consistency is not None:
                        data["consistency"] = consistency()
                finally:
                    idx.close()
            _out(data)
        return 0
    embedder = open_embedder(config)
    if args.action == "create":
        if backend == "elasticsearch":
            from index.elastic import create_index

            print(create_index(config, embedder.space))
        else:
            open_index(config, embedder.space).close()
            print(config.index_path)
        return 0
    if backend == "elasticsearch":
        from index.elastic import reindex

        res = reindex(config, embedder)
        _out({"old_index": res.old_index, "new_index": res.new_index, "documents": res.documents, "failed": res.failed})
    else:
        from narrawatch.reindex import reindex_embedded

        r = reindex_embedded(config.index_path, embedder)
        _out(
            {
                "documents": r.documents,
                "passages": r.passages,
                "old_model": r.old_space.model,
                "new_model": r.new_space.model,
                "old_index_kept_at": str(r.kept_old_at),
            }
        )
    return 0


# --- registration -------------------------------------------------------------------------


def add_commands(sub: Any, command: Register) -> None:
    """Add the extra sub-commands to ``sub`` (an argparse sub-parsers object)."""
    handlers: dict[str, Handler] = {
        "demo": cmd_demo,
        "narratives.list": cmd_narratives_list,
        "narratives.eval": cmd_narratives_eval,
        "narratives.calibrate": cmd_narratives_calibrate,
        "narratives.match": cmd_narratives_match,
        "narratives.import": cmd_narratives_import,
        "alerts.list": cmd_alerts_list,
        "alerts.show": cmd_alerts_show,
        "alerts.ack": cmd_alerts_ack,
        "rules.test": cmd_rules_test,
        "index": cmd_index,
    }
    for name, fn in handlers.items():
        command(name)(fn)

    p = sub.add_parser("demo", help="offline demo: replay real content over loopback through the whole pipeline")
    p.add_argument("--dir", default="demo", help="work directory (default ./demo)")
    p.add_argument("--json", action="store_true", help="print the crawl summary as JSON")
    p.set_defaults(func="demo")

    nar = sub.add_parser("narratives", help="narrative catalogue tools").add_subparsers(dest="sub", required=True)
    p = nar.add_parser("list", help="list the catalogue")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func="narratives.list")
    p = nar.add_parser("eval", help="precision/recall/F1 on a gold JSONL file")
    p.add_argument("--gold", required=True, type=Path)
    p.add_argument("--tier", choices=["suggest", "alert"], default="alert")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func="narratives.eval")
    p = nar.add_parser("calibrate", help="propose thresholds from a gold file")
    p.add_argument("--gold", required=True, type=Path)
    p.add_argument("--target-precision", type=float, default=0.8)
    p.add_argument("--write", action="store_true", help="store them in the narrative files")
    p.set_defaults(func="narratives.calibrate")
    p = nar.add_parser("match", help="backfill: match indexed documents")
    p.add_argument("--since", default="30d")
    p.set_defaults(func="narratives.match")
    p = nar.add_parser("import-euvsdisinfo", help="EUvsDisinfo cases -> candidate exemplars for review")
    p.add_argument("csv", type=Path)
    p.add_argument("--out", help="output folder (default <config>/candidates)")
    p.set_defaults(func="narratives.import")

    al = sub.add_parser("alerts", help="the alert inbox").add_subparsers(dest="sub", required=True)
    p = al.add_parser("list", help="alerts, newest first")
    p.add_argument("--since")
    p.add_argument("--rule")
    p.add_argument("--unacked", action="store_true")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func="alerts.list")
    p = al.add_parser("show", help="one alert in full")
    p.add_argument("id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func="alerts.show")
    p = al.add_parser("ack", help="acknowledge an alert")
    p.add_argument("id")
    p.add_argument("--by", default="cli")
    p.set_defaults(func="alerts.ack")

    ru = sub.add_parser("rules", help="alert rules").add_subparsers(dest="sub", required=True)
    p = ru.add_parser("test", help="dry-run a rule against stored matches")
    p.add_argument("rule")
    p.add_argument("--since", default="30d")
    p.add_argument("--step", type=int, default=3600, help="evaluation step in seconds (default 3600)")
    p.add_argument("--send", action="store_true", help="enqueue and deliver what it would send")
    p.set_defaults(func="rules.test")

    p = sub.add_parser("index", help="index lifecycle: create | status | reindex (model change)")
    p.add_argument("action", choices=["create", "status", "reindex"])
    p.set_defaults(func="index")
