"""The alert inbox (issue 10, item 18): ``until`` and paging in SQL, acknowledgements with a note
shown by ``alerts list|show``, the API and the web UI.

Alerts are built from detector events over real posts (tests/data/alerts/telegram_timeline.jsonl).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from alerts.config import RuleSettings
from alerts.outbox import Outbox
from alerts.rules import make_alert
from core.events import Alert, DetectorEvent
from core.settings import load_config
from narrawatch.app import open_app
from narrawatch.cli import main
from tests.alerts.conftest import NOW

SEVERITIES = ("info", "warning", "critical")


def _alerts(events: list[DetectorEvent], n: int) -> list[Alert]:
    """``n`` alerts, one every 10 minutes back from NOW (newest first), cycling the real events."""
    out = []
    for i in range(n):
        e = events[i % len(events)]
        rule = RuleSettings.model_validate({"id": f"r-{e.detector}", "detector": e.detector})
        a = make_alert(rule, [e], NOW - timedelta(minutes=10 * i))
        out.append(dataclasses.replace(a, id=f"{i:04d}{a.id[:12]}", severity=SEVERITIES[i % 3]))
    return out


def _fill(outbox: Outbox, alerts: list[Alert]) -> None:
    for a in alerts:
        assert outbox.enqueue(a, ["hook", "mail"])


def test_until_limit_and_offset_are_applied_in_sql(tmp_path: Path, events: list[DetectorEvent]) -> None:
    alerts = _alerts(events, 120)  # 20 hours of alerts
    with Outbox(tmp_path / "o.sqlite") as outbox:
        _fill(outbox, alerts)
        until = NOW - timedelta(hours=15)  # only the 30 oldest are older
        page = outbox.list_alerts(until=until, limit=10)
        # Before: the 10 newest overall were fetched, then filtered by `until`: nothing came back.
        assert [r.id for r in page] == [a.id for a in alerts if a.created < until][:10]
        assert all(r.created < until for r in page) and len(page) == 10
        since = NOW - timedelta(hours=16)
        window = outbox.list_alerts(since=since, until=until, limit=100)
        assert [r.id for r in window] == [a.id for a in alerts if since <= a.created < until]
        # Pages of 25 cover every alert once, newest first.
        pages = [outbox.list_alerts(limit=25, offset=o) for o in range(0, 150, 25)]
        assert [r.id for p in pages for r in p] == [a.id for a in alerts]
        assert pages[-1] == [] and len(pages[-2]) == 20
        crit = outbox.list_alerts(severity="critical", until=until, limit=5)
        assert [r.id for r in crit] == [a.id for a in alerts if a.created < until and a.severity == "critical"][:5]
        assert all(r.deliveries == {"hook": "pending", "mail": "pending"} for r in crit)

        # Only the page's delivery rows are read (not the whole table on every call).
        statements: list[str] = []
        outbox.conn.set_trace_callback(statements.append)
        outbox.list_alerts(limit=3)
        outbox.alert_row(alerts[7].id)
        outbox.conn.set_trace_callback(None)
        reads = [s for s in statements if "FROM deliveries" in s]
        assert reads and all("WHERE alert_id IN" in s for s in reads), reads


def test_ack_note_is_stored_and_the_first_ack_stands(tmp_path: Path, events: list[DetectorEvent]) -> None:
    (a,) = _alerts(events, 1)
    with Outbox(tmp_path / "o.sqlite") as outbox:
        _fill(outbox, [a])
        assert outbox.ack(a.id, NOW, "ana", "duplicate of yesterday's, checked with the desk")
        assert not outbox.ack(a.id, NOW + timedelta(hours=1), "bob", "later")
        row = outbox.alert_row(a.id)
        assert row is not None and (row.acked_at, row.acked_by) == (NOW, "ana")
        assert row.ack_note == "duplicate of yesterday's, checked with the desk"
        (listed,) = outbox.list_alerts()
        assert listed.ack_note == row.ack_note


@pytest.fixture()
def config_dir(tmp_path: Path, events: list[DetectorEvent]) -> Iterator[tuple[Path, list[Alert]]]:
    cfg = tmp_path / "config"
    (cfg / "alerts").mkdir(parents=True)
    (cfg / "sources.yaml").write_text(
        "sources:\n  - {id: chan, kind: telegram, channel: chan_demo}\n", encoding="utf-8"
    )
    (cfg / "service.yaml").write_text("data_dir: ../data\nembedding: {model: hashing}\n", encoding="utf-8")
    (cfg / "alerts" / "a.yaml").write_text(
        "channels:\n  - {id: hook, kind: webhook, url: 'http://127.0.0.1:9/in'}\n"
        "rules:\n  - {id: recurrence, detector: recurrence, channels: [hook]}\n",
        encoding="utf-8",
    )
    alerts = _alerts(events, 12)
    with open_app(load_config(cfg)) as app:  # the configured outbox
        _fill(app.outbox, alerts)
    yield cfg, alerts


@pytest.fixture()
def keep_logging() -> Iterator[None]:
    """``main()`` sets up logging on the (captured) stderr: put the root logger back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _run(capsys: pytest.CaptureFixture[str], cfg: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--config", str(cfg), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_list_until_offset_and_ack_with_note(
    config_dir: tuple[Path, list[Alert]], capsys: pytest.CaptureFixture[str], keep_logging: None
) -> None:
    cfg, alerts = config_dir
    target = alerts[1]
    code, out, err = _run(capsys, cfg, "alerts", "ack", target.id, "--by", "ana", "--note", "seen; desk informed")
    assert code == 0 and "acknowledged" in out, err

    code, out, _ = _run(capsys, cfg, "alerts", "list")
    lines = {line.split()[0]: line for line in out.splitlines() if line and not line.startswith(" ")}
    assert " acked " in lines[target.id]  # it printed NEW for every alert before
    assert " NEW " in lines[alerts[0].id]
    assert "by ana: seen; desk informed" in out

    code, out, _ = _run(capsys, cfg, "alerts", "show", target.id)
    assert code == 0 and "acknowledged" in out and "by ana" in out and "seen; desk informed" in out
    code, out, _ = _run(capsys, cfg, "alerts", "show", alerts[0].id)
    assert "acknowledgement: not acknowledged" in out

    until = (alerts[5].created + timedelta(seconds=1)).isoformat()
    code, out, _ = _run(capsys, cfg, "alerts", "list", "--until", until, "--limit", "3", "--json")
    assert code == 0 and [r["id"] for r in json.loads(out)] == [a.id for a in alerts[5:8]]
    code, out, err = _run(capsys, cfg, "alerts", "list", "--limit", "5", "--offset", "10", "--json")
    assert [r["id"] for r in json.loads(out)] == [a.id for a in alerts[10:]]
    shown = json.loads(_run(capsys, cfg, "alerts", "show", target.id, "--json")[1])
    assert (shown["acked_by"], shown["ack_note"]) == ("ana", "seen; desk informed")

    with pytest.raises(SystemExit) as bad:
        main(["--config", str(cfg), "alerts", "list", "--limit", "0"])
    assert bad.value.code == 2
    capsys.readouterr()
    code, _, err = _run(capsys, cfg, "alerts", "list", "--since", "2024-11-21T10:00", "--until", "2024-11-21T09:00")
    assert code == 2 and "not before" in err


def test_api_and_web_show_the_ack_note(tmp_path: Path) -> None:
    from narrawatch.server import create_app
    from tests.api.conftest import bearer
    from tests.api.world import build_world

    with build_world(tmp_path) as world:
        client = TestClient(create_app(world.config, app=world.app), base_url="http://127.0.0.1")
        with client:
            a = bearer(world.tokens["analyst"])
            h = bearer(world.tokens["read"])
            target = world.alert_ids[0]
            r = client.post(f"/api/v1/alerts/{target}/ack", headers=a, json={"note": "checked <b>twice</b>"})
            assert r.status_code == 200 and r.json()["ack_note"] == "checked <b>twice</b>"
            assert client.get(f"/api/v1/alerts/{target}", headers=h).json()["ack_note"] == "checked <b>twice</b>"
            listed = {x["id"]: x for x in client.get("/api/v1/alerts", headers=h).json()}
            assert listed[target]["ack_note"] == "checked <b>twice</b>"
            everything = client.get("/api/v1/alerts", headers=h).json()
            paged = [
                x["id"]
                for o in range(len(everything))
                for x in client.get("/api/v1/alerts", params={"limit": 1, "offset": o}, headers=h).json()
            ]
            assert paged == [x["id"] for x in everything]
            oldest = everything[-1]
            older = client.get("/api/v1/alerts", params={"until": oldest["created"], "limit": 1}, headers=h).json()
            assert older == []
            newest_before = client.get(
                "/api/v1/alerts", params={"until": everything[0]["created"], "limit": 1}, headers=h
            ).json()
            assert [x["id"] for x in newest_before] == [
                x["id"] for x in everything if x["created"] < everything[0]["created"]
            ][:1]
            # Web: the note is shown (escaped) on the alert page and in the inbox.
            nonce = re.search(r'name="nonce" value="([^"]+)"', client.get("/login").text)
            assert nonce is not None
            login = client.post(
                "/login",
                data={"token": world.tokens["read"], "nonce": nonce.group(1), "next": "/alerts"},
                follow_redirects=False,
            )
            assert login.status_code == 303, login.text
            page = client.get(f"/alerts/{target}")
            assert page.status_code == 200 and "checked &lt;b&gt;twice&lt;/b&gt;" in page.text
            inbox = client.get("/alerts")
            assert "checked &lt;b&gt;twice&lt;/b&gt;" in inbox.text
