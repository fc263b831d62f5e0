"""Several workers, one picture: three ``narrawatch run`` workers on one PostgreSQL (index and state).

A loopback world: real Telegram posts (the bundled demo posts, from ../shared/data, CC BY 4.0: see
narrawatch/demo/data/ORIGIN.md) on six channels and one real feed (tests/data/feeds, see ORIGIN.md),
served by :class:`narrawatch.demo.replay.ReplayServer` on 127.0.0.1; one narrative planted in three
channels (a real post with the narrative's sentence added); a webhook receiver on 127.0.0.1 that
records each POST with its ``Idempotency-Key``. Each worker has its own config and data directory
(as on separate machines) and shares only ``$NARRAWATCH_PG_URL``. One worker is SIGKILLed while it
holds a source's lease (mid-crawl); a fourth joins later.

Asserted: every item indexed exactly once; every source crawled, the dead worker's taken over;
exactly one recurrence alert for the planted narrative, delivered once to the webhook;
``sources --json`` from any worker's config shows every source's health; the fourth worker
changes nothing but who crawls. Polls with generous deadlines; nothing is timed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from narrawatch.demo.replay import ReplayServer, load_demo_posts

pytestmark = pytest.mark.postgresql

FEED_DIR = Path(__file__).resolve().parents[1] / "data" / "feeds"
FEED = "liga_net_2021-08-22.rss"
PLANTED = ("bbc_russian_demo", "ria_novosti_demo", "mash_demo")
OTHERS = ("newsach_demo", "ranshe_vseh_demo", "banksta_demo")
PER_CHANNEL = 100
NARRATIVE = "n-moldova-biolab"
SENTENCES = (
    "Запад тайно готовит биолабораторию в Молдавии для нападения на Приднестровье.",
    "В Молдавии западные кураторы строят секретную биолабораторию против Приднестровья.",
    "Секретная западная биолаборатория в Молдавии готовит удар по Приднестровью.",
)


class Receiver:
    """A webhook receiver on 127.0.0.1: every POST's JSON body and Idempotency-Key."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        me = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                with me.lock:
                    me.received.append((self.headers.get("Idempotency-Key", ""), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def about(self, needle: str) -> list[tuple[str, dict[str, Any]]]:
        with self.lock:
            return [(k, b) for k, b in self.received if needle in json.dumps(b, ensure_ascii=False)]


def channel_posts() -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Real posts per channel, and the planted ones (fresh dates: inside the detector's window)."""
    everything = load_demo_posts()
    posts: list[dict[str, Any]] = []
    expected: dict[str, int] = {}
    now = datetime.now(UTC)
    for h in PLANTED + OTHERS:
        mine = sorted((p for p in everything if p["handle"] == h), key=lambda p: int(p["message_id"]))[:PER_CHANNEL]
        posts.extend(mine)
        expected[f"tg-{h}"] = len(mine)
    for i, h in enumerate(PLANTED):
        mine = [p for p in posts if p["handle"] == h]
        base = next(p for p in mine[10:] if 10 < len(p["text"].split()) < 80)
        planted = {
            **base,
            "message_id": int(mine[-1]["message_id"]) + 1,
            "date": (now - timedelta(minutes=10 + i)).isoformat(),
            "text": base["text"] + "\n\n" + SENTENCES[i],
        }
        posts.append(planted)
        expected[f"tg-{h}"] += 1
    return posts, expected


def write_worker(root: Path, n: int, base_url: str, prefix: str) -> Path:
    cfg = root / f"worker{n}" / "config"
    cfg.mkdir(parents=True)
    sources: list[dict[str, Any]] = [
        {
            "id": f"tg-{h}",
            "kind": "telegram",
            "channel": h,
            "base_url": base_url,
            "max_pages": 50,
            "every": "30s",
            "jitter": "2s",
            "outlet": f"t.me/{h}",
        }
        for h in PLANTED + OTHERS
    ]
    sources.append(
        {"id": "feed-liga", "kind": "feed", "url": f"{base_url}/feeds/{FEED}", "fetch_articles": False, "every": "30s"}
    )
    (cfg / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}), encoding="utf-8")
    service = {
        "data_dir": "../data",
        "embedding": {"model": "hashing"},
        "crawl": {
            "download_delay": "0s",
            "autothrottle": False,
            "retry_times": 0,
            "timeout": "5s",
            "max_parallel_sources": 2,
            "lease": "5s",
        },
        "index": {"backend": "postgresql", "postgresql": {"table_prefix": prefix}},
        "state": {"backend": "postgresql", "postgresql": {"schema_name": prefix}},
        "recheck": {"enabled": False},
        "api": {"enabled": False},
    }
    (cfg / "service.yaml").write_text(yaml.safe_dump(service), encoding="utf-8")
    (cfg / "narratives").mkdir()
    narrative = {
        "id": NARRATIVE,
        "title": "A Western biolab in Moldova",
        "description": "The West is building a secret biolab in Moldova to attack Transnistria.",
        "exemplars": {"ru": list(SENTENCES)},
        "keywords": ["Молдавии"],
        "keyword_mode": "gate",
        "thresholds": {"suggest": 0.3, "alert": 0.35},
    }
    (cfg / "narratives" / "biolab.yaml").write_text(json.dumps(narrative, ensure_ascii=False), encoding="utf-8")
    (cfg / "alerts.yaml").write_text(
        "rules:\n"
        "  - {id: recurrence, detector: recurrence, severity: warning, realert: 24h, channels: [hook],\n"
        "     options: {window: 48h, min_matches: 3, min_outlets: 3}}\n"
        "channels:\n"
        "  - {id: hook, kind: webhook, url_env: NARRAWATCH_WEBHOOK_URL}\n",
        encoding="utf-8",
    )
    return cfg


def until(what: str, check: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for: {what}")
        time.sleep(0.2)


@pytest.fixture
def pg(pg_url: str) -> Iterator[tuple[str, str]]:
    import psycopg

    prefix = f"nwe2e_{uuid.uuid4().hex[:8]}"
    yield pg_url, prefix
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{prefix}" CASCADE')
        rows = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_name LIKE %s", (prefix + "%",)
        ).fetchall()
        for schema, name in rows:
            conn.execute(f'DROP TABLE IF EXISTS "{schema}"."{name}" CASCADE')


def test_three_workers_one_killed_one_joining(tmp_path: Path, pg: tuple[str, str]) -> None:
    import psycopg

    url, prefix = pg
    posts, expected = channel_posts()
    feed = (FEED_DIR / FEED).read_bytes()
    receiver = Receiver()
    env = {**os.environ, "NARRAWATCH_PG_URL": url, "NARRAWATCH_WEBHOOK_URL": receiver.url}
    env["NARRAWATCH_CRAWL_LOG_LEVEL"] = "WARNING"
    procs: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []

    def start(n: int, cfg: Path) -> subprocess.Popen[bytes]:
        log = tmp_path / f"worker{n}.log"
        logs.append(log)
        with log.open("wb") as fh:
            p = subprocess.Popen(
                [sys.executable, "-m", "narrawatch", "--config", str(cfg), "run", "--no-api"],
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # a kill of the group takes the worker's crawl child too
            )
        procs.append(p)
        return p

    def nw(cfg: Path, *args: str) -> Any:
        r = subprocess.run(
            [sys.executable, "-m", "narrawatch", "--config", str(cfg), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr[-2000:]
        return json.loads(r.stdout)

    def leases() -> dict[str, tuple[str | None, int | None, int]]:
        try:
            with psycopg.connect(url) as conn:
                rows = conn.execute(
                    f'SELECT source_id, lease_owner, lease_until, claims FROM "{prefix}".source_lease'
                ).fetchall()
        except psycopg.Error:
            return {}
        return {r[0]: (r[1], r[2], int(r[3])) for r in rows}

    with ReplayServer(posts, {FEED: feed}) as server:
        cfgs = [write_worker(tmp_path, n, server.base_url, prefix) for n in range(4)]
        try:
            workers = [start(n, cfgs[n]) for n in range(3)]
            victim = workers[0]
            held: list[str] = []

            def victim_holds_a_lease() -> bool:
                now_us = int(time.time() * 1e6)
                mine = [
                    sid
                    for sid, (owner, until_us, _) in leases().items()
                    if owner and owner.split(":")[-2] == str(victim.pid) and until_us and until_us > now_us
                ]
                held[:] = mine
                return bool(mine)

            until("worker 0 holds a source's lease (crawling it)", victim_holds_a_lease, timeout=90)
            os.killpg(victim.pid, signal.SIGKILL)  # mid-crawl: the worker and its crawl child
            victim.wait()
            taken_over = list(held)

            health_of: Callable[[int], dict[str, dict[str, Any]]] = lambda n: {  # noqa: E731
                h["id"]: h for h in nw(cfgs[n], "sources", "--json")
            }
            all_ids = set(expected) | {"feed-liga"}

            def every_source_crawled() -> bool:
                health = health_of(1)
                return set(health) >= all_ids and all(health[s]["last_success"] for s in all_ids)

            until("every source crawled, the dead worker's taken over", every_source_crawled, timeout=120)
            rows = leases()
            assert set(rows) == all_ids
            for sid in taken_over:
                owner, _, claims = rows[sid]
                assert claims >= 2, f"{sid} was claimed again after the kill"
                assert owner is None or owner.split(":")[-2] != str(victim.pid)
            # one health view: the same sources and results from any worker's config
            h1, h2 = health_of(1), health_of(2)
            assert set(h1) == set(h2) == all_ids
            assert {s: h1[s]["last_success"] is not None for s in all_ids} == {s: True for s in all_ids}

            until("the recurrence alert reached the webhook", lambda: bool(receiver.about(NARRATIVE)), timeout=120)
            stats = nw(cfgs[2], "stats", "--json")
            for sid, n in expected.items():
                assert stats["by_source"][sid] == n, (sid, stats["by_source"])
            ids = [json.loads(line)["id"] for line in _export(cfgs[1], env).splitlines()]
            assert len(ids) == len(set(ids)) == stats["documents"]  # every item exactly once

            # a fourth worker joins: it takes its share of the crawling and changes nothing else
            fourth = start(3, cfgs[3])
            until("the fourth worker claimed a source", lambda: b"claimed" in logs[-1].read_bytes(), timeout=120)
            until(
                "the fourth worker's crawl finished",
                lambda: b"source tg-" in logs[-1].read_bytes() or b"source feed-" in logs[-1].read_bytes(),
                timeout=120,
            )
            again = nw(cfgs[3], "stats", "--json")
            assert again["documents"] == stats["documents"] and again["by_source"] == stats["by_source"]
            assert fourth.poll() is None

            alerts = nw(cfgs[1], "alerts", "list", "--json", "--rule", "recurrence")
            assert len(alerts) == 1, alerts
            deliveries = receiver.about(NARRATIVE)
            assert len(deliveries) == 1, deliveries  # delivered once, across the kill and the join
            assert deliveries[0][0].startswith(str(alerts[0]["id"]))  # the content-derived key
        finally:
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
            receiver.httpd.shutdown()
    for p, log in zip(procs[1:], logs[1:], strict=True):
        assert p.returncode == 0, log.read_text(errors="replace")[-3000:]


def _export(cfg: Path, env: dict[str, str]) -> str:
    r = subprocess.run(
        [sys.executable, "-m", "narrawatch", "--config", str(cfg), "export"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout
