"""Analysts' verdicts on real Telegram matches: record/replace/list, and rejected matches never count again."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.errors import NarrawatchError, UnknownNameError
from monitors.detectors import build_detector
from monitors.store import MatchStore
from monitors.verdicts import (
    UnknownMatchError,
    get_match,
    get_verdict,
    gold_line,
    list_matches,
    list_verdicts,
    record_verdict,
    verdict_history,
    verdicts_for,
)
from tests.monitors.test_detectors import TIMELINE
from tests.support.timeline import load_posts, posts_to_matches

OREST = datetime(2024, 11, 21, 18, tzinfo=UTC)
"""The 'Oreshnik' hour of the replayed timeline (see test_detectors)."""
MOSKVACH = "Москвач • Новости Москвы"


@pytest.fixture()
def store(tmp_path: Path) -> MatchStore:
    s = MatchStore(tmp_path / "matches.sqlite")
    s.add(posts_to_matches(load_posts(TIMELINE)))
    return s


def _keys(store: MatchStore, detector: str, now: datetime, **options: object) -> set[str]:
    return {e.key for e in build_detector(detector, dict(options)).detect(store, [], now, {})}


def test_record_replace_list_and_history(store: MatchStore) -> None:
    nuclear = store.matches("n-nuclear-threat")
    a, b = nuclear[0], nuclear[1]
    t0 = datetime(2024, 12, 1, 9, tzinfo=UTC)
    first = record_verdict(store, a.id, "confirmed", analyst="alice", note="asserts it", now=t0)
    assert (first.verdict, first.analyst, first.note, first.at) == ("confirmed", "alice", "asserts it", t0)
    assert (first.title, first.language, first.passage_text) == (a.title, a.language, a.passage_text)
    assert get_verdict(store, a.id) == first
    # A later verdict on the same match replaces it; the history keeps both, in order.
    second = record_verdict(store, a.id, "rejected", analyst="bob", note="only reports on it", now=t0 + _H)
    assert get_verdict(store, a.id) == second
    assert [v.verdict for v in verdict_history(store, a.id)] == ["confirmed", "rejected"]
    record_verdict(store, b.id, "confirmed", analyst="alice", now=t0 + 2 * _H)
    assert [v.match_id for v in list_verdicts(store)] == [b.id, a.id]  # newest first
    assert [v.match_id for v in list_verdicts(store, verdict="rejected")] == [a.id]
    assert list_verdicts(store, narrative_id="n-dev-courses") == []
    assert set(verdicts_for(store, [a.id, b.id, "0" * 16])) == {a.id, b.id}
    # The review listing shows every match (rejected ones too) with its verdict.
    rows = list_matches(store, narrative_id="n-nuclear-threat", limit=None)
    assert len(rows) == len(nuclear)
    assert rows[0][0].published >= rows[-1][0].published
    judged = {m.id: v.verdict for m, v in rows if v}
    assert judged == {a.id: "rejected", b.id: "confirmed"}
    assert [m.id for m, _ in list_matches(store, verdict="rejected")] == [a.id]
    assert len(list_matches(store, narrative_id="n-nuclear-threat", verdict="none", limit=None)) == len(nuclear) - 2


def test_unknown_match_and_bad_verdict(store: MatchStore) -> None:
    with pytest.raises(UnknownMatchError, match="unknown match 'feedfacefeedface'") as info:
        record_verdict(store, "feedfacefeedface", "rejected", analyst="alice")
    assert isinstance(info.value, UnknownNameError) and isinstance(info.value, NarrawatchError)
    assert info.value.what == "match"
    with pytest.raises(UnknownMatchError):
        get_match(store, "nope")
    m = store.matches()[0]
    with pytest.raises(ValueError, match="confirmed, rejected"):
        record_verdict(store, m.id, "maybe", analyst="alice")
    assert get_verdict(store, m.id) is None


def test_rejected_match_leaves_reads_and_new_outlet_stops_firing(store: MatchStore) -> None:
    assert f"n-nuclear-threat|{MOSKVACH}" in _keys(store, "new_outlet", OREST, lookback="1h")
    mine = [m for m in store.matches("n-nuclear-threat") if m.outlet == MOSKVACH]
    assert len(mine) == 1
    record_verdict(store, mine[0].id, "rejected", analyst="alice", note="a news report, not the claim")
    assert mine[0] not in store.matches("n-nuclear-threat")
    assert MOSKVACH not in store.first_seen_by_outlet("n-nuclear-threat", until=OREST)
    assert MOSKVACH not in store.first_seen_by_outlet("n-nuclear-threat")
    with store.read_cache():  # the detectors' shared read per pass
        cached = store.matches("n-nuclear-threat", since=OREST - timedelta(days=1), until=OREST)
        assert mine[0] not in cached and cached
    assert f"n-nuclear-threat|{MOSKVACH}" not in _keys(store, "new_outlet", OREST, lookback="1h")
    assert store.get(mine[0].id) == mine[0]  # still there for review
    assert mine[0] in store.matches("n-nuclear-threat", include_rejected=True)
    # Storing the same match again (a re-crawl, a backfill with a better score) does not resurrect it.
    assert store.add([dataclasses.replace(mine[0], score=mine[0].score + 0.05)]) == 0
    assert mine[0].id not in {m.id for m in store.matches("n-nuclear-threat")}
    assert f"n-nuclear-threat|{MOSKVACH}" not in _keys(store, "new_outlet", OREST, lookback="1h")
    # Confirming it later makes it count again.
    record_verdict(store, mine[0].id, "confirmed", analyst="bob")
    assert f"n-nuclear-threat|{MOSKVACH}" in _keys(store, "new_outlet", OREST, lookback="1h")


def test_rejecting_the_window_silences_recurrence_via_run_rules(store: MatchStore) -> None:
    from alerts.config import AlertsConfig, RuleSettings
    from alerts.rules import run_rules

    rule = RuleSettings.model_validate(
        {"id": "rec", "detector": "recurrence", "options": {"window": "24h", "min_matches": 3, "min_outlets": 2}}
    )
    cfg = AlertsConfig(rules=(rule,))
    fired = run_rules(cfg, store, [], OREST, {})
    assert [(e.detector, e.key) for e in fired] == [("recurrence", "n-nuclear-threat")]
    window = store.matches("n-nuclear-threat", since=OREST - timedelta(hours=24), until=OREST)
    for m in window:
        record_verdict(store, m.id, "rejected", analyst="alice")
    assert run_rules(cfg, store, [], OREST, {}) == []
    # Other narratives are untouched by these rejections.
    assert store.matches("n-sanctions-relief")


def test_rejected_language_is_not_first_seen(store: MatchStore) -> None:
    now = datetime(2024, 6, 22, tzinfo=UTC)
    assert "n-dev-courses|en" in _keys(store, "new_language", now, lookback="24h")
    english = store.first_seen_by_language("n-dev-courses", until=now)["en"]
    others = [m for m in store.matches("n-dev-courses") if m.language == "en" and m != english]
    for m in [english, *others]:
        record_verdict(store, m.id, "rejected", analyst="alice")
    assert "en" not in store.first_seen_by_language("n-dev-courses", until=now)
    assert "n-dev-courses|en" not in _keys(store, "new_language", now, lookback="24h")


def test_gold_lines_label_only_the_judged_narrative(store: MatchStore) -> None:
    a, b = store.matches("n-nuclear-threat")[:2]
    yes = record_verdict(store, a.id, "confirmed", analyst="alice", note="claim", now=OREST)
    no = record_verdict(store, b.id, "rejected", analyst="bob", now=OREST)
    line = gold_line(yes, "Full document text.")
    assert line["narratives"] == line["judged"] == ["n-nuclear-threat"]
    assert line["origin"] == f"verdict:{a.id}" and line["verdict"] == "confirmed"
    assert line["text"] == (f"{a.title}\n\nFull document text." if a.title else "Full document text.")
    assert (line["analyst"], line["note"], line["at"]) == ("alice", "claim", OREST.isoformat())
    neg = gold_line(no)  # no document text: the judged passage stands in
    assert neg["narratives"] == [] and neg["judged"] == ["n-nuclear-threat"]
    assert neg["text"].endswith(b.passage_text) and neg["language"] == b.language == "ru"


def test_verdicts_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    with MatchStore(path) as s:
        s.add(posts_to_matches(load_posts(TIMELINE)))
        m = s.matches()[0]
        record_verdict(s, m.id, "rejected", analyst="alice")
    with MatchStore(path) as s:
        assert get_verdict(s, m.id) is not None
        assert m not in s.matches()


_H = timedelta(hours=1)
