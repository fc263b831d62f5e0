"""Detectors replayed over real Telegram posts (synthetic narrative ids): exactly the expected events."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import monitors.detectors
from alerts.config import load_alerts
from alerts.rules import run_rules
from core.events import DETECTORS, SourceHealth
from core.matches import Match
from monitors.copies import collapse_copies, fingerprint_jaccard
from monitors.detectors import build_detector
from monitors.store import MatchStore
from tests.monitors.test_copy_collapse import reference_collapse_copies
from tests.support.timeline import load_posts, posts_to_matches

TIMELINE = Path(__file__).resolve().parents[1] / "data" / "alerts" / "telegram_timeline.jsonl"

RULES: dict[str, dict[str, Any]] = {
    "recurrence": {},
    "spike": {},
    "new_outlet": {"lookback": "1h"},
    "new_language": {"lookback": "24h"},
    "coordinated_burst": {"similarity": 0.65},
    "source_silence": {"silent_for": "48h", "max_failures": 3},
}


@pytest.fixture()
def store(tmp_path: Path) -> MatchStore:
    s = MatchStore(tmp_path / "matches.sqlite")
    s.add(posts_to_matches(load_posts(TIMELINE)))
    return s


def health_at(now: datetime) -> list[SourceHealth]:
    """Each channel's last post before ``now`` as its last item; one source failing."""
    last: dict[str, datetime] = {}
    for p in load_posts(TIMELINE):
        t = datetime.fromisoformat(str(p["date"]))
        if t < now:
            key = f"tg{abs(int(str(p['channel_id'])))}"
            last[key] = max(last.get(key, t), t)
    out = [SourceHealth(k, v, "", None, 0, 0, v) for k, v in sorted(last.items())]
    out.append(SourceHealth("rss-down", now - timedelta(hours=3), "HTTP 503", now - timedelta(minutes=5), 4, 0, None))
    return out


def run_all(store: MatchStore, now: datetime) -> set[tuple[str, str]]:
    events = []
    for name, options in RULES.items():
        events += build_detector(name, options).detect(store, health_at(now), now, {})
    return {(e.detector, e.key) for e in events}


def test_store_is_idempotent_and_round_trips(tmp_path: Path) -> None:
    matches = posts_to_matches(load_posts(TIMELINE))
    with MatchStore(tmp_path / "m.sqlite") as s:
        assert s.add(matches) == 40
        assert s.add(matches) == 0
        assert s.matches() == sorted(matches, key=lambda m: (m.published, m.document_id))
        assert s.narrative_ids() == ["n-dev-courses", "n-nuclear-threat", "n-sanctions-relief"]
        first = s.first_seen_by_language("n-dev-courses")
        assert first["en"].title.startswith("✍️** Learn Data Structures")


def test_copies_count_once_on_real_reposts(store: MatchStore) -> None:
    japan = store.matches("n-sanctions-relief")
    assert len({m.outlet for m in japan}) == 3
    # Two channels posted the same text (Jaccard 0.88); the third rewrote the lead (0.70).
    assert fingerprint_jaccard(japan[1].fingerprint, japan[2].fingerprint) >= 0.8
    groups = collapse_copies(japan)
    assert [len(g.members) for g in groups] == [1, 2]
    assert len(collapse_copies(japan, threshold=0.65)) == 1


def test_forward_counts_as_copy(store: MatchStore) -> None:
    import dataclasses

    a, b = store.matches("n-dev-courses")[:2]
    fwd = dataclasses.replace(b, fingerprint=(), forwarded_from="@" + a.outlet)
    assert len(collapse_copies([a, fwd])) == 1


def test_replayed_timeline_oreshnik_day(store: MatchStore) -> None:
    """2024-11-21 18:00Z: the 'Oreshnik' hour — recurrence, spike, one new outlet, silence."""
    now = datetime(2024, 11, 21, 18, tzinfo=UTC)
    silent_expected = {
        ("source_silence", f"{h.source_id}|silent")
        for h in health_at(now)
        if h.last_item is not None and now - h.last_item >= timedelta(hours=48)
    }
    assert silent_expected, "the June/early-November channels are silent by then"
    # Oracle for new_outlet: channels whose first nuclear post falls in [17:00, 18:00) and not first overall.
    firsts: dict[str, datetime] = {}
    for p in load_posts(TIMELINE):
        if p["narrative_id"] == "n-nuclear-threat":
            firsts.setdefault(str(p["channel"]), datetime.fromisoformat(str(p["date"])))
    ordered = sorted(firsts.items(), key=lambda kv: kv[1])
    new_outlets = {
        ("new_outlet", f"n-nuclear-threat|{ch}")
        for i, (ch, t) in enumerate(ordered)
        if i >= 1 and t >= now - timedelta(hours=1)
    }
    assert new_outlets == {("new_outlet", "n-nuclear-threat|Москвач • Новости Москвы")}
    expected = (
        {
            ("recurrence", "n-nuclear-threat"),
            ("spike", "n-nuclear-threat"),
            ("source_silence", "rss-down|failing"),
        }
        | silent_expected
        | new_outlets
    )
    assert run_all(store, now) == expected


def test_replayed_timeline_sanctions_burst(store: MatchStore) -> None:
    """2024-11-11 16:00Z: three channels posted one text within 6 minutes; no recurrence (copies)."""
    now = datetime(2024, 11, 11, 16, tzinfo=UTC)
    events = {k for k in run_all(store, now) if k[0] != "source_silence"}
    burst = build_detector("coordinated_burst", RULES["coordinated_burst"]).detect(store, [], now, {})
    assert len(burst) == 1 and burst[0].counts["outlets"] == 3
    assert burst[0].counts["span_seconds"] < 15 * 60
    first = burst[0].evidence[0].document_id
    assert events == {
        ("coordinated_burst", f"n-sanctions-relief|{first}"),
        ("new_outlet", "n-sanctions-relief|Москва с огоньком Live"),
        ("new_outlet", "n-sanctions-relief|Москва - новостная"),
    }
    # With the default 0.8 text-similarity threshold only two outlets are near-identical: no burst.
    assert build_detector("coordinated_burst", {}).detect(store, [], now, {}) == []


def test_replayed_timeline_new_language(store: MatchStore) -> None:
    """2024-06-22 00:00Z: an English post appears in a Russian-language narrative."""
    now = datetime(2024, 6, 22, tzinfo=UTC)
    events = {k for k in run_all(store, now) if k[0] != "source_silence"}
    assert events == {("recurrence", "n-dev-courses"), ("new_language", "n-dev-courses|en")}


def test_deterministic_and_quiet_before_data(store: MatchStore) -> None:
    now = datetime(2024, 11, 21, 18, tzinfo=UTC)
    a = build_detector("recurrence", {}).detect(store, [], now, {})
    b = build_detector("recurrence", {}).detect(store, [], now, {})
    assert a == b and a[0].identity == b[0].identity
    assert run_all(store, datetime(2024, 1, 1, tzinfo=UTC)) == {("source_silence", "rss-down|failing")}


def test_registry_and_options_validation() -> None:
    assert set(RULES) <= set(DETECTORS.names())
    with pytest.raises(Exception, match="extra"):
        build_detector("spike", {"windw": "1h"})
    with pytest.raises(Exception, match="unknown detector 'nope'"):
        build_detector("nope")
    # A look-back past representable dates is refused when the rule loads, not mid-pass.
    with pytest.raises(Exception, match="looks back more than"):
        build_detector("spike", {"window": "3650d", "baseline_windows": 1000})
    assert build_detector("spike", {"window": "7d", "baseline_windows": 52}).name == "spike"


POSTS = Path(__file__).resolve().parents[1] / "data" / "index" / "posts.jsonl"
CONFIG = Path(__file__).resolve().parents[2] / "config"
T0 = datetime(2024, 11, 20, tzinfo=UTC)


def busy_matches() -> list[Match]:
    """200 real posts (narrative = their topic) over 47 h, with verbatim reposts, forwards and a spike hour.

    Every 17th post is relabelled Ukrainian (the posts are all Russian) so new languages appear.
    """
    posts = sorted(load_posts(POSTS), key=lambda p: str(p["date"]))
    for p in posts:
        p["narrative_id"] = f"n-{p['category_llm']}"
    base = posts_to_matches(posts)
    rng = random.Random(17)
    out: list[Match] = []
    spike = [i for i, m in enumerate(base) if m.narrative_id == "n-political"][-12:]
    for i, m in enumerate(base):
        when = T0 + timedelta(minutes=i * 14 + rng.randrange(10))
        if i in spike:  # a dozen political posts in one hour near the end
            when = T0 + timedelta(hours=45, minutes=10 + 4 * spike.index(i))
        language = "uk" if i % 17 == 8 else m.language  # relabelled, so new_language has work
        m = dataclasses.replace(m, published=when, tier="suggest" if i % 3 == 0 else "alert", language=language)
        out.append(m)
        for k in range(i % 5 == 0 and 1 + i % 4):  # verbatim reposts by other channels within minutes
            other = base[(i + 7 * (k + 1)) % len(base)]
            out.append(
                dataclasses.replace(
                    m,
                    document_id=f"{m.document_id}-r{k}",
                    outlet=other.outlet,
                    source_id=other.source_id,
                    published=when + timedelta(minutes=3 * k + 1),
                )
            )
        if i % 7 == 3:  # a forward of an earlier item, sometimes without text
            src = out[rng.randrange(len(out))]
            out.append(
                dataclasses.replace(
                    src,
                    document_id=f"{m.document_id}-fwd",
                    outlet=m.outlet,
                    source_id=m.source_id,
                    forwarded_from="@" + src.outlet,
                    fingerprint=() if i % 2 else src.fingerprint,
                    published=when,
                )
            )
    return out


class ReferenceStore(MatchStore):
    """The pre-optimisation read path: no pass cache; first-seen by scanning every match in Python."""

    @contextmanager
    def read_cache(self) -> Iterator[None]:
        yield

    def _first_seen(self, column: str, narrative_id: str, until: datetime | None) -> dict[str, Match]:
        out: dict[str, Match] = {}
        for m in self.matches(narrative_id, until=until) if until else self.matches(narrative_id):
            out.setdefault(getattr(m, column), m)
        return out


def test_shipped_rules_identical_to_reference_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every shipped rule over a busy store: the cached pass gives exactly the old code path's events."""
    rules = load_alerts(CONFIG, [])
    assert {r.detector for r in rules.rules} == set(RULES)
    with MatchStore(tmp_path / "m.sqlite") as store:
        store.add(busy_matches())
    nows = [T0 + timedelta(hours=h, minutes=7) for h in range(0, 50, 2)]
    health = [SourceHealth("rss-down", T0, "HTTP 503", T0, 4, 0, None)]
    with MatchStore(tmp_path / "m.sqlite") as store:
        fast = [run_rules(rules, store, health, now, {}) for now in nows]
    with monkeypatch.context() as mp, ReferenceStore(tmp_path / "m.sqlite") as ref:
        mp.setattr(monitors.detectors, "collapse_copies", reference_collapse_copies)
        slow = [run_rules(rules, ref, health, now, {}) for now in nows]
    assert fast == slow
    fired = {e.detector for events in fast for e in events}
    assert fired == set(RULES), fired
    assert sum(map(len, fast)) >= 60


def test_read_cache_serves_exactly_what_the_database_does(tmp_path: Path) -> None:
    """Widening, narrowing and unbounded windows inside one block equal uncached reads."""
    with MatchStore(tmp_path / "m.sqlite") as store:
        store.add(busy_matches())
        windows = [(24, 48), (23, 48), (30, 40), (None, 48), (20, 49), (47, 47), (60, 70), (None, 90)]

        def read(nid: str, lo: int | None, hi: int) -> list[Match]:
            since = None if lo is None else T0 + timedelta(hours=lo)
            return store.matches(nid, since=since, until=T0 + timedelta(hours=hi))

        expected = {(nid, w): read(nid, *w) for nid in store.narrative_ids() for w in windows}
        with store.read_cache():
            got = {(nid, w): read(nid, *w) for nid in store.narrative_ids() for w in windows}
            store.add([dataclasses.replace(expected["n-political", (None, 48)][0], document_id="late")])
            assert read("n-political", None, 48) == expected["n-political", (None, 48)]  # one view per pass
        assert got == expected
        assert any(len(v) > 20 for v in got.values())
        assert len(read("n-political", None, 48)) == len(expected["n-political", (None, 48)]) + 1
