"""Items crawled late still alert (issue 10, item 1): windows count an item when the service first
saw it, alerts report its publication time, and a backlog fires no spike that was not published.

The streams are real posts (tests/data/alerts/telegram_timeline.jsonl, CC BY 4.0; see ORIGIN.md
there). The end-to-end case runs the real pipeline (hashing embedder, embedded index), the real
matcher, the match store, the shipped alert rules (config/alerts/default.yaml: new-outlet
``lookback: 2h``) and the outbox, with the service clock standing where a deployment's would.
"""

from __future__ import annotations

import dataclasses
import shutil
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts.config import AlertsConfig
from alerts.rules import run_rules
from core.documents import document_id_for_telegram
from core.matches import Match
from core.serialize import document_to_dict
from core.settings import Config, load_config
from crawlers.normalize import make_document
from monitors.detectors import build_detector
from monitors.store import MatchStore
from narrawatch.app import open_app
from narrawatch.monitoring import attach_monitoring
from tests.support.timeline import load_posts, posts_to_matches

ROOT = Path(__file__).resolve().parents[2]
TIMELINE = ROOT / "tests" / "data" / "alerts" / "telegram_timeline.jsonl"
SHIPPED_RULES = ROOT / "config" / "alerts" / "default.yaml"

# Three real channel streams of 2024-11-21 and, in each, the real post about Putin's "Oreshnik"
# address that plays the planted narrative (published 17:16-17:25 UTC).
CHANNELS = {"rvs": "Раньше всех. Ну почти.", "shot": "SHOT", "dvach": "Ньюсач/Двач"}
PLANTED_AT = {
    "rvs": "2024-11-21T17:16:23+00:00",
    "shot": "2024-11-21T17:25:26+00:00",
    "dvach": "2024-11-21T17:23:01+00:00",
}
SOURCE_DOWN_FROM = datetime(2024, 11, 21, 12, tzinfo=UTC)
SEEN = datetime(2024, 11, 21, 22, 26, tzinfo=UTC)  # 5 h after the last planted post was published


def _stream(posts: Sequence[dict[str, Any]], source: str) -> list[dict[str, Any]]:
    return [p for p in posts if p["channel"] == CHANNELS[source]]


def _events(streams: dict[str, list[dict[str, Any]]], fetched: datetime) -> Iterator[dict[str, Any]]:
    """The events the crawl child prints for these posts (as tests/narrawatch/test_pipeline.py does)."""
    for source, posts in streams.items():
        for p in posts:
            doc = make_document(
                source_id=source,
                kind="telegram",
                url=f"https://t.me/{source}/{p['message_id']}",
                title="",
                text=str(p["text"]),
                published=datetime.fromisoformat(str(p["date"])),
                fetched=fetched,
                doc_id=document_id_for_telegram(source, int(p["message_id"])),
                extraction="telegram",
                outlet=CHANNELS[source],
            )
            yield {"event": "fetched", "source": source, "url": doc.url, "status": 200}
            yield {
                "event": "document",
                "source": source,
                "key": str(p["message_id"]),
                "document": document_to_dict(doc),
            }
        yield {"event": "source_done", "source": source, "ok": True, "counts": {}}


def _config(tmp: Path, planted: Sequence[dict[str, Any]]) -> Config:
    cfg = tmp / "config"
    (cfg / "narratives").mkdir(parents=True)
    (cfg / "alerts").mkdir()
    sources = [{"id": s, "kind": "telegram", "channel": s, "base_url": "http://127.0.0.1:9"} for s in CHANNELS]
    (cfg / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}, allow_unicode=True), encoding="utf-8")
    service = {"data_dir": "../data", "embedding": {"model": "hashing"}}
    (cfg / "service.yaml").write_text(yaml.safe_dump(service), encoding="utf-8")
    narrative = {
        "id": "n-oreshnik-address",
        "title": "Oreshnik address (planted for the test)",
        "exemplars": {"ru": [str(p["text"]) for p in planted]},
        "thresholds": {"suggest": 0.5, "alert": 0.6},
    }
    (cfg / "narratives" / "planted.yaml").write_text(yaml.safe_dump(narrative, allow_unicode=True), encoding="utf-8")
    shutil.copy(SHIPPED_RULES, cfg / "alerts" / "default.yaml")
    return load_config(cfg)


def test_planted_narrative_seen_5h_late_gives_new_outlet_alerts(tmp_path: Path) -> None:
    posts = load_posts(TIMELINE)
    planted = [p for p in posts if p["date"] in PLANTED_AT.values()]
    assert {p["channel"] for p in planted} == set(CHANNELS.values())
    config = _config(tmp_path, planted)
    alerts_cfg = config.extra["alerts"]
    assert isinstance(alerts_cfg, AlertsConfig)
    assert alerts_cfg.rule("new-outlet").options["lookback"] == "2h"  # the shipped rule, unchanged

    clock = {"now": SOURCE_DOWN_FROM}
    streams = {s: _stream(posts, s) for s in CHANNELS}
    before = {
        s: [p for p in ps if datetime.fromisoformat(str(p["date"])) < SOURCE_DOWN_FROM] for s, ps in streams.items()
    }
    backlog = {s: [p for p in ps if p not in before[s]] for s, ps in streams.items()}
    assert all(before.values()) and all(any(p in planted for p in b) for b in backlog.values())

    with open_app(config) as app:
        service = attach_monitoring(app, clock=lambda: clock["now"])
        assert service is not None
        # On time until noon; then the three sources are down and come back 5 h after the posts.
        app.pipeline.crawl = lambda _c, _s, _st: _events(before, SOURCE_DOWN_FROM)
        app.pipeline.ingest()
        service.after_pass()
        clock["now"] = SEEN
        app.pipeline.crawl = lambda _c, _s, _st: _events(backlog, SEEN)
        reports = app.pipeline.ingest()
        assert all(r.ok for r in reports)

        stored = service.store.matches("n-oreshnik-address")
        ids = {document_id_for_telegram(s, int(p["message_id"])) for s in CHANNELS for p in backlog[s] if p in planted}
        assert ids <= {m.document_id for m in stored if m.tier == "alert"}
        assert all(m.seen == SEEN for m in stored)  # first seen when the service indexed them

        now = SEEN + timedelta(minutes=1)
        events = run_rules(alerts_cfg, service.store, [], now, {"n-oreshnik-address": "Oreshnik address"})
        new_outlet = [e for e in events if e.rule == "new-outlet"]
        assert sorted(e.key.split("|")[1] for e in new_outlet) == sorted(
            {m.outlet for m in stored if m.tier == "alert"} - {min(stored, key=lambda m: m.published).outlet}
        )
        assert len(new_outlet) == 2
        # The alert reports publication time (5 h before), and says it was seen late.
        for e in new_outlet:
            (m,) = e.evidence
            assert e.window_start == m.published < SEEN - timedelta(hours=4)
            assert "first seen 5h" in e.summary
        assert any(e.rule == "recurrence" for e in events)
        assert not any(e.rule == "spike" for e in events)

        # Through the service: the shipped new-outlet rule digests hourly, so the alert comes with it.
        clock["now"] = now
        service.after_pass()
        clock["now"] = now + timedelta(hours=1, minutes=1)
        service.after_pass()
        outbox = service.outbox
        assert outbox is not None
        rows = outbox.list_alerts(rule="new-outlet")
        assert len(rows) == 1
        digest = outbox.alert(rows[0].id)
        assert digest is not None and digest.digest and len(digest.events) == 2


def test_refetch_and_update_keep_first_seen(tmp_path: Path) -> None:
    """A second store of the same match (re-fetch, edit, re-match) never moves ``seen``."""
    (first, *_rest) = posts_to_matches(load_posts(TIMELINE))
    t0 = first.published + timedelta(hours=5)
    with MatchStore(tmp_path / "m.sqlite") as store:
        store.add([dataclasses.replace(first, seen=t0)])
        store.add([dataclasses.replace(first, seen=t0 + timedelta(days=1), score=first.score + 0.1)])  # better
        store.add([dataclasses.replace(first, seen=t0 + timedelta(days=2))])  # same score
        (got,) = store.matches(first.narrative_id, until=t0 + timedelta(days=3))
        assert got.seen == t0 and got.score == pytest.approx(first.score + 0.1)


def test_existing_store_is_migrated_with_a_first_seen_time(tmp_path: Path) -> None:
    """A matches.sqlite written before ``seen`` existed opens, and old rows never become news."""
    path = tmp_path / "old.sqlite"
    matches = posts_to_matches(load_posts(TIMELINE))
    with MatchStore(path) as store:
        store.add([dataclasses.replace(m, matched_at=m.published + timedelta(hours=3)) for m in matches])
    with sqlite3.connect(path) as conn:  # back to the old layout
        conn.execute("DROP INDEX matches_narrative_seen")
        conn.execute("DROP INDEX matches_first_outlet_seen")
        conn.execute("DROP INDEX matches_first_lang_seen")
        conn.execute("ALTER TABLE matches DROP COLUMN seen")
    with MatchStore(path) as store:
        got = store.matches(until=datetime(2025, 1, 1, tzinfo=UTC))
        assert len(got) == len(matches) and all(m.seen == m.published for m in got)


def _late(matches: Sequence[Match], lag: timedelta) -> list[Match]:
    return [dataclasses.replace(m, seen=m.published + lag) for m in matches]


def test_a_real_spike_crawled_late_still_fires(tmp_path: Path) -> None:
    """The real "Oreshnik" hour (17:00-18:00) reached the service 3 h late: the spike is raised,
    reported on the hour it was published."""
    matches = posts_to_matches(load_posts(TIMELINE))
    on_time = build_detector("spike")
    with MatchStore(tmp_path / "m.sqlite") as store:
        store.add(matches)
        assert any(
            e.key == "n-nuclear-threat" for e in on_time.detect(store, [], datetime(2024, 11, 21, 18, tzinfo=UTC), {})
        )
    with MatchStore(tmp_path / "late.sqlite") as store:
        store.add(_late(matches, timedelta(hours=3)))
        now = datetime(2024, 11, 21, 20, 45, tzinfo=UTC)  # 17:xx posts first seen 20:xx
        (event,) = on_time.detect(store, [], now, {})
        assert event.key == "n-nuclear-threat"
        assert event.window_start == datetime(2024, 11, 21, 16, 45, tzinfo=UTC)
        assert event.window_end == datetime(2024, 11, 21, 17, 45, tzinfo=UTC)
        assert "crawled late" in event.summary
        assert min(m.published for m in event.evidence) >= event.window_start


def test_a_backlog_of_old_items_does_not_fire_a_spike(tmp_path: Path) -> None:
    """Posts published over a day and a half, all first seen in one pass: not a spike (counting
    them by first-seen time would make one: 13+ items in the last hour against a baseline of 0)."""
    posts = [p for p in load_posts(TIMELINE) if str(p["date"]) < "2024-11-21T17:00"]
    matches = [dataclasses.replace(m, narrative_id="n-backlog") for m in posts_to_matches(posts)]
    seen = datetime(2024, 11, 21, 17, 30, tzinfo=UTC)
    with MatchStore(tmp_path / "m.sqlite") as store:
        store.add([dataclasses.replace(m, seen=seen) for m in matches])
        assert len(store.seen_between("n-backlog", seen - timedelta(hours=1), seen)) >= 13
        for name in ("spike", "coordinated_burst"):
            for now in (seen, seen + timedelta(minutes=30)):
                assert build_detector(name).detect(store, [], now, {}) == [], (name, now)
        # New outlets and recurrence do count a late item: each outlet's first item is news.
        assert build_detector("new_outlet", {"lookback": "2h"}).detect(store, [], seen, {})


def test_items_not_yet_seen_at_now_do_not_count(tmp_path: Path) -> None:
    """Replaying the past (``rules test``) sees only what the service knew at each step."""
    matches = posts_to_matches(load_posts(TIMELINE))
    with MatchStore(tmp_path / "m.sqlite") as store:
        store.add(_late(matches, timedelta(days=2)))  # known only from 2024-11-22T19:58
        at_18 = datetime(2024, 11, 21, 18, tzinfo=UTC)
        for name in ("recurrence", "spike", "new_outlet"):
            assert [e for e in build_detector(name).detect(store, [], at_18, {}) if e.key.startswith("n-nuclear")] == []


def test_outbox_alerts_keep_the_first_seen_time(tmp_path: Path) -> None:
    """The evidence stored with an alert (and sent to webhooks) carries ``seen`` next to ``published``."""
    from alerts.config import RuleSettings
    from alerts.rules import make_alert
    from core.events import alert_from_dict, alert_to_dict

    matches = _late(posts_to_matches(load_posts(TIMELINE)), timedelta(hours=5))
    with MatchStore(tmp_path / "m.sqlite") as store:
        store.add(matches)
        now = matches[-1].published + timedelta(hours=5)
        events = build_detector("new_outlet", {"lookback": "1h"}).detect(store, [], now, {})
    assert events
    alert = make_alert(RuleSettings.model_validate({"id": "r", "detector": "new_outlet"}), events[:1], now)
    back = alert_from_dict(alert_to_dict(alert))
    (m,) = back.events[0].evidence
    assert m.seen == m.published + timedelta(hours=5)
