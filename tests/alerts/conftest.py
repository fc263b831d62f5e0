"""Fixtures for alert tests: events from real posts, loopback receivers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.events import DetectorEvent
from monitors.detectors import build_detector
from monitors.store import MatchStore
from tests.support.sinks import SmtpSink, WebhookReceiver
from tests.support.timeline import load_posts, posts_to_matches

TIMELINE = Path(__file__).resolve().parents[1] / "data" / "alerts" / "telegram_timeline.jsonl"
NOW = datetime(2024, 11, 21, 18, tzinfo=UTC)


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[MatchStore]:
    with MatchStore(tmp_path / "matches.sqlite") as s:
        s.add(posts_to_matches(load_posts(TIMELINE)))
        yield s


@pytest.fixture()
def events(store: MatchStore) -> list[DetectorEvent]:
    """Recurrence + spike + new outlet on the real 'Oreshnik' hour."""
    out: list[DetectorEvent] = []
    for name, opts in (("recurrence", {}), ("spike", {}), ("new_outlet", {"lookback": "1h"})):
        out += build_detector(name, opts).detect(store, [], NOW, {"n-nuclear-threat": "Nuclear threat"})
    return out


@pytest.fixture()
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as r:
        yield r


@pytest.fixture()
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as s:
        yield s
