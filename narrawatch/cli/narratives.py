"""``narrawatch narratives list|eval|calibrate|learn|match|import-euvsdisinfo``: the catalogue's tools."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from narrawatch.app import open_app
from narrawatch.cli.args import Register, bounded_float, load, when_arg
from narrawatch.terminal import print_json

__all__ = ["add_commands"]

BACKFILL_BATCH = 500
"""``narratives match``: matches stored per write."""


def cmd_narratives_list(args: argparse.Namespace) -> int:
    """The catalogue: id, title, languages, thresholds."""
    with open_app(load(args)) as app:
        rows: list[dict[str, Any]] = [
            {
                "id": n.id,
                "title": n.title,
                "enabled": n.enabled,
                "exemplar_languages": sorted(n.exemplars),
                "thresholds": n.thresholds.model_dump() if n.thresholds else None,
            }
            for n in app.catalogue.narratives
        ]
    if args.json:
        print_json(rows)
    else:
        for r in rows:
            th = r["thresholds"] or {}
            print(
                f"{r['id']:45} {','.join(r['exemplar_languages']):14} "
                f"suggest={th.get('suggest', '-')} alert={th.get('alert', '-')}  {r['title']}"
            )
    return 0


def cmd_narratives_eval(args: argparse.Namespace) -> int:
    """Precision/recall/F1 per narrative, language and overall on a gold file; FP per 1,000 background."""
    from monitors.evaluate import eval_command  # the matcher and numpy: only the commands that match

    report = eval_command(load(args), args.gold, args.tier, background=args.background, baseline=args.baseline)
    if args.json:
        print_json(report)
        return 0
    o = report["overall"]
    print(
        f"overall ({args.tier}, {o['decision']}): precision {o['precision']:.3f} recall {o['recall']:.3f} "
        f"f1 {o['f1']:.3f} samples-f1 {o['samples_f1']:.3f}"
    )
    bg = report["background"]
    if bg["items"]:
        print(
            f"background: {bg['items']} items, false positives per 1,000: suggest {bg['fp_per_1000']['suggest']:.1f}, "
            f"alert {bg['fp_per_1000']['alert']:.1f}"
        )
    for w in o["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    for section in ("per_language", "per_narrative"):
        print(f"\n{section.replace('_', ' ')}:")
        for key, m in sorted(report[section].items()):
            print(f"  {key:45} P {m['precision']:.3f} R {m['recall']:.3f} F1 {m['f1']:.3f} (n={m.get('support', '?')})")
    return 0


def cmd_narratives_calibrate(args: argparse.Namespace) -> int:
    """Propose thresholds per narrative from a gold file; --write stores them."""
    from monitors.evaluate import calibrate_command  # the matcher and numpy, as in eval

    print_json(calibrate_command(load(args), args.gold, args.target_precision, args.write))
    return 0


def cmd_narratives_learn(args: argparse.Namespace) -> int:
    """Fit the learned decision stage from gold files, background and analysts' verdicts."""
    from narrawatch.learning import learn_command  # the learner (numpy, scikit-style fitting)

    with open_app(load(args), read_only=True) as app:
        result = learn_command(
            app,
            args.gold,
            background=args.background,
            verdicts=not args.no_verdicts,
            write=not args.dry_run,
            progress=None if args.json else (lambda line: print(line, file=sys.stderr)),
        )
    if args.json:
        print_json(result)
        return 0
    print(
        f"learned {len(result['learned'])} narratives from {result['gold']} gold items, {result['verdicts']} verdicts, "
        f"{result['background']} background items in {result['seconds']} s (space {result['space']})"
    )
    for nid, m in result["narratives"].items():
        oof = m["oof_suggest"]
        print(
            f"  {nid:45} suggest {m['suggest']:.3f} alert {m['alert']:.3f} floor {m['floor']:.3f} "
            f"| out-of-fold P {oof['precision'] if oof['precision'] is not None else '-'} R "
            f"{oof['recall'] if oof['recall'] is not None else '-'} | pos {m['positives']} neg {m['negatives']}"
            + (f" | per-language suggest {m['by_language']}" if m["by_language"] else "")
        )
    for nid, why in result["skipped"].items():
        print(f"  {nid:45} not learned: {why}")
    if result["written"]:
        print("written: " + ", ".join(result["written"]))
    return 0


def cmd_narratives_match(args: argparse.Namespace) -> int:
    """Backfill: match documents already in the index against the catalogue."""
    from narrawatch.monitoring import attach_monitoring  # the matcher and detectors

    with open_app(load(args)) as app:
        service = attach_monitoring(app)
        if service is None:
            print("no narratives configured", file=sys.stderr)
            return 1
        n = 0
        matches = []
        for m in service.matcher.match_backfill(app.index, args.since):
            matches.append(m)
            n += 1
            if len(matches) >= BACKFILL_BATCH:
                service.store.add(matches)
                matches.clear()
        service.store.add(matches)
    print(f"{n} matches stored")
    return 0


def cmd_narratives_import(args: argparse.Namespace) -> int:
    """EUvsDisinfo cases -> candidate exemplars for review."""
    from monitors.euvsdisinfo import import_command  # CSV parsing and fuzzy matching: this command only

    config = load(args)
    out = Path(args.out) if args.out else config.root / "candidates"
    print_json(import_command(config, args.csv, out))
    return 0


def add_commands(sub: Any, command: Register) -> None:
    """Add ``narratives ...`` to ``sub`` (an argparse sub-parsers object)."""
    for name, fn in (
        ("narratives.list", cmd_narratives_list),
        ("narratives.eval", cmd_narratives_eval),
        ("narratives.calibrate", cmd_narratives_calibrate),
        ("narratives.learn", cmd_narratives_learn),
        ("narratives.match", cmd_narratives_match),
        ("narratives.import", cmd_narratives_import),
    ):
        command(name)(fn)

    nar = sub.add_parser("narratives", help="narrative catalogue tools").add_subparsers(dest="sub", required=True)
    p = nar.add_parser("list", help="list the catalogue")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func="narratives.list")
    p = nar.add_parser("eval", help="precision/recall/F1 on a gold JSONL file")
    p.add_argument("--gold", required=True, type=Path)
    p.add_argument("--tier", choices=["suggest", "alert"], default="alert")
    p.add_argument(
        "--background", action="append", default=[], type=Path, help="JSONL of ordinary news: false positives per 1,000"
    )
    p.add_argument("--baseline", action="store_true", help="ignore the learned state (cosine thresholds only)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func="narratives.eval")
    p = nar.add_parser("learn", help="fit the decision stage from labelled examples and verdicts")
    p.add_argument("--gold", action="append", default=[], type=Path, help="gold JSONL (repeatable)")
    p.add_argument(
        "--background", action="append", default=[], type=Path, help="JSONL of ordinary news (negatives; repeatable)"
    )
    p.add_argument("--no-verdicts", action="store_true", help="leave out analysts' verdicts from the match store")
    p.add_argument("--dry-run", action="store_true", help="fit and report, do not write <config>/learned/")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func="narratives.learn")
    p = nar.add_parser("calibrate", help="propose thresholds from a gold file")
    p.add_argument("--gold", required=True, type=Path)
    p.add_argument("--target-precision", type=bounded_float(0.0, 1.0, open_low=True), default=0.8, help="0..1")
    p.add_argument("--write", action="store_true", help="store them in the narrative files")
    p.set_defaults(func="narratives.calibrate")
    p = nar.add_parser("match", help="backfill: match indexed documents")
    p.add_argument("--since", default="30d", type=when_arg)
    p.set_defaults(func="narratives.match")
    p = nar.add_parser("import-euvsdisinfo", help="EUvsDisinfo cases -> candidate exemplars for review")
    p.add_argument("csv", type=Path)
    p.add_argument("--out", help="output folder (default <config>/candidates)")
    p.set_defaults(func="narratives.import")
