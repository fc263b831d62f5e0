"""Contract: the match store and analysts' verdicts, on SQLite and PostgreSQL.

The matches are the real Russian-language Telegram posts of ``tests/data/alerts/telegram_timeline.jsonl``
(the 'Oreshnik' evening of 2024-11-21, a Japanese sanctions story, programming channels). Two stores
opened on one target are two workers of a deployment: one matching, one reviewing or detecting.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from core.matches import Match, match_id
from monitors.detectors import build_detector
from monitors.store import MatchStore
from monitors.verdicts import (
    UnknownMatchError,
    get_match,
    get_verdict,
    list_matches,
    list_verdicts,
    record_verdict,
    verdict_history,
    verdicts_for,
)
from tests.state.conftest import Target
from tests.support.processes import collect
from tests.support.timeline import load_posts, posts_to_matches

TIMELINE = Path(__file__).resolve().parents[1] / "data" / "alerts" / "telegram_timeline.jsonl"
OREST = datetime(2024, 11, 21, 18, tzinfo=UTC)
"""The hour after Putin's 'Oreshnik' address."""
NUCLEAR, SANCTIONS, DEV = "n-nuclear-threat", "n-sanctions-relief", "n-dev-courses"
BBC, MOSKVACH, RANSHE = "BBC News | Русская служба", "Москвач • Новости Москвы", "Раньше всех. Ну почти."
_H = timedelta(hours=1)


def _timeline() -> list[Match]:
    """The 40 real matches, each first seen five minutes after publication."""
    return [
        dataclasses.replace(m, seen=m.published + timedelta(minutes=5)) for m in posts_to_matches(load_posts(TIMELINE))
    ]


def _two(target: Callable[[str], Target]) -> tuple[MatchStore, MatchStore]:
    return MatchStore(target("matches.sqlite")), MatchStore(target("matches.sqlite"))


def _keys(store: MatchStore, detector: str, now: datetime, **options: object) -> set[str]:
    return {e.key for e in build_detector(detector, dict(options)).detect(store, [], now, {})}


def test_upsert_is_idempotent_and_keeps_first_seen(target: Callable[[str], Target]) -> None:
    ms = _timeline()
    a, b = _two(target)
    with a, b:
        assert a.add(ms) == 40
        assert b.add(ms) == 0 and b.add([ms[3], ms[3]]) == 0  # the other worker stores them again
        assert len(a) == len(b) == 40
        last = ms[-1]  # Ньюсач: "Полная версия заявления Владимира Путина ..."
        assert last.id == match_id(last.document_id, NUCLEAR) == "fbc8c7cf91f74fb6"
        # A better-scoring passage of the same pair replaces the row, but never its first sight.
        better = dataclasses.replace(
            last, score=0.93, passage_index=2, passage_text="Путин: удар «Орешником» по Днепру был ответом", seen=OREST
        )
        assert b.add([better]) == 0
        got = a.get(last.id)
        assert got is not None and got.score == 0.93 and got.passage_index == 2
        assert got.passage_text == "Путин: удар «Орешником» по Днепру был ответом"
        assert got.seen == last.published + timedelta(minutes=5)
        # A worse one changes nothing.
        assert a.add([dataclasses.replace(last, score=0.55, passage_text="хуже")]) == 0
        again = b.get(last.id)
        assert again is not None and again.score == 0.93 and again.passage_text.startswith("Путин: удар")
        # The same document under another narrative is a new pair; a mixed batch counts only it.
        other = dataclasses.replace(ms[0], narrative_id=SANCTIONS, seen=None, matched_at=OREST)
        assert b.add([ms[1], other, ms[2]]) == 1 and len(a) == 41
        stored = a.get(other.id)
        # No first-sight record: the earlier of publication and matching.
        assert stored is not None and stored.seen == ms[0].published and stored.matched_at == OREST
        assert a.get("0123456789abcdef") is None


def test_every_field_round_trips(target: Callable[[str], Target]) -> None:
    base, other = _timeline()[20:22]
    msk = timezone(timedelta(hours=3))
    m = dataclasses.replace(
        base,
        score=0.8125,
        tier="suggest",
        published=datetime(2024, 11, 21, 20, 15, 32, 123456, tzinfo=msk),
        counter_similarity=0.4375,
        keywords=("Орешник", "баллистическая ракета"),
        fingerprint=(1848697698, 19552, 0),
        forwarded_from="Раньше всех. Ну почти.",
        matched_at=datetime(2024, 11, 21, 17, 20, 0, 1, tzinfo=UTC),
        seen=datetime(2024, 11, 21, 17, 20, 0, 1, tzinfo=UTC),
        decision="learned",
        probability=0.71875,
        reasons=("близко к подтверждённому примеру «Орешник»", "cue: ядерн"),
    )
    plain = dataclasses.replace(other, counter_similarity=None, probability=None, matched_at=None, seen=None)
    with MatchStore(target("matches.sqlite")) as s:
        assert s.add([m, plain]) == 2
    with MatchStore(target("matches.sqlite")) as s:
        got = s.get(m.id)
        assert got == m  # every compared field, published in UTC (the same instant)
        assert got is not None and got.published.utcoffset() == timedelta(0)
        assert got.published == datetime(2024, 11, 21, 17, 15, 32, 123456, tzinfo=UTC)
        assert (got.matched_at, got.seen) == (m.matched_at, m.seen)
        assert type(got.score) is float and type(got.passage_index) is int and type(got.fingerprint[0]) is int
        assert got.keywords == ("Орешник", "баллистическая ракета") and got.reasons == m.reasons
        p = s.get(plain.id)
        assert p == plain and p is not None
        assert (p.counter_similarity, p.probability, p.matched_at) == (None, None, None)
        assert p.seen == plain.published


def test_reads_by_narrative_window_outlet_and_language(target: Callable[[str], Target]) -> None:
    a, b = _two(target)
    with a, b:
        a.add(_timeline())
        assert b.narrative_ids() == [DEV, NUCLEAR, SANCTIONS]
        nuclear = b.matches(NUCLEAR)
        assert len(nuclear) == 24 and [m.published for m in nuclear] == sorted(m.published for m in nuclear)
        assert nuclear[0].outlet == "Хабр" and nuclear[-1].outlet == "Ньюсач/Двач"
        # Publication-time window: since inclusive, until exclusive.
        hour = b.matches(NUCLEAR, since=OREST - _H, until=OREST)
        assert len(hour) == 13 and hour[0].published == datetime(2024, 11, 21, 17, 14, 39, tzinfo=UTC)
        edge = hour[1].published
        assert hour[1] in b.matches(NUCLEAR, since=edge, until=OREST)
        assert hour[1] not in b.matches(NUCLEAR, since=OREST - _H, until=edge)
        assert len(b.matches([SANCTIONS, DEV])) == 16
        assert [m.outlet for m in b.matches(SANCTIONS)] == ["Топор+", "Москва с огоньком Live", "Москва - новостная"]
        assert len(b.matches(NUCLEAR, outlets=[BBC])) == 5
        assert [m.title for m in b.matches(languages=["en"])] == [
            "✍️** Learn Data Structures and Algorithms with Python**"
        ]
        assert len(b.matches(source_ids=["tg1001237513492"])) == 1  # Топор+
        assert b.matches(NUCLEAR, outlets=[]) == []
        assert [m.outlet for m in b.matches(NUCLEAR, limit=2)] == ["Хабр", RANSHE]
        # First-sight reads: seen is five minutes after publication in this timeline.
        seen = b.seen_between(NUCLEAR, OREST - timedelta(minutes=33), OREST - timedelta(minutes=27))
        assert [m.published.strftime("%H:%M:%S") for m in seen] == ["17:23:01", "17:25:26", "17:27:56"]
        since, until = OREST - timedelta(minutes=70), OREST - timedelta(minutes=40)
        assert [m.outlet for m in b.seen_between(NUCLEAR, since, until)] == [BBC, RANSHE]
        late = b.seen_between(NUCLEAR, since, until, published_before=OREST - timedelta(minutes=50))
        assert [(m.outlet, m.published.strftime("%H:%M:%S")) for m in late] == [(BBC, "16:45:46")]
        edge = b.seen_between(NUCLEAR, datetime(2024, 11, 21, 16, 50, 46, tzinfo=UTC), OREST - timedelta(minutes=40))
        assert [m.outlet for m in edge] == [BBC, RANSHE]  # both bounds inclusive
        outlets = b.first_seen_by_outlet(NUCLEAR, until=OREST)
        assert list(outlets)[:3] == ["Хабр", RANSHE, "Ньюсач/Двач"] and len(outlets) == 8
        assert outlets[MOSKVACH].published == datetime(2024, 11, 21, 17, 30, 6, tzinfo=UTC)
        assert MOSKVACH not in b.first_seen_by_outlet(NUCLEAR, until=datetime(2024, 11, 21, 17, 30, tzinfo=UTC))
        langs = b.first_seen_by_language(DEV)
        assert list(langs) == ["ru", "en"] and langs["en"].outlet == "Библиотека питониста | Python, Django, Flask"


def test_read_cache_serves_one_consistent_view(target: Callable[[str], Target]) -> None:
    ms = _timeline()
    a, b = _two(target)
    with a, b:
        a.add(ms[:-1])
        with b.read_cache():
            day = b.matches(NUCLEAR, since=OREST - 24 * _H, until=OREST)
            a.add(ms[-1:])  # another worker stores the last post meanwhile
            assert b.matches(NUCLEAR, since=OREST - _H, until=OREST) == [m for m in day if m.published >= OREST - _H]
            wider = b.matches(NUCLEAR, since=OREST - 48 * _H, until=OREST)
            assert len(day) == 23 and wider == day  # extended window: the new row not read yet
        assert len(b.matches(NUCLEAR, since=OREST - 24 * _H, until=OREST)) == 24


def test_tier_is_stored_and_detectors_count_by_it(target: Callable[[str], Target]) -> None:
    ms = [dataclasses.replace(m, tier="suggest", score=0.62) for m in _timeline()]
    a, b = _two(target)
    with a, b:
        a.add(ms)
        assert {m.tier for m in b.matches(NUCLEAR)} == {"suggest"}
        assert _keys(b, "recurrence", OREST) == set()  # min_tier alert by default
        assert _keys(b, "recurrence", OREST, min_tier="suggest") == {NUCLEAR}
        # Three distinct posts from three outlets are re-matched above the alert threshold.
        picks = [m for m in ms if m.outlet in ("Хабр", "Naked Science", MOSKVACH)]
        assert len(picks) == 3
        assert a.add([dataclasses.replace(m, tier="alert", score=0.84) for m in picks]) == 0
        assert sorted(m.outlet for m in b.matches(NUCLEAR) if m.tier == "alert") == sorted(
            ["Хабр", "Naked Science", MOSKVACH]
        )
        (event,) = build_detector("recurrence", {}).detect(b, [], OREST, {})
        assert event.counts == {"matches": 3, "distinct": 3, "outlets": 3}
        assert {m.document_id for m in event.evidence} == {m.document_id for m in picks}


def test_verdicts_confirm_reject_and_latest_wins(target: Callable[[str], Target]) -> None:
    review, detect = _two(target)
    with review, detect:
        detect.add(_timeline())
        x, y = detect.matches(NUCLEAR, outlets=[BBC])[:2]
        t0 = datetime(2024, 11, 22, 9, tzinfo=UTC)
        first = record_verdict(review, x.id, "confirmed", analyst=" alice ", note="утверждает угрозу", now=t0)
        assert (first.verdict, first.analyst, first.note, first.at) == ("confirmed", "alice", "утверждает угрозу", t0)
        assert (first.title, first.language, first.passage_text) == (x.title, "ru", x.passage_text)
        assert get_verdict(detect, x.id) == first
        second = record_verdict(detect, x.id, "rejected", analyst="bob", note="BBC only reports it", now=t0 + _H)
        assert get_verdict(review, x.id) == second
        assert [(v.verdict, v.analyst, v.at) for v in verdict_history(review, x.id)] == [
            ("confirmed", "alice", t0),
            ("rejected", "bob", t0 + _H),
        ]
        anonymous = record_verdict(review, y.id, "confirmed", analyst="", now=t0 + 2 * _H)
        assert anonymous.analyst == "unknown" and get_verdict(detect, y.id) == anonymous
        assert [v.match_id for v in list_verdicts(detect)] == [y.id, x.id]  # newest first
        assert [v.match_id for v in list_verdicts(detect, verdict="rejected")] == [x.id]
        assert [v.match_id for v in list_verdicts(detect, narrative_id=NUCLEAR, limit=1)] == [y.id]
        assert list_verdicts(detect, narrative_id=DEV) == []
        assert set(verdicts_for(detect, [x.id, y.id, "0" * 16])) == {x.id, y.id}
        rows = list_matches(review, narrative_id=NUCLEAR, limit=None)
        assert len(rows) == 24 and rows[0][0].published > rows[-1][0].published
        assert {m.id: v.verdict for m, v in rows if v} == {x.id: "rejected", y.id: "confirmed"}
        assert [m.id for m, _ in list_matches(review, verdict="rejected")] == [x.id]
        assert len(list_matches(review, narrative_id=NUCLEAR, verdict="none", limit=None)) == 22
        assert len(list_matches(review, limit=5)) == 5
        with pytest.raises(UnknownMatchError, match="unknown match 'feedfacefeedface'"):
            record_verdict(review, "feedfacefeedface", "rejected", analyst="alice")
        with pytest.raises(ValueError, match="confirmed, rejected"):
            record_verdict(review, y.id, "maybe", analyst="alice")
        assert get_match(detect, y.id) == y


def test_rejected_match_leaves_what_detectors_count(target: Callable[[str], Target]) -> None:
    review, detect = _two(target)
    with review, detect:
        detect.add(_timeline())
        key = f"{NUCLEAR}|{MOSKVACH}"
        assert key in _keys(detect, "new_outlet", OREST, lookback="1h")
        (mine,) = detect.matches(NUCLEAR, outlets=[MOSKVACH])
        record_verdict(review, mine.id, "rejected", analyst="alice", note="новостная заметка, не нарратив")
        assert mine not in detect.matches(NUCLEAR) and len(detect.matches(NUCLEAR)) == 23
        assert MOSKVACH not in detect.first_seen_by_outlet(NUCLEAR, until=OREST)
        assert mine not in detect.seen_between(NUCLEAR, OREST - _H, OREST)
        with detect.read_cache():
            assert mine not in detect.matches(NUCLEAR, since=OREST - 24 * _H, until=OREST)
        assert key not in _keys(detect, "new_outlet", OREST, lookback="1h")
        assert detect.get(mine.id) == mine and mine in detect.matches(NUCLEAR, include_rejected=True)
        assert len(detect) == 40
        # Re-storing it (a re-crawl with a better passage) does not bring it back.
        assert review.add([dataclasses.replace(mine, score=0.9)]) == 0
        assert mine.id not in {m.id for m in detect.matches(NUCLEAR)}
        assert key not in _keys(detect, "new_outlet", OREST, lookback="1h")
        # Rejecting the whole Oreshnik day silences recurrence; confirming one brings it back in.
        assert _keys(detect, "recurrence", OREST) == {NUCLEAR}
        for m in detect.matches(NUCLEAR, since=OREST - 24 * _H, until=OREST):
            record_verdict(review, m.id, "rejected", analyst="alice")
        assert _keys(detect, "recurrence", OREST) == set() and detect.matches(NUCLEAR) == []
        assert len(detect.matches(SANCTIONS)) == 3  # other narratives untouched
        record_verdict(review, mine.id, "confirmed", analyst="bob")
        assert [m.id for m in detect.matches(NUCLEAR)] == [mine.id]
        assert key in _keys(detect, "new_outlet", OREST, lookback="1h", min_prior_outlets=0)


def test_matches_and_verdicts_survive_reopening(target: Callable[[str], Target]) -> None:
    ms = _timeline()
    with MatchStore(target("matches.sqlite")) as s:
        s.add(ms)
        record_verdict(s, ms[0].id, "rejected", analyst="alice", now=OREST)
    with MatchStore(target("matches.sqlite")) as s:
        assert len(s) == 40 and s.add(ms) == 0
        v = get_verdict(s, ms[0].id)
        assert v is not None and (v.verdict, v.analyst, v.at) == ("rejected", "alice", OREST)
        assert ms[0] not in s.matches() and len(s.matches()) == 39
        assert s.get(ms[-1].id) == ms[-1]


# -- two OS processes against one target ------------------------------------------------------

ROUNDS = 4
SHARED_VERDICTS = 12


def _open(where: str, schema: str) -> MatchStore:
    if schema:
        from core.pgsql import PgDatabase

        store = MatchStore(PgDatabase(where, schema=schema, pool_size=1))
        store._owns_db = True
        return store
    return MatchStore(Path(where))


def _score(i: int, worker: int, rnd: int) -> float:
    """Worker 0 writes the best score of odd matches, worker 1 of even ones, in the last round."""
    return round(0.5 + 0.01 * (2 * rnd + (i + worker) % 2), 4)


def _writer(where: str, schema: str, worker: int, start: object, out: object) -> None:
    store = _open(where, schema)
    try:
        ms = _timeline()
        order = list(range(len(ms))) if worker == 0 else list(reversed(range(len(ms))))
        start.wait()  # type: ignore[attr-defined]
        new = 0
        for rnd in range(ROUNDS):
            batch = [
                dataclasses.replace(
                    ms[i],
                    score=_score(i, worker, rnd),
                    passage_text=f"{ms[i].passage_text[:200]} [w{worker} r{rnd}]",
                    seen=ms[i].published + timedelta(minutes=worker + 1),
                )
                for i in order
            ]
            for k in range(0, len(batch), 8):
                new += store.add(batch[k : k + 8])
        shared = ms[-1].id  # both analysts keep changing their minds on Путин's address
        for k in range(SHARED_VERDICTS):
            verdict = "confirmed" if (k + worker) % 2 else "rejected"
            record_verdict(store, shared, verdict, analyst=f"analyst-{worker}", note=f"{worker}:{k}")
        record_verdict(store, ms[worker].id, "rejected", analyst=f"analyst-{worker}")
        out.put((worker, new))  # type: ignore[attr-defined]
    finally:
        store.close()


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_two_processes_upsert_and_judge_without_lost_updates(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if engine == "sqlite":
        where, schema = str(tmp_path / "matches.sqlite"), ""
    else:
        where, schema = str(request.getfixturevalue("pg_url")), f"t_{uuid.uuid4().hex[:12]}"
    _open(where, schema).close()  # the schema exists before the writers start
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(where, schema, w, start, out)) for w in (0, 1)]
    for p in procs:
        p.start()
    start.set()
    news = dict(collect(out, procs, 2))
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert news[0] + news[1] == 40  # each pair counted new exactly once, by whichever worker won
    ms = _timeline()
    with _open(where, schema) as store:
        assert len(store) == 40
        for i, m in enumerate(ms):
            got = store.get(m.id)
            assert got is not None
            winner = (i + 1) % 2  # the worker whose last-round score is the higher one
            assert got.score == _score(i, winner, ROUNDS - 1), (i, got.score)
            assert got.passage_text.endswith(f"[w{winner} r{ROUNDS - 1}]"), (i, got.passage_text[-12:])
            assert got.seen in (m.published + timedelta(minutes=1), m.published + timedelta(minutes=2))
        history = verdict_history(store, ms[-1].id)
        assert len(history) == 2 * SHARED_VERDICTS
        assert sorted(v.note for v in history) == sorted(f"{w}:{k}" for w in (0, 1) for k in range(SHARED_VERDICTS))
        for w in (0, 1):  # each worker's own verdicts are in its order
            assert [v.note for v in history if v.analyst == f"analyst-{w}"] == [
                f"{w}:{k}" for k in range(SHARED_VERDICTS)
            ]
        assert get_verdict(store, ms[-1].id) == history[-1]  # the latest verdict is the last recorded
        assert {ms[0].id, ms[1].id} <= {v.match_id for v in list_verdicts(store, verdict="rejected")}
