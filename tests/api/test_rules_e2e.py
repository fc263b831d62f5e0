"""End to end: a running ``narrawatch run`` gets a saved search over its HTTP API and raises an
alert on the next ingest, without a restart; the back catalogue never alerts.

Real processes and servers on loopback: the service (scheduler, Scrapy crawl child, embedded
index, API) and a replay of real Telegram preview pages (narrawatch.demo.replay) that releases
newer posts after the rule is saved.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from narrawatch.demo.replay import ReplayServer, load_demo_posts

HANDLE = "ria_novosti_demo"
WORD = re.compile(r"\w{7,}", re.UNICODE)


def nw(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "narrawatch", "--config", str(cfg), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NARRAWATCH_CRAWL_LOG_LEVEL": "WARNING"},
    )


def posts() -> list[dict[str, Any]]:
    return sorted((p for p in load_demo_posts() if p["handle"] == HANDLE), key=lambda p: p["message_id"])


def fresh_word(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> str:
    """A word in the newer posts that no earlier post has (by its first 6 letters, like a stemmer)."""
    seen = {w.lower()[:6] for p in old for w in WORD.findall(p["text"])}
    counts: dict[str, int] = {}
    for p in new:
        for w in {w.lower() for w in WORD.findall(p["text"]) if not w.isdigit()}:
            if w[:6] not in seen:
                counts[w] = counts.get(w, 0) + 1
    return max(sorted(counts), key=lambda w: counts[w])


def request(method: str, url: str, token: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode("utf-8") if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.mark.timeout(400)
def test_saved_search_created_over_the_api_alerts_on_the_next_ingest(tmp_path: Path) -> None:
    everything = posts()
    old, new = everything[:40], everything[40:55]
    word = fresh_word(old, new)
    with ReplayServer(old) as server:
        cfg = tmp_path / "config"
        cfg.mkdir()
        source = {"id": "tg-ria", "kind": "telegram", "channel": HANDLE, "base_url": server.base_url, "every": "3s"}
        (cfg / "sources.yaml").write_text(yaml.safe_dump({"sources": [source]}), encoding="utf-8")
        service = {
            "data_dir": "../data",
            "embedding": {"model": "hashing"},
            "crawl": {"download_delay": "0s", "autothrottle": False, "retry_times": 0, "timeout": "5s"},
            "api": {"port": 0},
        }
        (cfg / "service.yaml").write_text(yaml.safe_dump(service), encoding="utf-8")
        token = nw(cfg, "token", "create", "alice", "--role", "analyst").stdout.strip()
        assert token.startswith("nw_"), token

        proc = subprocess.Popen(
            [sys.executable, "-m", "narrawatch", "--config", str(cfg), "run"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "NARRAWATCH_CRAWL_LOG_LEVEL": "WARNING"},
        )
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)  # type: ignore[union-attr]
        reader.start()
        try:
            deadline = time.monotonic() + 120
            base = ""
            while time.monotonic() < deadline and not base:
                found = [m for line in list(lines) if (m := re.search(r"API and web UI on (http://\S+?)/?$", line))]
                base = found[0].group(1).rstrip("/") if found else ""
                time.sleep(0.2)
            assert base, "".join(lines)[-3000:]
            while time.monotonic() < deadline:  # the back catalogue is in
                out = nw(cfg, "stats", "--json").stdout
                if out and json.loads(out).get("documents") == len(old):
                    break
                time.sleep(1)
            rule = {"id": "watch-fresh", "detector": "query", "options": {"query": word}, "realert": "1s"}
            status, body = request("POST", f"{base}/api/v1/rules", token, rule)
            assert status == 201, body
            server.release(new)  # the next scheduled ingest brings them

            alerts: list[dict[str, Any]] = []
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and not alerts:
                out = nw(cfg, "alerts", "list", "--rule", "watch-fresh", "--json").stdout
                alerts = json.loads(out) if out.strip() else []
                time.sleep(1)
            assert alerts, "".join(lines)[-3000:]
            assert proc.poll() is None  # the same process: no restart

            shown = json.loads(nw(cfg, "alerts", "show", alerts[0]["id"], "--json").stdout)
            evidence = [m for e in shown["events"] for m in e["evidence"]]
            new_ids = {str(p["message_id"]) for p in new}
            assert evidence and all(m["url"].rstrip("/").rsplit("/", 1)[-1] in new_ids for m in evidence)
            assert all(m["exemplar"] == word and m["score"] > 0 for m in evidence)
            assert any(k[:6] == word[:6] for m in evidence for k in m["keywords"])
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=120)
            finally:
                if proc.poll() is None:
                    proc.kill()
