"""The detector contract, run against every registered detector (a new one must add a profile).

Built from real posts (tests/data/alerts/telegram_timeline.jsonl, via tests/support/timeline.py):

* windows: at a moment where the detector fires on the real timeline it reports events; at
  moments where every item lies outside its windows (before the first post, long after the
  last; for source silence, just inside ``silent_for``) it reports nothing;
* copies collapse: adding a verbatim repost of every match (same outlet, a minute later) changes
  no event's identity, so a repost is never new evidence;
* identity: the same input twice gives the same event ids.

A detector that reads more than matches (``deleted_after_spread``: deletions; ``query``: the
index) gets the store wrapped by its profile, the way the monitoring pass wraps it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.events import DETECTORS, SourceHealth
from core.evidence import Deletion
from core.matches import Match
from monitors.deletions import StoreWithDeletions
from monitors.detectors import build_detector
from monitors.store import MatchStore
from tests.support.timeline import load_posts, posts_to_matches

TIMELINE = Path(__file__).resolve().parents[1] / "data" / "alerts" / "telegram_timeline.jsonl"
POSTS = load_posts(TIMELINE)
FIRST = min(datetime.fromisoformat(str(p["date"])) for p in POSTS)
LAST = max(datetime.fromisoformat(str(p["date"])) for p in POSTS)


def _last_items(now: datetime) -> dict[str, datetime]:
    last: dict[str, datetime] = {}
    for p in POSTS:
        t = datetime.fromisoformat(str(p["date"]))
        if t <= now:
            key = f"tg{abs(int(str(p['channel_id'])))}"
            last[key] = max(last.get(key, t), t)
    return last


def health_at(now: datetime) -> list[SourceHealth]:
    """Each channel healthy, its last post up to ``now`` as its last item."""
    return [SourceHealth(k, v, "", None, 0, 0, v) for k, v in sorted(_last_items(now).items())]


SILENT_FOR = timedelta(hours=48)


def _last_channel_health(now: datetime) -> list[SourceHealth]:
    """The health of the channel that posted last in the timeline (it then goes quiet)."""
    return [h for h in health_at(LAST) if h.last_item == LAST]


@dataclass(frozen=True)
class Profile:
    """How a detector is exercised: options, a firing moment, moments where all is outside its windows."""

    options: dict[str, Any]
    fires_at: datetime
    quiet_at: tuple[datetime, ...] = (FIRST - timedelta(seconds=1), LAST + timedelta(days=400))
    health: Callable[[datetime], list[SourceHealth]] = field(default=lambda now: [])
    wrap: Callable[[MatchStore], Any] = field(default=lambda store: store)
    """What the detector is handed instead of the bare match store."""


class _Deletions:
    """Every third post of the timeline deleted 12 hours after it was published (last seen after 1 hour)."""

    def __init__(self) -> None:
        docs = sorted({(m.published, m.document_id) for m in posts_to_matches(POSTS)})
        self.rows = sorted(
            (Deletion(doc, at + timedelta(hours=12), at + timedelta(hours=1), "missing") for at, doc in docs[::3]),
            key=lambda d: (d.deleted_at, d.document_id),
        )

    def deleted_since(self, when: datetime) -> list[Deletion]:
        return [d for d in self.rows if d.deleted_at >= when]


DELETIONS = _Deletions()


class _SearchedTimeline:
    """What a ``query`` rule reads, over a real embedded index of the store's matched posts: a dry
    run (every post published in the week before ``now``), as ``rules test`` runs it."""

    def __init__(self, store: MatchStore) -> None:
        from crawlers.normalize import make_document
        from index.embed import HashingEmbedder
        from index.local import EmbeddedIndex

        self.embedder = HashingEmbedder()
        self.index = EmbeddedIndex(store.path.parent / f"{store.path.stem}-query-index", self.embedder.space)
        docs: dict[str, Any] = {}
        self.outlets: dict[str, str] = {}
        for nid in store.narrative_ids():
            for m in store.matches(nid):
                self.outlets[m.source_id] = m.outlet
                docs[m.document_id] = make_document(
                    source_id=m.source_id,
                    kind="telegram",
                    url=m.url,
                    title=m.title,
                    text=m.passage_text,
                    published=m.published,
                    fetched=m.published,
                    language_hint=m.language,
                    extraction="telegram",
                    outlet=m.outlet,
                    doc_id=m.document_id,
                )
        from core.documents import IndexedDocument

        self.index.upsert(
            [IndexedDocument(d, self.embedder.embed_documents([p.text for p in d.passages])) for d in docs.values()]
        )

    def new_document_ids(self) -> None:
        return None

    def published_since(self, now: datetime) -> datetime:
        return now - timedelta(days=7)

    def scope_sources(self) -> None:
        return None

    def search(self, query: Any) -> Any:
        return self.index.search(query)

    def embed_query(self, text: str) -> Any:
        return self.embedder.embed_query(text)

    def outlet(self, source_id: str) -> str:
        return self.outlets.get(source_id, source_id)


PROFILES: dict[str, Profile] = {
    "recurrence": Profile({}, datetime(2024, 11, 21, 18, tzinfo=UTC)),
    "spike": Profile({}, datetime(2024, 11, 21, 18, tzinfo=UTC)),
    "new_outlet": Profile({"lookback": "1h"}, datetime(2024, 11, 21, 18, tzinfo=UTC)),
    "new_language": Profile({"lookback": "24h"}, datetime(2024, 6, 22, tzinfo=UTC)),
    "coordinated_burst": Profile({"similarity": 0.65}, datetime(2024, 11, 11, 16, tzinfo=UTC)),
    # Silence: the channel that posted last goes quiet; 48h later it is silent, a second earlier not.
    "source_silence": Profile(
        {"silent_for": "48h"},
        LAST + SILENT_FOR,
        quiet_at=(LAST, LAST + SILENT_FOR - timedelta(seconds=1)),
        health=_last_channel_health,
    ),
    "deleted_after_spread": Profile(
        {"lookback": "7d"},
        datetime(2024, 11, 21, 18, tzinfo=UTC),
        wrap=lambda store: StoreWithDeletions(store, DELETIONS),
    ),
    # A saved search for the Oreshnik posts of 21 November, searched by the real embedded index.
    "query": Profile({"query": "Орешник"}, datetime(2024, 11, 21, 18, tzinfo=UTC), wrap=_SearchedTimeline),
}


def test_every_registered_detector_has_a_profile() -> None:
    assert set(PROFILES) == set(DETECTORS.names()), "add a contract profile for each new detector"


def _store(path: Path, extra: list[Match] | None = None) -> MatchStore:
    store = MatchStore(path)
    store.add(posts_to_matches(POSTS) + (extra or []))
    return store


@pytest.fixture(params=DETECTORS.names())
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture()
def store(tmp_path: Path) -> MatchStore:
    return _store(tmp_path / "matches.sqlite")


def _detect(name: str, store: MatchStore, now: datetime) -> list[Any]:
    profile = PROFILES[name]
    return build_detector(name, profile.options).detect(profile.wrap(store), profile.health(now), now, {})


def test_fires_inside_and_stays_quiet_outside_its_windows(name: str, store: MatchStore) -> None:
    profile = PROFILES[name]
    events = _detect(name, store, profile.fires_at)
    assert events, f"{name} should fire at {profile.fires_at}"
    for e in events:
        assert e.detector == name and e.window_start <= e.window_end <= profile.fires_at
        assert all(m.published < profile.fires_at for m in e.evidence)
    for now in profile.quiet_at:
        assert _detect(name, store, now) == [], f"{name} fired at {now}, outside its windows"


def _reposts(matches: list[Match]) -> list[Match]:
    """A verbatim repost of every match: same outlet, source and text, a minute later."""
    minute = timedelta(minutes=1)
    return [
        replace(
            m,
            document_id=m.document_id + "-repost",
            url=m.url + "?repost",
            published=m.published + minute,
            seen=(m.seen + minute) if m.seen else None,
        )
        for m in matches
    ]


def test_verbatim_reposts_count_once(name: str, store: MatchStore, tmp_path: Path) -> None:
    now = PROFILES[name].fires_at
    before = {e.identity for e in _detect(name, store, now)}
    with_copies = _store(tmp_path / "copies.sqlite", _reposts(posts_to_matches(POSTS)))
    after = {e.identity for e in _detect(name, with_copies, now)}
    assert before and after == before


def test_event_identity_is_stable(name: str, store: MatchStore, tmp_path: Path) -> None:
    now = PROFILES[name].fires_at
    first = [e.identity for e in _detect(name, store, now)]
    again = [e.identity for e in _detect(name, _store(tmp_path / "again.sqlite"), now)]
    assert first and first == again
    later = [e.identity for e in _detect(name, store, now)]  # and re-running on the same store
    assert later == first
