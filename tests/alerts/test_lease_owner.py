"""Outbox leases belong to the process that took them (issue 10, item 4).

A dispatcher killed with SIGKILL while a webhook request is in flight (the loopback receiver has
the request and stalls before answering) leaves a leased row. A new dispatcher started right
after must send it at once, with the same idempotency key, instead of waiting for the lease
(5 minutes) to run out. A lease whose owner is alive is still respected.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from alerts.config import AlertsConfig, build_channels, load_alerts_dir
from alerts.outbox import Dispatcher, Outbox, _start_time, lease_owner, lease_owner_alive
from alerts.rules import AlertEngine
from core.errors import ConfigIssue
from core.events import DetectorEvent
from core.timefmt import to_us
from tests.alerts.conftest import NOW
from tests.support.sinks import free_port

ROOT = Path(__file__).resolve().parents[2]


class StallingReceiver:
    """A loopback webhook that records each request and, while ``stall`` is set, never answers."""

    def __init__(self) -> None:
        self.port = free_port()
        self.keys: list[str] = []
        self.got = threading.Event()
        self.stall = threading.Event()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
                receiver.keys.append(self.headers.get("Idempotency-Key", ""))
                receiver.got.set()
                if receiver.stall.is_set():
                    receiver.release.wait(60)
                    return  # no answer: the sender is still waiting when it is killed
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StallingReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def stalling() -> Iterator[StallingReceiver]:
    with StallingReceiver() as r:
        yield r


def _config(tmp: Path, url: str) -> AlertsConfig:
    (tmp / "alerts").mkdir(parents=True)
    (tmp / "alerts" / "a.yaml").write_text(
        f"channels:\n  - {{id: hook, kind: webhook, url: '{url}/in', timeout: 120s}}\n"
        "rules:\n  - {id: recurrence, detector: recurrence, channels: [hook]}\n",
        encoding="utf-8",
    )
    issues: list[ConfigIssue] = []
    cfg = load_alerts_dir(tmp, issues)
    assert issues == []
    return cfg


DISPATCH = (
    "import sys\n"
    "from narrawatch.builtins import register_builtins\n"
    "register_builtins()\n"
    "from alerts.config import load_alerts_dir, build_channels\n"
    "from alerts.outbox import Outbox, Dispatcher\n"
    "from pathlib import Path\n"
    "cfg = load_alerts_dir(Path(sys.argv[1]), [])\n"
    "ob = Outbox(sys.argv[2], cfg.outbox)\n"
    "print('COUNTS', Dispatcher(ob, build_channels(cfg)).deliver_due(), flush=True)\n"
)


@pytest.mark.timeout(120)
def test_kill_9_mid_delivery_then_a_new_dispatcher_resends_at_once(
    tmp_path: Path, events: list[DetectorEvent], stalling: StallingReceiver
) -> None:
    cfg = _config(tmp_path / "cfg", f"http://127.0.0.1:{stalling.port}")
    db = tmp_path / "outbox.sqlite"
    with Outbox(db, cfg.outbox) as outbox:
        (alert,) = AlertEngine(cfg, outbox).process([e for e in events if e.detector == "recurrence"], NOW)
    key = f"{alert.id}.hook"

    stalling.stall.set()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", DISPATCH, str(tmp_path / "cfg"), str(db)], env=env, cwd=ROOT)
    try:
        assert stalling.got.wait(60), "the dispatcher never reached the webhook"
        with Outbox(db, cfg.outbox) as outbox:
            (row,) = outbox.deliveries(status="pending")
        assert row.lease_owner is not None and row.lease_owner.split("|")[3] == str(proc.pid)
        assert row.lease_until is not None and row.lease_until > datetime.now(UTC) + timedelta(minutes=4)
        assert lease_owner_alive(row.lease_owner) is True  # in flight: nobody else may take it
        with Outbox(db, cfg.outbox) as outbox:
            assert outbox.due(datetime.now(UTC)) == []
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    stalling.stall.clear()
    stalling.release.set()

    # The new dispatcher runs now (no clock moved): the dead process's lease does not hold the row.
    with Outbox(db, cfg.outbox) as outbox:
        (row,) = outbox.deliveries(status="pending")
        assert row.lease_owner is not None and lease_owner_alive(row.lease_owner) is False
        counts = Dispatcher(outbox, build_channels(cfg)).deliver_due()
        assert counts["sent"] == 1, counts
        assert stalling.keys == [key, key]  # the same idempotency key both times
        (sent,) = outbox.deliveries(status="sent")
        assert sent.lease_owner is None and sent.lease_until is None


def test_a_live_owners_lease_is_respected(tmp_path: Path, events: list[DetectorEvent]) -> None:
    """Another process's live lease (here: this test's parent process) holds the row; a gone
    owner's does not; an owner that cannot be checked holds it until ``lease_until``."""
    with Outbox(tmp_path / "o.sqlite") as outbox:
        cfg = _config(tmp_path / "cfg", "http://127.0.0.1:9")
        AlertEngine(cfg, outbox).process([e for e in events if e.detector == "recurrence"], NOW)
        (d,) = outbox.due(datetime.now(UTC))
        parent = subprocess.run(
            [sys.executable, "-c", "from alerts.outbox import lease_owner; print(lease_owner())"],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
            check=True,
        ).stdout.strip()
        assert lease_owner_alive(lease_owner()) is True
        assert lease_owner_alive(parent) is False  # that child has exited
        with outbox.transaction() as c:
            c.execute("UPDATE deliveries SET lease_owner = ?, lease_until = ?", (_token(os.getppid()), _us(60)))
        assert outbox.due(datetime.now(UTC)) == []  # the owner (our parent) is alive
        with outbox.transaction() as c:
            c.execute("UPDATE deliveries SET lease_owner = ?", (parent,))
        assert [x.alert_id for x in outbox.due(datetime.now(UTC))] == [d.alert_id]  # the owner is gone
        with outbox.transaction() as c:
            c.execute("UPDATE deliveries SET lease_owner = ?", ("otherhost|boot|pid:[1]|1|1",))
        assert outbox.due(datetime.now(UTC)) == []  # cannot tell: trusted until lease_until
        with outbox.transaction() as c:
            c.execute("UPDATE deliveries SET lease_until = ?", (_us(-1),))
        assert len(outbox.due(datetime.now(UTC))) == 1  # expired


def test_an_outbox_without_lease_owners_is_migrated(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    Outbox(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE deliveries DROP COLUMN lease_owner")
        conn.execute("ALTER TABLE alerts DROP COLUMN ack_note")
    with Outbox(path) as outbox:
        assert outbox.due(datetime.now(UTC)) == []
        cols = {r[1] for r in outbox.conn.execute("PRAGMA table_info(deliveries)")}
        assert "lease_owner" in cols


def _token(pid: int) -> str:
    """The lease-owner token process ``pid`` of this machine would write (as :func:`lease_owner`)."""
    me = lease_owner().split("|")
    return "|".join([*me[:3], str(pid), _start_time(pid)])


def _us(minutes: int) -> int:
    return to_us(datetime.now(UTC) + timedelta(minutes=minutes))
