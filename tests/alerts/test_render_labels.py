"""Alerts name each outlet with its actor type: events from the real 'Oreshnik' hour (tests/data/alerts),
labelled from configured sources (monitors.detectors.label_events), rendered for every target."""

from __future__ import annotations

import json
from datetime import timedelta

from alerts.render import render_html, render_json, render_markdown, render_slack, render_telegram, render_text
from core.events import Alert, DetectorEvent, SourceHealth, event_from_dict, event_to_dict
from core.settings import SourceBase, TelegramSource
from monitors.detectors import build_detector, label_events
from monitors.store import MatchStore
from tests.alerts.conftest import NOW

BBC = "tg1001003921752"  # BBC News | Русская служба
SHOT = "tg1001100158992"  # SHOT
SOURCES: list[SourceBase] = [
    TelegramSource(id=BBC, channel="bbcrussian", actor="independent", country="GB", owner="BBC"),
    TelegramSource(id=SHOT, channel="shot_shot", actor="anonymous_channel", country="RU"),
]


def _alert(event: DetectorEvent) -> Alert:
    return Alert("a1", "r", "warning", (event,), NOW, "r|k", event.title, event.summary)


def test_every_evidence_line_names_the_outlet_and_its_actor_type(events: list[DetectorEvent]) -> None:
    labelled = label_events(events, SOURCES)
    recurrence = next(e for e in labelled if e.detector == "recurrence")
    assert recurrence.source_labels[BBC] == {
        "outlet": "t.me/bbcrussian",
        "actor": "independent",
        "country": "GB",
        "owner": "BBC",
    }
    text = render_text(_alert(recurrence))
    bbc_lines = [line for line in text.splitlines() if "BBC News | Русская служба" in line and " · " in line]
    assert all("BBC News | Русская служба (independent, GB) · " in line for line in bbc_lines)
    assert "SHOT (anonymous channel, RU) · " in text
    # A source with no configured actor type says so instead of saying nothing.
    assert "(actor type not set) · " in text
    assert "Outlet types: " in text and "BBC News | Русская служба: independent, GB (owner BBC)" in text
    for rendered in (
        render_markdown(_alert(recurrence)),
        render_slack(_alert(recurrence)),
        render_telegram(_alert(recurrence)),
        render_telegram(_alert(recurrence), "MarkdownV2"),
        render_html(_alert(recurrence)),
    ):
        assert "independent" in rendered and "anonymous channel" in rendered


def test_new_outlet_events_say_which_kind_of_outlet(store: MatchStore) -> None:
    raw = build_detector("new_outlet", {"lookback": "7d", "min_prior_outlets": 0}).detect(
        store, [], NOW, {"n-nuclear-threat": "Nuclear threat"}
    )
    labelled = {e.source_id: e for e in label_events(raw, SOURCES)}
    bbc = labelled[BBC]
    assert bbc.title.endswith("(independent, GB)") and "BBC News | Русская служба" in bbc.title
    assert "— independent, GB; owner BBC — (seen in" in bbc.summary
    unlabelled = next(e for sid, e in labelled.items() if sid not in (BBC, SHOT))
    assert unlabelled.title.endswith("(actor type not set)")
    assert bbc.identity == next(e for e in raw if e.source_id == BBC).identity  # dedup unaffected


def test_labels_survive_the_outbox_round_trip_and_reach_the_webhook(events: list[DetectorEvent]) -> None:
    event = label_events(events, SOURCES)[0]
    again = event_from_dict(json.loads(json.dumps(event_to_dict(event))))
    assert again.source_labels == event.source_labels
    payload = render_json(_alert(again))
    assert payload["alert"]["events"][0]["source_labels"][BBC]["actor"] == "independent"
    # An event stored before labels existed renders with "actor type not set".
    old = {k: v for k, v in event_to_dict(event).items() if k != "source_labels"}
    assert "(actor type not set) · " in render_text(_alert(event_from_dict(old)))


def test_source_silence_names_the_source_kind() -> None:
    health = [SourceHealth(SHOT, NOW - timedelta(days=3), "", None, 0, 0, NOW - timedelta(days=3), "t.me/shot_shot")]
    events = build_detector("source_silence", {"silent_for": "1d"}).detect(None, health, NOW, {})  # type: ignore[arg-type]
    (event,) = label_events(events, SOURCES)
    assert "Outlet types: t.me/shot_shot: anonymous channel, RU" in render_text(_alert(event))
