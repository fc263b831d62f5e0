"""Outbox + dispatcher + channels against loopback receivers: exactly-once by idempotency key."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from alerts.config import AlertsConfig, build_channels, load_alerts_dir
from alerts.outbox import Dispatcher, Outbox
from alerts.rules import AlertEngine
from core.errors import ConfigIssue
from core.events import DetectorEvent
from tests.alerts.conftest import NOW
from tests.support.sinks import SmtpSink, WebhookReceiver

ROOT = Path(__file__).resolve().parents[2]


def write_config(tmp: Path, channels: str, rules: str) -> AlertsConfig:
    (tmp / "alerts").mkdir(exist_ok=True)
    (tmp / "alerts" / "a.yaml").write_text(f"channels:\n{channels}\nrules:\n{rules}\n", encoding="utf-8")
    issues: list[ConfigIssue] = []
    cfg = load_alerts_dir(tmp, issues)
    assert issues == []
    return cfg


RULES = """
  - {id: recurrence, detector: recurrence, channels: [hook]}
  - {id: spike, detector: spike, channels: [hook]}
  - {id: new-outlet, detector: new_outlet, channels: [hook]}
"""


def test_channel_down_then_back_every_alert_once(
    tmp_path: Path, events: list[DetectorEvent], receiver: WebhookReceiver
) -> None:
    cfg = write_config(tmp_path, f"  - {{id: hook, kind: webhook, url: '{receiver.url}/in'}}", RULES)
    outbox = Outbox(tmp_path / "outbox.sqlite", cfg.outbox)
    alerts = AlertEngine(cfg, outbox).process(events, NOW)
    assert len(alerts) == 3
    receiver.stop()  # down: connection refused
    d = Dispatcher(outbox, build_channels(cfg))
    c1 = d.deliver_due(NOW)
    assert c1["retry"] == 1 and c1["deferred"] == 2 and c1["sent"] == 0
    assert d.deliver_due(NOW + timedelta(seconds=10)) == {
        "sent": 0,
        "retry": 0,
        "failed": 0,
        "deferred": 0,
        "no_channel": 0,
    }
    receiver.start()
    receiver.fail_next = 1  # back, but answers 503 once
    t = NOW + timedelta(seconds=30)
    assert d.deliver_due(t)["retry"] == 1
    backoff = outbox.deliveries(status="pending")[0]
    assert backoff.attempts == 2 and backoff.next_attempt_at == t + timedelta(seconds=60)
    sent = d.deliver_due(t + timedelta(seconds=60))
    assert sent["sent"] == 3
    assert d.deliver_due(t + timedelta(days=1))["sent"] == 0
    assert sorted(receiver.unique_keys) == sorted(f"{a.id}.hook" for a in alerts)
    assert receiver.duplicates() == 0
    body = receiver.accepted[0].json()
    assert (
        body["schema"] == "narrawatch.alert/1"
        and body["idempotency_key"] == receiver.accepted[0].headers["idempotency-key"]
    )
    assert "not a verdict" in body["notice"]
    # Reprocessing the same events creates nothing new (same evidence never alerts twice).
    assert AlertEngine(cfg, outbox).process(events, NOW + timedelta(days=1)) == []


def test_email_through_apprise_to_smtp_sink(tmp_path: Path, events: list[DetectorEvent], smtp: SmtpSink) -> None:
    cfg = write_config(
        tmp_path,
        f"  - {{id: mail, kind: email, smtp_host: 127.0.0.1, smtp_port: {smtp.port}, security: none, "
        "from_addr: nw@localhost, to: [analyst@localhost]}",
        "  - {id: recurrence, detector: recurrence, channels: [mail]}",
    )
    outbox = Outbox(tmp_path / "o.sqlite", cfg.outbox)
    (alert,) = AlertEngine(cfg, outbox).process(events, NOW)
    assert Dispatcher(outbox, build_channels(cfg)).deliver_due(NOW)["sent"] == 1
    (msg,) = smtp.messages
    assert msg["X-Narrawatch-Idempotency-Key"] == f"{alert.id}.mail"
    assert "Recurring narrative" in msg["Subject"]
    html_part = next(p for p in msg.walk() if p.get_content_type() == "text/html").get_payload(decode=True).decode()
    assert "Nuclear threat" in html_part and "not a verdict" in html_part


def test_slack_and_telegram_via_loopback(
    tmp_path: Path, events: list[DetectorEvent], receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NW_TEST_SLACK", f"{receiver.url}/services/T/B/x")
    monkeypatch.setenv("NW_TEST_TG", "123:abc")
    cfg = write_config(
        tmp_path,
        "  - {id: sl, kind: slack, webhook_url_env: NW_TEST_SLACK}\n"
        f"  - {{id: tg, kind: telegram, bot_token_env: NW_TEST_TG, chat_id: '42', base_url: '{receiver.url}'}}\n"
        "  - {id: tg2, kind: telegram, bot_token_env: NW_TEST_UNSET_TOKEN, chat_id: '42'}",
        "  - {id: recurrence, detector: recurrence, channels: [sl, tg, tg2]}",
    )
    channels = build_channels(cfg)
    assert set(channels) == {"sl", "tg"}  # tg2 disabled: its variable is unset
    outbox = Outbox(tmp_path / "o.sqlite", cfg.outbox)
    AlertEngine(cfg, outbox).process(events, NOW)
    counts = Dispatcher(outbox, channels).deliver_due(NOW)
    assert counts["sent"] == 2 and counts["no_channel"] == 1
    paths = {r.path for r in receiver.accepted}
    assert paths == {"/services/T/B/x", "/bot123:abc/sendMessage"}
    tg = next(r.json() for r in receiver.accepted if r.path.startswith("/bot"))
    assert tg["parse_mode"] == "HTML" and tg["chat_id"] == "42" and len(tg["text"]) <= 4096


def test_kill_9_with_pending_rows_then_restart(tmp_path: Path, events: list[DetectorEvent]) -> None:
    """A dispatcher subprocess is killed mid-way; after restart all alerts arrive, none twice."""
    receiver = WebhookReceiver()
    receiver.start()
    try:
        cfg_dir = tmp_path / "cfg"
        cfg_dir.mkdir()
        cfg = write_config(cfg_dir, f"  - {{id: hook, kind: webhook, url: '{receiver.url}/in'}}", RULES)
        db = tmp_path / "outbox.sqlite"
        with Outbox(db, cfg.outbox) as outbox:
            alerts = AlertEngine(cfg, outbox).process(events, NOW)
        assert len(alerts) == 3
        script = (
            "import sys, time\n"
            "import alerts.channels.webhook as w\n"
            "from narrawatch.builtins import register_builtins\n"
            "register_builtins()\n"
            "from alerts.config import load_alerts_dir, build_channels\n"
            "from alerts.outbox import Outbox, Dispatcher\n"
            "from pathlib import Path\n"
            "orig = w.WebhookChannel.send\n"
            "def slow(self, alert, key):\n"
            "    orig(self, alert, key)\n"
            "    print('SENT', key, flush=True)\n"
            "    time.sleep(float(sys.argv[3]))\n"  # acknowledged but not yet marked sent
            "w.WebhookChannel.send = slow\n"
            "cfg = load_alerts_dir(Path(sys.argv[1]), [])\n"
            "ob = Outbox(sys.argv[2], cfg.outbox)\n"
            "from datetime import UTC, datetime, timedelta\n"
            "now = datetime.now(UTC) + timedelta(seconds=float(sys.argv[4]))\n"
            "print('COUNTS', Dispatcher(ob, build_channels(cfg)).deliver_due(now), flush=True)\n"
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(
            [sys.executable, "-c", script, str(cfg_dir), str(db), "30", "0"],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("SENT"), line
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert len(receiver.accepted) == 1
        with Outbox(db, cfg.outbox) as outbox:
            assert len(outbox.deliveries(status="pending")) == 3  # the first was acknowledged, never marked

        def run(advance: int) -> str:
            done = subprocess.run(
                [sys.executable, "-c", script, str(cfg_dir), str(db), "0", str(advance)],
                capture_output=True,
                text=True,
                env=env,
                cwd=ROOT,
                timeout=120,
            )
            return done.stdout + done.stderr

        # Restart at once: the two untouched rows go, and so does the killed process's row (its lease
        # belongs to a process that is gone), sent again with the same key:
        assert "COUNTS {'sent': 3," in run(0)
        assert len(receiver.accepted) == 4 and receiver.duplicates() == 1
        # ...so a receiver de-duplicating by Idempotency-Key holds each alert exactly once.
        assert sorted(receiver.unique_keys) == sorted(f"{a.id}.hook" for a in alerts)
        assert "COUNTS {'sent': 0," in run(800)
        assert len(receiver.accepted) == 4
        with Outbox(db, cfg.outbox) as outbox:
            assert outbox.counts() == {"sent": 3, "alerts": 3}
        assert json.loads(receiver.accepted[0].body)["alert"]["id"] in {a.id for a in alerts}
    finally:
        receiver.stop()
        time.sleep(0)
