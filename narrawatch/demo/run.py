"""``narrawatch demo``: the whole product on real bundled content, offline, in minutes.

Starts a loopback replay (:mod:`narrawatch.demo.replay`) of real Telegram posts and real RSS feeds,
writes a config pointing at it (plus the shipped narrative catalogue and alert rules), and runs
the real pipeline: Scrapy crawl -> extraction -> embedding -> embedded index -> narrative
matching -> detectors -> alerts. Then it shows what was found and where to look next.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from core.errors import ConfigError, ConfigIssue
from core.settings import load_config
from narrawatch.app import open_app
from narrawatch.builtins import register_builtins
from narrawatch.demo.replay import DEMO_DATA, ReplayServer, WebhookSink, load_demo_posts
from narrawatch.monitoring import attach_monitoring
from narrawatch.terminal import print_reports, progress_printer

__all__ = ["SHIPPED_CONFIG", "run_demo", "write_demo_config"]

log = logging.getLogger(__name__)

SHIPPED_CONFIG = Path(__file__).resolve().parents[2] / "config"
"""The repository's ``config/``: the demo runs the shipped catalogue and its learned state."""


def write_demo_config(workdir: Path, base_url: str, handles: list[str], feeds: list[str]) -> Path:
    """Write ``<workdir>/config`` for the replay at ``base_url``; returns the config directory."""
    cfg = workdir / "config"
    cfg.mkdir(parents=True, exist_ok=True)
    sources: list[dict[str, Any]] = [
        {
            "id": f"tg-{h.replace('_', '-')}",
            "kind": "telegram",
            "channel": h,
            "base_url": base_url,
            "max_pages": 30,
            "every": "10m",
            "outlet": f"t.me/{h}",
        }
        for h in handles
    ]
    for name in feeds:
        stem = name.split(".")[0].split("_")[0 if not name.startswith("stub_") else 1]
        sources.append({"id": f"feed-{stem}", "kind": "feed", "url": f"{base_url}/feeds/{name}", "every": "15m"})
    (cfg / "sources.yaml").write_text(
        "# Written by `narrawatch demo`: sources served by the loopback replay.\n"
        + yaml.safe_dump({"sources": sources}, allow_unicode=True, sort_keys=False),
        encoding="utf-8",
    )
    service = {
        "data_dir": "../data",
        "crawl": {"download_delay": "0s", "autothrottle": False, "concurrency_per_domain": 8, "retry_times": 1},
    }
    (cfg / "service.yaml").write_text(yaml.safe_dump(service, sort_keys=False), encoding="utf-8")
    # The catalogue and what `narratives learn` fitted for it (the learned decision stage).
    for part in ("narratives", "learned"):
        src, dst = SHIPPED_CONFIG / part, cfg / part
        if not src.is_dir():  # a demo without the catalogue would match nothing and say nothing
            raise ConfigError(
                [ConfigIssue(str(src), "", f"the shipped {part} are missing (run the demo from a checkout)")]
            )
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst)
    (cfg / "alerts").mkdir(exist_ok=True)
    (cfg / "alerts" / "demo.yaml").write_text(DEMO_ALERTS, encoding="utf-8")
    return cfg


# The demo steps through the replay one day at a time, so look-backs are a day. Like the production
# rules, detectors count alert-tier matches only; suggest-tier matches are for review (web UI,
# `matches list`), never for paging anyone.
DEMO_ALERTS = """\
# Written by `narrawatch demo`. Rules tuned for a day-by-day replay; see config/alerts/ for
# the production defaults and docs/alerts.md for every option.
rules:
  - {id: recurrence, detector: recurrence, severity: warning, realert: 24h, channels: [webhook],
     options: {window: 48h, min_matches: 3, min_outlets: 2}}
  - {id: new-outlet, detector: new_outlet, severity: info, realert: 7d, channels: [webhook],
     options: {lookback: 24h, min_prior_outlets: 1}}
  - {id: coordinated-burst, detector: coordinated_burst, severity: critical, realert: 6h, channels: [webhook],
     options: {within: 30m, min_outlets: 2, lookback: 24h}}
  - {id: source-silence, detector: source_silence, severity: info, realert: 24h, channels: [webhook],
     options: {silent_for: 48h, max_failures: 3}}
channels:
  - {id: webhook, kind: webhook, url_env: NARRAWATCH_WEBHOOK_URL}
"""


def _when(post: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(post["date"])


def run_demo(workdir: Path, *, json_out: bool = False, days: int = 6) -> int:
    """Run the demo in ``workdir`` (created; re-running resumes from its state).

    The posts are replayed as a timeline: everything older than the last ``days`` days first,
    then one day at a time, each followed by a crawl pass and a detector run whose clock stands
    at the end of that day, as if the service had been running then.
    """
    posts = sorted(load_demo_posts(), key=lambda p: p["date"])
    feeds = {p.name: p.read_bytes() for p in sorted((DEMO_DATA / "feeds").glob("*"))}
    last = datetime.fromisoformat(posts[-1]["date"])
    cut = (last - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    phases: list[tuple[datetime, list[dict[str, Any]]]] = [(cut, [p for p in posts if _when(p) < cut])]
    for d in range(days + 1):
        lo, hi = cut + timedelta(days=d), cut + timedelta(days=d + 1)
        phases.append((hi, [p for p in posts if lo <= _when(p) < hi]))
    clock = {"now": cut}
    sink = WebhookSink()
    os.environ["NARRAWATCH_WEBHOOK_URL"] = sink.url
    with ReplayServer((), feeds, channels={p["handle"] for p in posts}) as server:
        server.release(phases[0][1])
        cfg_dir = write_demo_config(workdir, server.base_url, sorted({p["handle"] for p in posts}), list(feeds))
        register_builtins()  # the demo is its own composition root when called without the CLI
        config = load_config(cfg_dir)
        print(
            f"replaying {len(posts)} real Telegram posts from {len(server.channels())} channels and "
            f"{len(feeds)} real feeds at {server.base_url} (loopback only), as a timeline up to {last:%Y-%m-%d}"
        )
        with open_app(config) as app:
            monitoring = attach_monitoring(app, clock=lambda: clock["now"], keep_summary=True)
            sources = [s.id for s in config.sources]
            totals: dict[str, Any] = {}
            for i, (until, chunk) in enumerate(phases):
                if i:
                    server.release(chunk)
                clock["now"] = until
                label = "history" if i == 0 else f"{until - timedelta(days=1):%Y-%m-%d}"
                print(f"-- {label}: {len(chunk)} new posts on the replay server")
                on_event, stop = progress_printer(sources)
                try:
                    reports = app.pipeline.ingest(sources, on_event=on_event)
                finally:
                    stop()
                for r in reports:
                    t = totals.setdefault(r.source_id, r)
                    if t is not r:
                        t.fetched += r.fetched
                        t.new += r.new
                        t.updated += r.updated
                        t.unchanged += r.unchanged
                        t.dropped.update(r.dropped)
                        t.errors.extend(r.errors)
                        t.ok = bool(t.ok and r.ok)
                if monitoring is not None:
                    monitoring.after_pass()
            print_reports(list(totals.values()), json_out)
            if monitoring is not None:
                monitoring.print_summary()
                print(f"webhook receiver on loopback got {len(sink.received)} alert messages")
            stats = app.index.stats()
            print(
                f"\nindexed {stats.documents} documents / {stats.passages} passages "
                f"({', '.join(f'{k}={v}' for k, v in sorted(stats.by_language.items()))}); "
                f"model {stats.embedding_space.model if stats.embedding_space else '?'}"
            )
    sink.close()
    exe = shutil.which("narrawatch") or str(Path(sys.executable).with_name("narrawatch"))
    print(
        "\nwhere to look next:\n"
        f'  {exe} --config {cfg_dir} search "NATO is preparing a war against Russia" -k 5  # cross-lingual\n'
        f"  {exe} --config {cfg_dir} stats --json\n"
        f"  {exe} --config {cfg_dir} sources\n"
        f"  {exe} --config {cfg_dir} alerts list\n"
        f"  {exe} --config {cfg_dir} export --format jsonl -o {workdir}/export.jsonl\n"
        f'  {exe} --config {cfg_dir} trace --claim "The West is preparing a war against Russia"'
        f" --export-dir {workdir}/trace\n"
        f"  {exe} --config {cfg_dir} token create me --role analyst   # then:\n"
        f"  {exe} --config {cfg_dir} serve   # web UI on http://127.0.0.1:8765/ (log in with the token)\n"
    )
    return 0
