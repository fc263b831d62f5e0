"""``deleted_after_spread``: a matched item that is then deleted raises exactly one alert.

Real stores (match store, evidence store, outbox) and real matches built from the real posts of
tests/data/alerts/telegram_timeline.jsonl; the rule runs through :func:`alerts.rules.run_rules`
and :class:`alerts.rules.AlertEngine` as the monitoring pass runs it, on several passes.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from alerts.config import load_alerts_dir
from alerts.outbox import Outbox
from alerts.rules import AlertEngine, run_rules
from core.errors import ConfigIssue
from crawlers.evidence_store import EvidenceStore
from monitors.deletions import StoreWithDeletions
from monitors.store import MatchStore
from tests.support.timeline import load_posts, posts_to_matches

TIMELINE = Path(__file__).resolve().parents[1] / "data" / "alerts" / "telegram_timeline.jsonl"


def test_matched_then_deleted_item_alerts_exactly_once(tmp_path: Path) -> None:
    matches = posts_to_matches(load_posts(TIMELINE))
    store = MatchStore(tmp_path / "matches.sqlite")
    store.add(matches)
    evidence = EvidenceStore(tmp_path / "evidence.sqlite")
    (tmp_path / "alerts").mkdir()
    (tmp_path / "alerts" / "r.yaml").write_text(
        "rules:\n  - {id: deleted, detector: deleted_after_spread, realert: 1h}\n", encoding="utf-8"
    )
    issues: list[ConfigIssue] = []
    cfg = load_alerts_dir(tmp_path, issues)
    assert issues == []
    engine = AlertEngine(cfg, Outbox(tmp_path / "outbox.sqlite"))
    wrapped = StoreWithDeletions(store, evidence)

    first = max(matches, key=lambda m: m.published)
    t0 = first.published + timedelta(days=1)
    assert run_rules(cfg, wrapped, [], t0, {}) == []  # nothing deleted yet
    assert evidence.mark_deleted(first.document_id, t0, "missing", last_seen=first.published) is not None
    assert evidence.mark_deleted(first.document_id, t0 + timedelta(hours=1), "missing") is None  # kept once

    alerts = []
    for hours in (0, 1, 2, 30, 24 * 6):  # every pass that still sees the deletion in its lookback
        now = t0 + timedelta(hours=hours, minutes=1)
        events = run_rules(cfg, wrapped, [], now, {})
        assert [e.key for e in events] == [first.document_id]
        alerts += engine.process(events, now)
    assert len(alerts) == 1
    (alert,) = alerts
    assert alert.rule == "deleted" and {m.document_id for m in alert.events[0].evidence} == {first.document_id}
    (event,) = alert.events
    assert event.window_start == first.published and event.window_end == t0
    assert "missing from its channel page" in event.summary and first.url in event.summary

    # Past the lookback (7 days) the detector is quiet again.
    assert run_rules(cfg, wrapped, [], t0 + timedelta(days=8), {}) == []
    # A second matched item deleted: one more alert; an item that never matched: none.
    second = sorted(matches, key=lambda m: m.published)[-2]
    assert second.document_id != first.document_id
    t1 = t0 + timedelta(days=2)
    evidence.mark_deleted(second.document_id, t1, "gone", last_seen=second.published)
    evidence.mark_deleted("u:never-matched", t1, "gone", last_seen=t0)
    events = run_rules(cfg, wrapped, [], t1 + timedelta(minutes=1), {})
    assert sorted(e.key for e in events) == sorted([first.document_id, second.document_id])
    more = engine.process(events, t1 + timedelta(minutes=1))
    assert [a.events[0].key for a in more] == [second.document_id]
    # A bare match store (no deletions) gives the detector nothing to read.
    assert run_rules(cfg, store, [], t1 + timedelta(minutes=1), {}) == []
    store.close()
    evidence.close()
