"""Alert latency: a post appears on a loopback Telegram channel -> the alert reaches a webhook.

The real service loop runs in-process: ``narrawatch.scheduler.Service`` with one interval job
per source (``every`` = ``--every`` seconds, the poll interval) and the monitoring job
(``MonitoringService.after_pass``: detectors, outbox, delivery) at the same interval, over
``narrawatch.demo.replay.ReplayServer`` serving ``reps + 1`` channels that carry real posts
(telegram_ru_posts.jsonl). The first channel also carries a post restating a narrative in the
words of its own Russian exemplars (``--narrative``), so the narrative is known in one outlet.
Each repetition releases such a post on the next channel: the ``new_outlet`` rule (lookback 24h,
min_prior_outlets 1, min_tier suggest) fires for that outlet and the webhook channel POSTs it to
a loopback receiver. Latency = receipt time - release time.

    .venv/bin/python -m bench.alert_latency [--reps 5] [--every 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from bench.common import ROOT, append_table, emit, loadavg, pct, real_posts
from narrawatch.demo.replay import WebhookSink

__all__ = ["WebhookReceiver", "main", "run"]


WebhookReceiver = WebhookSink  # the receiver lives in narrawatch.demo.replay (shared with the demo)


def _claim_text(narrative_id: str) -> str:
    from monitors.catalogue import load_catalogue

    n = load_catalogue(ROOT / "config").get(narrative_id)
    ru = list(n.exemplars.get("ru", ())) or [t for _, t in n.all_exemplars()]
    return " ".join(ru[:2])


def _write_config(workdir: Path, base_url: str, handles: list[str], every: int, webhook: str) -> Path:
    from narrawatch.demo import write_demo_config

    cfg = write_demo_config(workdir, base_url, [], [])
    sources = [
        {
            "id": f"tg-{h}",
            "kind": "telegram",
            "channel": h,
            "base_url": base_url,
            "max_pages": 2,
            "every": f"{every}s",
            "outlet": f"t.me/{h}",
        }
        for h in handles
    ]
    (cfg / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}, sort_keys=False), encoding="utf-8")
    rules = {
        "rules": [
            {
                "id": "new-outlet",
                "detector": "new_outlet",
                "severity": "info",
                "realert": "7d",
                "channels": ["webhook"],
                "options": {"lookback": "24h", "min_prior_outlets": 1, "min_tier": "suggest"},
            }
        ],
        "channels": [{"id": "webhook", "kind": "webhook", "url": webhook}],
        "outbox": {"backoff_base": "1s"},
    }
    (cfg / "alerts" / "demo.yaml").write_text(yaml.safe_dump(rules, sort_keys=False), encoding="utf-8")
    return cfg


def run(
    reps: int = 5,
    *,
    every: int = 5,
    narrative: str = "west-preparing-war-on-russia",
    workdir: Path = Path("/tmp/nw-bench-alert"),
    timeout: float = 180.0,
    write: bool = True,
) -> list[dict[str, Any]]:
    """Measure ``reps`` release-to-webhook latencies; returns the JSON records."""
    from core.settings import load_config
    from narrawatch.app import open_app
    from narrawatch.builtins import register_builtins

    register_builtins()  # as the CLI does before it loads a config
    from narrawatch.demo.replay import ReplayServer
    from narrawatch.monitoring import attach_monitoring
    from narrawatch.scheduler import Service

    shutil.rmtree(workdir, ignore_errors=True)
    claim = _claim_text(narrative)
    handles = [f"nwalert{i}" for i in range(reps + 1)]
    now = datetime.now(UTC)
    background = real_posts(4 * len(handles))
    posts = []
    for i, p in enumerate(background):  # real posts, re-dated to the last hours, 4 per channel
        posts.append(
            {
                **p,
                "handle": handles[i % len(handles)],
                "message_id": 100 + i,
                "date": (now - timedelta(hours=6, minutes=i)).isoformat(),
            }
        )
    posts.append(
        {"handle": handles[0], "message_id": 900, "date": (now - timedelta(hours=1)).isoformat(), "text": claim}
    )
    receiver = WebhookReceiver()
    rows: list[dict[str, Any]] = []
    os.environ.pop("NARRAWATCH_WEBHOOK_URL", None)
    with ReplayServer(posts) as server:
        config = load_config(_write_config(workdir, server.base_url, handles, every, receiver.url))
        with open_app(config) as app:
            monitoring = attach_monitoring(app)
            assert monitoring is not None
            service = Service(config, app.pipeline)
            service.add_job("monitoring", monitoring.after_pass, timedelta(seconds=every))
            thread = threading.Thread(target=service.run_forever, kwargs={"install_signals": False}, daemon=True)
            t_start = time.perf_counter()
            thread.start()
            # warm: every source crawled once and the seed matched
            while time.perf_counter() - t_start < timeout:
                if all(app.state.get(f"tg-{h}").last_success for h in handles) and len(monitoring.store):
                    break
                time.sleep(0.5)
            warm = time.perf_counter() - t_start
            emit("alert_latency", stage="warm", seconds=round(warm, 1), seed_matches=len(monitoring.store))
            latencies = []
            for i, h in enumerate(handles[1:], start=1):
                t0 = time.perf_counter()
                server.release(
                    [{"handle": h, "message_id": 1000 + i, "date": datetime.now(UTC).isoformat(), "text": claim}]
                )
                got = receiver.wait_for(f"t.me/{h}", timeout)
                lat = None if got is None else got - t0
                if lat is not None:
                    latencies.append(lat)
                emit(
                    "alert_latency",
                    stage="rep",
                    rep=i,
                    outlet=f"t.me/{h}",
                    latency_s=None if lat is None else round(lat, 2),
                    load=loadavg(),
                )
            service.stop()
            thread.join(60)
    receiver.close()
    p = pct(latencies) if latencies else {"p50": None, "p95": None, "p99": None}
    rows.append(
        emit(
            "alert_latency",
            stage="summary",
            reps=reps,
            delivered=len(latencies),
            poll_interval_s=every,
            monitoring_interval_s=every,
            p50_s=p["p50"],
            p95_s=p["p95"],
            max_s=round(max(latencies), 2) if latencies else None,
            target_s=every + 10,
            warmup_s=round(warm, 1),
            load=loadavg(),
        )
    )
    if write:
        append_table(
            "Alert latency: release on a loopback channel -> webhook receipt",
            rows,
            params={
                "reps": reps,
                "every": f"{every}s",
                "sources": len(handles),
                "narrative": narrative,
                "rule": "new_outlet lookback 24h min_prior_outlets 1 min_tier suggest",
            },
            columns=[
                "reps",
                "delivered",
                "poll_interval_s",
                "monitoring_interval_s",
                "p50_s",
                "p95_s",
                "max_s",
                "target_s",
                "warmup_s",
                "load",
            ],
            notes="in-process Service (APScheduler) + monitoring job; each poll spawns the Scrapy crawl "
            "subprocess; the source jitter is 10% of every",
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--every", type=int, default=5)
    ap.add_argument("--narrative", default="west-preparing-war-on-russia")
    ap.add_argument("--dir", default="/tmp/nw-bench-alert")
    ap.add_argument("--no-write", action="store_true", help="do not append to bench/RESULTS.md")
    a = ap.parse_args(argv)
    run(a.reps, every=a.every, narrative=a.narrative, workdir=Path(a.dir), write=not a.no_write)


if __name__ == "__main__":
    main()
