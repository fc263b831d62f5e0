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

__all__ = ["RULES_TEST_MAX_EVALUATIONS", "TRACE_MAX_ITEMS", "add_commands"]

RULES_TEST_MAX_EVALUATIONS = 10_000
"""``rules test``: most rule evaluations one dry run makes (``--since`` / ``--step``)."""
TRACE_MAX_ITEMS = 1000
"""``trace --max-items``: the same ceiling as the API's ``limit``."""

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
    """Precision/recall/F1 per narrative, language and overall on a gold file; FP per 1,000 background."""
    from monitors.evaluate import eval_command

    report = eval_command(_config(args), args.gold, args.tier, background=args.background, baseline=args.baseline)
    if args.json:
        _out(report)
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
    from monitors.evaluate import calibrate_command

    _out(calibrate_command(_config(args), args.gold, args.target_precision, args.write))
    return 0


def cmd_narratives_learn(args: argparse.Namespace) -> int:
    """Fit the learned decision stage from gold files, background and analysts' verdicts."""
    from narrawatch.learning import learn_command

    result = learn_command(
        _config(args),
        args.gold,
        background=args.background,
        verdicts=not args.no_verdicts,
        write=not args.dry_run,
        progress=None if args.json else (lambda line: print(line, file=sys.stderr)),
    )
    if args.json:
        _out(result)
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
    from narrawatch.app import open_app
    from narrawatch.monitoring import attach_monitoring

    config = _config(args)
    with open_app(config) as app:
        service = attach_monitoring(app)
        if service is None:
            print("no narratives configured", file=sys.stderr)
            return 1
        n = 0
        matches = []
        for m in service.matcher.match_backfill(app.index, args.since):
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
    """Alerts created in [--since, --until), newest first, one page, with delivery status per channel."""
    from alerts.admin import alerts_list

    if args.since is not None and args.until is not None and args.since >= args.until:
        print(f"--since {args.since.isoformat()} is not before --until {args.until.isoformat()}", file=sys.stderr)
        return 2
    rows = alerts_list(
        _config(args),
        since=args.since,
        until=args.until,
        rule=args.rule,
        severity=args.severity,
        unacked=args.unacked,
        limit=args.limit,
        offset=args.offset,
    )
    if args.json:
        _out(rows)
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
    from alerts.admin import alerts_show

    data = alerts_show(_config(args), args.id)
    if args.json:
        _out(data)
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
    from alerts.admin import alerts_ack

    changed = alerts_ack(_config(args), args.id, by=args.by, note=args.note)
    print("acknowledged" if changed else "already acknowledged")
    return 0


def cmd_rules_test(args: argparse.Namespace) -> int:
    """Dry-run a rule against stored matches (and optionally send what it would send)."""
    from alerts.admin import rules_test
    from monitors.catalogue import Catalogue
    from monitors.store import MatchStore
    from narrawatch.app import open_app
    from narrawatch.monitoring import source_health

    config = _config(args)
    now = utcnow()
    since = args.since or (now - timedelta(days=30))
    evaluations = max(0.0, (now - since).total_seconds()) / args.step
    if evaluations > RULES_TEST_MAX_EVALUATIONS:
        print(
            f"--step {args.step} over --since {since.isoformat()} would evaluate the rule {evaluations:,.0f} times; "
            f"at most {RULES_TEST_MAX_EVALUATIONS:,}: raise --step or shorten --since",
            file=sys.stderr,
        )
        return 2
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
            from index.local_reindex import stored_space

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
        from index.local_reindex import reindex_embedded

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


# --- trace and themes ---------------------------------------------------------------------


def cmd_trace(args: argparse.Namespace) -> int:
    """Trace a claim, URL, document or narrative across outlets, languages and time."""
    from crawlers.normalize import canonical_url
    from crawlers.sightings import open_sightings, sightings_path
    from monitors.catalogue import Catalogue
    from monitors.spread import (
        TraceQuery,
        export_graph,
        export_items_csv,
        export_items_jsonl,
        render_timeline,
        trace,
    )
    from monitors.store import MatchStore
    from narrawatch.app import open_app

    config = _config(args)
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
    cat = config.extra.get("narratives")
    narrative = cat.get(args.narrative) if args.narrative and isinstance(cat, Catalogue) else None
    store = MatchStore(config.data_dir / "matches.sqlite")
    seen = open_sightings(sightings_path(config.data_dir), read_only=True)
    try:
        with open_app(config, read_only=True) as app:
            result = trace(app.index, app.embedder, query, matches=store, narrative=narrative, sightings=seen)
    finally:
        store.close()
        seen.close()
    if args.export_dir:
        out = Path(args.export_dir)
        out.mkdir(parents=True, exist_ok=True)
        export_items_csv(result, out / "items.csv")
        export_items_jsonl(result, out / "items.jsonl")
        export_graph(result, out / "graph.gexf", format="gexf")
        export_graph(result, out / "graph.graphml", format="graphml")
        render_timeline(result, out / "timeline.png", format="png")
        render_timeline(result, out / "timeline.svg", format="svg")
        print(
            f"exports written to {out}: items.csv items.jsonl graph.gexf graph.graphml timeline.png timeline.svg",
            file=sys.stderr,
        )
    data = result.as_dict()
    if args.json:
        _out(data)
        return 0
    items = data.get("items", [])
    first = data.get("first_appearances", {})
    print(f"{len(items)} items; first appearance: {first.get('overall')}; per language: {first.get('by_language')}")
    for it in items[:50]:
        print(
            f"  {str(it.get('published'))[:16]}  {it.get('outlet', ''):28} {it.get('language', ''):3} "
            f"{it.get('similarity', 0):.3f}  {str(it.get('passage') or it.get('title') or '')[:90]!r}"
        )
        for c in it.get("carriers", []):
            print(f"      carried by {c['source']} ({c['outlet']}) first seen {c['first_seen'][:16]}")
    print(
        f"{len(data.get('copy_groups', []))} copy groups, {len(data.get('translation_groups', []))} translation "
        f"groups, {len(data.get('edges', []))} edges"
    )
    return 0


def cmd_themes(args: argparse.Namespace) -> int:
    """Emerging themes: clusters of recent unmatched passages; --promote N writes a draft narrative."""
    from monitors.store import MatchStore
    from monitors.themes import discover_themes, promote_theme
    from narrawatch.app import open_app

    config = _config(args)
    store = MatchStore(config.data_dir / "matches.sqlite")
    try:
        with open_app(config, read_only=True) as app:
            themes = discover_themes(
                app.index,
                since=args.since or utcnow() - timedelta(days=7),
                matches=store,
                min_size=args.min_size,
                max_themes=args.max,
            )
    finally:
        store.close()
    if args.promote is not None:
        if not 1 <= args.promote <= len(themes) or not args.id:
            print(f"--promote takes a theme number 1..{len(themes)} and --id NARRATIVE_ID", file=sys.stderr)
            return 2
        path = promote_theme(themes[args.promote - 1], args.id, config.root / "narratives")
        print(f"draft narrative written to {path} (enabled: false; review its exemplars, then enable it)")
        return 0
    if args.json:
        _out([t.as_dict() for t in themes])
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


# --- API ----------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    """The HTTP API and web UI (index opened read-only, so a crawl may run beside it)."""
    from narrawatch.api import serve

    config = _config(args)
    serve(config, host=args.host or config.service.api.host, port=args.port or config.service.api.port)
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    """API tokens: create (printed once), revoke, list."""
    from narrawatch.api import create_token, list_tokens, revoke_token

    config = _config(args)
    if args.action == "create":
        if not args.name:
            print("token create needs a NAME", file=sys.stderr)
            return 2
        token = create_token(config, args.name, args.role)
        print(token)
        print(f"token {args.name!r} ({args.role}) created; it is shown only this once", file=sys.stderr)
        return 0
    if args.action == "revoke":
        ok = revoke_token(config, args.name or "")
        print("revoked" if ok else f"no active token named {args.name!r}")
        return 0 if ok else 1
    _out(list_tokens(config))
    return 0


# --- registration -------------------------------------------------------------------------


def add_commands(sub: Any, command: Register) -> None:
    """Add the extra sub-commands to ``sub`` (an argparse sub-parsers object)."""
    from narrawatch.cli import bounded_float, bounded_int, when_arg

    handlers: dict[str, Handler] = {
        "demo": cmd_demo,
        "narratives.list": cmd_narratives_list,
        "narratives.eval": cmd_narratives_eval,
        "narratives.calibrate": cmd_narratives_calibrate,
        "narratives.learn": cmd_narratives_learn,
        "narratives.match": cmd_narratives_match,
        "narratives.import": cmd_narratives_import,
        "alerts.list": cmd_alerts_list,
        "alerts.show": cmd_alerts_show,
        "alerts.ack": cmd_alerts_ack,
        "rules.test": cmd_rules_test,
        "index": cmd_index,
        "serve": cmd_serve,
        "trace": cmd_trace,
        "themes": cmd_themes,
        "token": cmd_token,
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

    al = sub.add_parser("alerts", help="the alert inbox").add_subparsers(dest="sub", required=True)
    p = al.add_parser("list", help="alerts, newest first")
    p.add_argument("--since", type=when_arg, help="created at or after")
    p.add_argument("--until", type=when_arg, help="created before")
    p.add_argument("--rule")
    p.add_argument("--severity", choices=("info", "warning", "critical"))
    p.add_argument("--unacked", action="store_true")
    p.add_argument("--limit", type=bounded_int(1, 10_000), default=50, help="rows per page, 1..10000 (default 50)")
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

    ru = sub.add_parser("rules", help="alert rules").add_subparsers(dest="sub", required=True)
    p = ru.add_parser("test", help="dry-run a rule against stored matches")
    p.add_argument("rule")
    p.add_argument("--since", default="30d", type=when_arg)
    p.add_argument(
        "--step",
        type=bounded_int(1, 7 * 86400),
        default=3600,
        help=f"evaluation step in seconds, 1..604800 (default 3600; at most {RULES_TEST_MAX_EVALUATIONS:,} steps)",
    )
    p.add_argument("--send", action="store_true", help="enqueue and deliver what it would send")
    p.set_defaults(func="rules.test")

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
    p.add_argument("--since", default="7d", type=when_arg)
    p.add_argument("--min-size", type=bounded_int(1, 10_000), default=5, help="distinct texts a theme needs")
    p.add_argument("--max", type=bounded_int(1, 1000), default=20, help="themes to show, 1..1000")
    p.add_argument("--promote", type=int, help="theme number to promote to a draft narrative")
    p.add_argument("--id", help="narrative id for --promote")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func="themes")

    p = sub.add_parser("serve", help="HTTP API and web UI")
    p.add_argument("--host", help="default api.host (127.0.0.1)")
    p.add_argument("--port", type=bounded_int(0, 65535), help="default api.port (8765)")
    p.set_defaults(func="serve")

    p = sub.add_parser("token", help="API tokens: create NAME --role read|analyst | revoke NAME | list")
    p.add_argument("action", choices=["create", "revoke", "list"])
    p.add_argument("name", nargs="?")
    p.add_argument("--role", choices=["read", "analyst"], default="read")
    p.set_defaults(func="token")

    p = sub.add_parser("index", help="index lifecycle: create | status | reindex (model change)")
    p.add_argument("action", choices=["create", "status", "reindex"])
    p.set_defaults(func="index")
