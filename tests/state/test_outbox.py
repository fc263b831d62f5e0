"""Contract: the alert outbox with its re-alert, digest and dedup state, on SQLite and PostgreSQL.

Alerts are built from the real Russian-language Telegram posts of
``tests/data/alerts/telegram_timeline.jsonl`` (one "new outlet" alert per post). Two outboxes on
one target are two dispatchers of a deployment; a worker on another machine is played by giving
this process another lease-owner token (``alerts.outbox.lease_owner``).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import alerts.outbox as outbox_module
from alerts.config import AlertsConfig, OutboxSettings, RuleSettings
from alerts.dedup import DedupState
from alerts.outbox import Delivery, Dispatcher, Outbox, idempotency_key, lease_owner
from alerts.rules import AlertEngine, make_alert
from core.errors import AlertDeliveryError
from core.events import Alert, DetectorEvent
from core.matches import Match
from tests.state.conftest import Target
from tests.support.processes import collect
from tests.support.timeline import load_posts, posts_to_matches

TIMELINE = Path(__file__).resolve().parents[1] / "data" / "alerts" / "telegram_timeline.jsonl"
NOW = datetime(2024, 11, 21, 18, tzinfo=UTC)
NUCLEAR = "n-nuclear-threat"
CHANNELS = ("hook", "mail")
RULE = RuleSettings.model_validate({"id": "new-outlet", "detector": "new_outlet", "channels": list(CHANNELS)})
MINUTE = timedelta(minutes=1)


def _matches() -> list[Match]:
    return posts_to_matches(load_posts(TIMELINE))


def _new_outlet(m: Match) -> DetectorEvent:
    return DetectorEvent(
        detector="new_outlet",
        key=f"{m.narrative_id}|{m.outlet}",
        narrative_id=m.narrative_id,
        source_id=m.source_id,
        title=f"New outlet for {m.narrative_id}: {m.outlet}",
        summary=f"First match of this narrative in outlet {m.outlet}: {m.title}",
        window_start=m.published,
        window_end=m.published,
        counts={"prior_outlets": 1},
        outlets=(m.outlet,),
        languages=(m.language,),
        evidence=(m,),
        score=m.score,
        created=m.published + 5 * MINUTE,
    )


def _alerts() -> list[Alert]:
    """40 alerts, one per post, created five minutes after the post (so in timeline order)."""
    return [make_alert(RULE, [_new_outlet(m)], m.published + 5 * MINUTE) for m in _matches()]


def _recurrence(evidence: Sequence[Match]) -> DetectorEvent:
    return DetectorEvent(
        detector="recurrence",
        key=NUCLEAR,
        narrative_id=NUCLEAR,
        source_id=None,
        title=f"Recurring narrative: {NUCLEAR} (ядерная угроза)",
        summary=f"{len(evidence)} distinct items in the last 24h",
        window_start=min(m.published for m in evidence),
        window_end=max(m.published for m in evidence),
        counts={"matches": len(evidence)},
        outlets=tuple(sorted({m.outlet for m in evidence})),
        languages=("ru",),
        evidence=tuple(evidence),
        score=0.81,
        created=NOW,
    )


def _two(target: Callable[[str], Target], settings: OutboxSettings | None = None) -> tuple[Outbox, Outbox]:
    return Outbox(target("outbox.sqlite"), settings), Outbox(target("outbox.sqlite"), settings)


def _as_worker(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """``be(token)``: this process now claims as the worker ``token`` (lease-owner token)."""
    current = [lease_owner()]
    monkeypatch.setattr(outbox_module, "lease_owner", lambda: current[0])

    def be(token: str) -> None:
        current[0] = token

    return be


def _elsewhere(name: str) -> str:
    """A live worker on another machine: its liveness cannot be checked, its lease holds until it ends."""
    return f"{name}|{outbox_module._boot_id()}|pid:[4026531836]|4242|987654"


def _gone() -> str:
    """A worker on this machine that is gone: this pid, but a start time no running process has."""
    host = socket.gethostname().replace("|", "_")
    return f"{host}|{outbox_module._boot_id()}|{outbox_module._pid_namespace()}|{os.getpid()}|1"


class Recorder:
    """A channel that acknowledges every send and records the idempotency keys; ``fail`` sends fail first."""

    def __init__(self, channel_id: str, fail: int = 0) -> None:
        self.id = channel_id
        self.kind = "webhook"
        self.fail = fail
        self.keys: list[str] = []
        self.refused: list[str] = []

    def send(self, alert: Alert, key: str) -> None:
        if self.fail:
            self.fail -= 1
            self.refused.append(key)
            raise AlertDeliveryError(f"webhook {self.id}: HTTP 503 Service Unavailable")
        self.keys.append(key)


def test_enqueue_is_idempotent_for_the_same_alert_and_key(target: Callable[[str], Target]) -> None:
    alert = _alerts()[-1]  # Ньюсач: "Полная версия заявления Владимира Путина ..."
    a, b = _two(target)
    with a, b:
        assert a.enqueue(alert, ["hook", "mail", "hook"])
        assert not b.enqueue(alert, ["hook", "mail"])  # the other worker raised the same alert
        assert not b.enqueue(dataclasses.replace(alert, title="другой заголовок"), ["tg"])  # known id: nothing new
        rows = b.deliveries(alert.id)
        assert [(d.channel_id, d.idempotency_key, d.status, d.attempts) for d in rows] == [
            ("hook", f"{alert.id}.hook", "pending", 0),
            ("mail", f"{alert.id}.mail", "pending", 0),
        ]
        assert idempotency_key(alert.id, "hook") == f"{alert.id}.hook"
        created = datetime(2024, 11, 21, 17, 37, 1, tzinfo=UTC)
        assert all(d.created == d.next_attempt_at == created and d.lease_owner is None for d in rows)
        stored = a.alert(alert.id)
        assert stored is not None and stored.title == alert.title and stored.title.startswith("New outlet")
        assert stored.events[0].evidence[0].passage_text.startswith("❗️Полная версия заявления Владимира Путина")
        assert stored.events[0].identity == alert.events[0].identity and stored.created == created
        assert b.counts() == {"pending": 2, "alerts": 1}
        row = a.alert_row(alert.id)
        assert row is not None and row.deliveries == {"hook": "pending", "mail": "pending"}
        assert a.alert("0" * 24) is None and a.alert_row("0" * 24) is None


def test_a_delivery_is_claimed_by_one_worker_at_a_time(
    target: Callable[[str], Target], monkeypatch: pytest.MonkeyPatch
) -> None:
    alerts = _alerts()[:3]
    be = _as_worker(monkeypatch)
    a, b = _two(target)
    with a, b:
        for alert in alerts:
            a.enqueue(alert, CHANNELS)
        order = [(x.id, ch) for x in alerts for ch in CHANNELS]  # oldest first, then channel
        be(_elsewhere("box-a"))
        got_a = a.claim_due(NOW, timedelta(minutes=5), limit=4)
        assert [(d.alert_id, d.channel_id) for d in got_a] == order[:4]
        assert all(d.lease_owner == _elsewhere("box-a") and d.lease_until is not None for d in got_a)
        be(_elsewhere("box-b"))
        got_b = b.claim_due(NOW, timedelta(minutes=5), limit=10)
        assert [(d.alert_id, d.channel_id) for d in got_b] == order[4:]
        assert b.claim_due(NOW, timedelta(minutes=5)) == [] and b.due(NOW) == []
        be(_elsewhere("box-a"))
        assert a.claim_due(NOW + timedelta(hours=1), timedelta(minutes=5)) == []  # the leases run on the wall clock
        owners = {(d.alert_id, d.channel_id): d.lease_owner for d in b.deliveries()}
        assert owners == {k: _elsewhere("box-a" if i < 4 else "box-b") for i, k in enumerate(order)}
        # Not due yet: a row whose next attempt lies ahead is not claimed by anyone.
        late = _alerts()[3]
        a.enqueue(late, ["hook"])
        assert a.claim_due(late.created - timedelta(microseconds=1), timedelta(minutes=5)) == []
        assert [d.alert_id for d in a.claim_due(late.created, timedelta(minutes=5))] == [late.id]


def test_a_dead_workers_claim_expires_and_another_takes_it(
    target: Callable[[str], Target], monkeypatch: pytest.MonkeyPatch
) -> None:
    alert = _alerts()[10]
    be = _as_worker(monkeypatch)
    a, b = _two(target)
    with a, b:
        a.enqueue(alert, CHANNELS)
        # A worker on another machine claims with a short lease and vanishes: trusted until it ends.
        be(_elsewhere("box-a"))
        held = a.claim_due(NOW, timedelta(seconds=1))
        assert len(held) == 2 and held[0].lease_until is not None
        be(_elsewhere("box-b"))
        assert b.claim_due(NOW, timedelta(minutes=5)) == []
        time.sleep(max(0.0, (held[0].lease_until - datetime.now(UTC)).total_seconds()) + 0.05)
        taken = b.claim_due(NOW, timedelta(minutes=5))
        assert [(d.channel_id, d.lease_owner) for d in taken] == [
            ("hook", _elsewhere("box-b")),
            ("mail", _elsewhere("box-b")),
        ]
        # The vanished worker's stale view no longer claims anything (compare-and-set on the lease).
        be(_elsewhere("box-a"))
        stale = Delivery(**{**dataclasses.asdict(taken[0]), "lease_owner": _elsewhere("box-a")})
        assert not a.claim(stale, NOW, timedelta(minutes=5))
        # A worker of this machine that is gone (its pid now names another process) frees its rows at once.
        be(_gone())
        b.release_claim(taken[0])  # not its lease: nothing happens
        be(_elsewhere("box-b"))
        b.release_claim(taken[0])  # box-b gives the hook row up without an attempt
        hook = b.deliveries(alert.id)[0]
        assert (hook.lease_owner, hook.lease_until) == (None, None)
        be(_gone())
        assert [d.channel_id for d in a.claim_due(NOW, timedelta(minutes=5))] == ["hook"]
        be(_elsewhere("box-c"))
        found = b.due(NOW)
        assert [(d.channel_id, d.lease_owner) for d in found] == [("hook", _gone())]  # its owner is dead
        # Two dispatchers that both found the dead owner's row: exactly one takes it.
        be(_elsewhere("box-c"))
        first = a.claim(found[0], NOW, timedelta(minutes=5))
        be(_elsewhere("box-d"))
        second = b.claim(found[0], NOW, timedelta(minutes=5))
        assert (first, second) == (True, False)
        assert b.deliveries(alert.id)[0].lease_owner == _elsewhere("box-c")


def test_live_leases_elsewhere_do_not_use_up_the_claim_limit(
    target: Callable[[str], Target], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows another machine's live worker holds are skipped in the query, not after the limit: a
    dispatcher asking for one row gets the oldest free one even when older rows are held."""
    alerts = _alerts()[:3]
    be = _as_worker(monkeypatch)
    a, b = _two(target)
    with a, b:
        for alert in alerts:
            a.enqueue(alert, ["hook"])
        be(_elsewhere("box-a"))
        held = a.claim_due(NOW, timedelta(minutes=5), limit=2)
        assert [d.alert_id for d in held] == [alerts[0].id, alerts[1].id]
        be(_elsewhere("box-b"))
        got = b.claim_due(NOW, timedelta(minutes=5), limit=1)
        assert [(d.alert_id, d.lease_owner) for d in got] == [(alerts[2].id, _elsewhere("box-b"))]
        assert b.claim_due(NOW, timedelta(minutes=5), limit=1) == []


def test_success_marks_delivered_exactly_once(target: Callable[[str], Target]) -> None:
    alerts = _alerts()[:5]
    a, b = _two(target)
    with a, b:
        for alert in alerts:
            a.enqueue(alert, CHANNELS)
        hook, mail = Recorder("hook"), Recorder("mail")
        d1, d2 = Dispatcher(a, {"hook": hook, "mail": mail}), Dispatcher(b, {"hook": hook, "mail": mail})
        assert d1.deliver_due(NOW) == {"sent": 10, "retry": 0, "failed": 0, "deferred": 0, "no_channel": 0}
        assert d2.deliver_due(NOW + timedelta(days=1))["sent"] == 0
        assert d1.deliver_due(NOW + timedelta(days=2))["sent"] == 0
        assert hook.keys == [f"{x.id}.hook" for x in alerts] and mail.keys == [f"{x.id}.mail" for x in alerts]
        assert b.counts() == {"sent": 10, "alerts": 5}
        sent = b.deliveries(status="sent")
        assert all(d.sent_at == NOW and d.attempts == 1 and d.lease_owner is None for d in sent)
        # A late acknowledgement of the same row (a second dispatcher's stale view) changes nothing.
        b.mark_sent(sent[0], NOW + timedelta(hours=3))
        b.mark_failed(sent[0], NOW + timedelta(hours=3), "timeout")
        again = a.deliveries(sent[0].alert_id)[0]
        assert (again.status, again.sent_at, again.attempts, again.last_error) == ("sent", NOW, 1, "")
        assert a.due(NOW + timedelta(days=3)) == [] and a.next_attempt_of("hook") is None


def test_failures_back_off_then_dead_letter(target: Callable[[str], Target]) -> None:
    settings = OutboxSettings(backoff_base=timedelta(seconds=30), backoff_max=timedelta(minutes=2), max_attempts=4)
    alert = _alerts()[20]
    a, b = _two(target, settings)
    with a, b:
        a.enqueue(alert, CHANNELS)
        t = NOW
        hook, mail = a.claim_due(t, timedelta(minutes=5))
        a.release_claim(mail)  # its channel is not configured on this worker
        delays = []
        for attempt in range(1, 5):
            status, next_at = (a if attempt % 2 else b).mark_failed(hook, t, "HTTP 503 " + "ошибка " * 200)
            row = b.deliveries(alert.id)[0]
            assert (row.attempts, row.next_attempt_at, row.lease_owner) == (attempt, next_at, None)
            assert len(row.last_error) == 500 and row.last_error.startswith("HTTP 503 ошибка")
            delays.append((status, next_at - t))
            if status == "pending":
                assert [d.channel_id for d in b.due(next_at - timedelta(microseconds=1))] == ["mail"]
                assert b.next_attempt_of("hook") == next_at
                t = next_at
                assert {d.channel_id for d in b.due(t)} == {"hook", "mail"}
                hook = b.deliveries(alert.id)[0]
                assert b.claim(hook, t, timedelta(minutes=5))
        assert delays == [
            ("pending", timedelta(seconds=30)),
            ("pending", timedelta(seconds=60)),
            ("pending", timedelta(minutes=2)),
            ("failed", timedelta(minutes=2)),
        ]
        # Dead-lettered: never due again, listed as failed with its last error.
        assert [d.channel_id for d in a.due(t + timedelta(days=30))] == ["mail"]
        assert [d.channel_id for d in a.deliveries(status="failed")] == ["hook"]
        assert a.next_attempt_of("hook") is None
        row = a.alert_row(alert.id)
        assert row is not None and row.deliveries == {"hook": "failed", "mail": "pending"}


def test_dispatcher_retries_a_flaky_channel_and_defers_the_rest(target: Callable[[str], Target]) -> None:
    settings = OutboxSettings(backoff_base=timedelta(seconds=30), backoff_max=timedelta(hours=1), max_attempts=5)
    alerts = _alerts()[:3]
    a, b = _two(target, settings)
    with a, b:
        for alert in alerts:
            a.enqueue(alert, ["hook"])
        hook = Recorder("hook", fail=2)
        first, second = Dispatcher(a, {"hook": hook}), Dispatcher(b, {"hook": hook})
        assert first.deliver_due(NOW) == {"sent": 0, "retry": 1, "failed": 0, "deferred": 2, "no_channel": 0}
        assert b.next_attempt_of("hook") == NOW + timedelta(seconds=30)  # the deferred rows wait with it
        assert second.deliver_due(NOW + timedelta(seconds=29))["retry"] == 0
        assert second.deliver_due(NOW + timedelta(seconds=30))["retry"] == 1
        t = NOW + timedelta(seconds=90)  # the second failure backs off 60 s
        assert first.deliver_due(t - timedelta(seconds=1)) == {
            "sent": 0,
            "retry": 0,
            "failed": 0,
            "deferred": 0,
            "no_channel": 0,
        }
        assert first.deliver_due(t)["sent"] == 3
        assert hook.refused == [f"{alerts[0].id}.hook"] * 2
        assert hook.keys == [f"{x.id}.hook" for x in alerts]  # each exactly once
        attempts = {d.alert_id: d.attempts for d in b.deliveries(status="sent")}
        assert attempts == {alerts[0].id: 3, alerts[1].id: 1, alerts[2].id: 1}
        # Postponing never moves a due time earlier.
        late = _alerts()[30]
        a.enqueue(late, ["hook"])
        (row,) = a.due(NOW)
        a.postpone(row, NOW + timedelta(hours=2))
        a.postpone(row, NOW + timedelta(hours=1))
        assert b.next_attempt_of("hook") == NOW + timedelta(hours=2)
        assert first.deliver_due(NOW + timedelta(hours=2), limit=10)["sent"] == 1


def test_acknowledgement_and_listing(target: Callable[[str], Target]) -> None:
    alerts = _alerts()
    a, b = _two(target)
    with a, b:
        for alert in alerts:
            a.enqueue(alert, ["hook"])
        newest = b.list_alerts(limit=3)
        assert [r.id for r in newest] == [x.id for x in reversed(alerts[-3:])]
        assert [r.id for r in b.list_alerts(limit=2, offset=1)] == [alerts[-2].id, alerts[-3].id]
        nov = datetime(2024, 11, 11, tzinfo=UTC)
        window = b.list_alerts(since=nov, until=nov + timedelta(days=1), limit=100)
        assert [r.title.split(": ", 1)[1] for r in window] == ["Москва - новостная", "Москва с огоньком Live", "Топор+"]
        assert len(b.list_alerts(rule="new-outlet", severity="warning", limit=100)) == 40
        assert b.list_alerts(severity="critical") == []
        assert a.ack(alerts[-1].id, NOW, by="alice", note="видели, BBC уже разобрал")
        assert not b.ack(alerts[-1].id, NOW + timedelta(hours=1), by="bob")  # the first acknowledgement stands
        assert not b.ack("0" * 24, NOW, by="bob")
        row = b.alert_row(alerts[-1].id)
        assert row is not None and (row.acked_at, row.acked_by, row.ack_note) == (
            NOW,
            "alice",
            "видели, BBC уже разобрал",
        )
        unacked = a.list_alerts(unacked=True, limit=100)
        assert len(unacked) == 39 and alerts[-1].id not in {r.id for r in unacked}


def test_realert_and_seen_evidence_persist_across_reopening(target: Callable[[str], Target]) -> None:
    ms = [m for m in _matches() if m.narrative_id == NUCLEAR]
    rule = RuleSettings.model_validate({"id": "rec", "detector": "recurrence", "realert": "6h", "channels": ["hook"]})
    cfg = AlertsConfig(rules=(rule,))
    first, grown = _recurrence(ms[-13:-1]), _recurrence(ms[-13:])
    with Outbox(target("outbox.sqlite")) as o:
        (alert,) = AlertEngine(cfg, o).process([first], NOW)
        assert alert.rule == "rec" and alert.dedup_key == f"rec|{NUCLEAR}"
    with Outbox(target("outbox.sqlite")) as o:  # a restarted worker (or another one)
        engine = AlertEngine(cfg, o)
        assert engine.process([first], NOW + timedelta(days=2)) == []  # the same evidence never again
        assert engine.process([grown], NOW + timedelta(hours=1)) == []  # new evidence, same subject: suppressed
        dedup = DedupState(o)
        with o.transaction():
            assert dedup.seen("rec", first) and not dedup.seen("rec", grown) and not dedup.seen("other", first)
            assert dedup.suppressed("rec", NUCLEAR, NOW + timedelta(hours=6) - timedelta(microseconds=1), rule.realert)
            assert not dedup.suppressed("rec", NUCLEAR, NOW + timedelta(hours=6), rule.realert)
            assert not dedup.suppressed("rec", f"{NUCLEAR}|SHOT", NOW, rule.realert)
    with Outbox(target("outbox.sqlite")) as o:
        (again,) = AlertEngine(cfg, o).process([grown], NOW + timedelta(hours=7))
        assert again.id != alert.id and len(again.events[0].evidence) == 13
        assert o.counts() == {"pending": 2, "alerts": 2}
        with o.transaction():
            assert DedupState(o).suppressed("rec", NUCLEAR, NOW + timedelta(hours=12), rule.realert)


def test_digest_buckets_persist_across_reopening(target: Callable[[str], Target]) -> None:
    rule = RuleSettings.model_validate(
        {"id": "hourly", "detector": "new_outlet", "digest": {"every": "1h"}, "channels": ["mail"]}
    )
    cfg = AlertsConfig(rules=(rule,))
    ms = [m for m in _matches() if m.narrative_id == NUCLEAR]
    events = [dataclasses.replace(_new_outlet(m), created=NOW) for m in ms[-4:]]
    with Outbox(target("outbox.sqlite")) as o:
        assert AlertEngine(cfg, o).process(events[:3], NOW) == []  # buffered
    with Outbox(target("outbox.sqlite")) as o:
        engine = AlertEngine(cfg, o)
        assert engine.process(events, NOW + timedelta(minutes=30)) == []  # one more joins the bucket
        (digest,) = engine.process([], NOW + timedelta(hours=1))
        assert digest.digest and digest.title == "Digest: 4 event(s) for rule hourly"
        # Oldest first (ties by identity): the three of the first pass, then the late one.
        identities = [e.identity for e in digest.events]
        assert sorted(identities[:3]) == identities[:3] == sorted(e.identity for e in events[:3])
        assert identities[3] == events[3].identity
        assert digest.events[3].evidence[0].outlet == "Ньюсач/Двач"
    with Outbox(target("outbox.sqlite")) as o:
        dedup = DedupState(o)
        with o.transaction():
            assert dedup.digest_due("hourly", NOW + timedelta(hours=5), timedelta(hours=1)) == []  # empty bucket
            late = dataclasses.replace(_new_outlet(ms[0]), created=NOW)
            dedup.add_to_digest("hourly", late, NOW + timedelta(hours=1, minutes=10))
            dedup.add_to_digest("hourly", late, NOW + timedelta(hours=1, minutes=20))  # once per identity
        with o.transaction():
            # The period runs from the last digest (NOW + 1h), not from the first buffered event.
            assert dedup.digest_due("hourly", NOW + timedelta(hours=2) - MINUTE, timedelta(hours=1)) == []
        with o.transaction():
            due = dedup.digest_due("hourly", NOW + timedelta(hours=2), timedelta(hours=1))
            assert [e.identity for e in due] == [late.identity] and due[0].evidence[0].outlet == "Хабр"
        assert o.counts() == {"pending": 1, "alerts": 1}
        assert [d.channel_id for d in o.deliveries(digest.id)] == ["mail"]


# -- two OS processes against one target ------------------------------------------------------

PROC_ALERTS = 24


def _open(where: str, schema: str) -> Outbox:
    if schema:
        from core.pgsql import PgDatabase

        box = Outbox(PgDatabase(where, schema=schema, pool_size=1))
        box._owns_db = True
        return box
    return Outbox(Path(where))


def _dispatcher(where: str, schema: str, worker: int, start: Any, out: Any) -> None:
    box = _open(where, schema)
    try:
        alerts = _alerts()[:PROC_ALERTS]
        start.wait()
        stored = sum(box.enqueue(x, CHANNELS) for x in (alerts if worker == 0 else reversed(alerts)))
        claimed: list[tuple[str, str]] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            batch = box.claim_due(NOW, timedelta(minutes=5), limit=3)
            if not batch:
                if not box.deliveries(status="pending"):
                    break
                time.sleep(0.01)  # the other worker holds what is left
                continue
            for d in batch:
                claimed.append((d.alert_id, d.channel_id))
                box.mark_sent(d, NOW)
        out.put((worker, stored, claimed, lease_owner()))
    finally:
        box.close()


def _claim_and_die(where: str, schema: str, out: Any) -> None:
    box = _open(where, schema)
    got = box.claim_due(NOW, timedelta(minutes=30))
    out.put([(d.alert_id, d.channel_id) for d in got])
    time.sleep(120)  # "sending" until killed


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_two_processes_enqueue_and_claim_disjoint(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if engine == "sqlite":
        where, schema = str(tmp_path / "outbox.sqlite"), ""
    else:
        where, schema = str(request.getfixturevalue("pg_url")), f"t_{uuid.uuid4().hex[:12]}"
    _open(where, schema).close()
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_dispatcher, args=(where, schema, w, start, out)) for w in (0, 1)]
    for p in procs:
        p.start()
    start.set()
    results = {r[0]: r[1:] for r in collect(out, procs, 2)}
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    alerts = _alerts()[:PROC_ALERTS]
    assert results[0][0] + results[1][0] == PROC_ALERTS  # each alert stored once, by one of them
    a, b = results[0][1], results[1][1]
    assert len(a) == len(set(a)) and len(b) == len(set(b))
    assert not set(a) & set(b), sorted(set(a) & set(b))  # no delivery claimed by both
    assert set(a) | set(b) == {(x.id, ch) for x in alerts for ch in CHANNELS}
    assert results[0][2] != results[1][2]  # two owners: two processes
    with _open(where, schema) as box:
        assert box.counts() == {"sent": 2 * PROC_ALERTS, "alerts": PROC_ALERTS}
        assert {(d.attempts, d.sent_at, d.lease_owner) for d in box.deliveries()} == {(1, NOW, None)}

        # A dispatcher killed (SIGKILL) mid-send: its rows are taken over at once, not after 30 min.
        extra = _alerts()[PROC_ALERTS : PROC_ALERTS + 2]
        for x in extra:
            box.enqueue(x, CHANNELS)
        victim = ctx.Process(target=_claim_and_die, args=(where, schema, out))
        victim.start()
        (held,) = collect(out, [victim], 1)
        assert sorted(held) == sorted((x.id, ch) for x in extra for ch in CHANNELS)
        assert box.claim_due(NOW, timedelta(minutes=5)) == []  # its owner is alive: the lease holds
        assert victim.pid is not None
        os.kill(victim.pid, signal.SIGKILL)
        victim.join(timeout=30)
        leased = box.deliveries(status="pending")
        assert {d.lease_owner.split("|")[3] for d in leased if d.lease_owner} == {str(victim.pid)}
        assert all(d.lease_until is not None and d.lease_until > datetime.now(UTC) for d in leased)
        taken = box.claim_due(NOW, timedelta(minutes=5))
        assert sorted((d.alert_id, d.channel_id) for d in taken) == sorted(held)
        assert all(d.lease_owner == lease_owner() for d in taken)
