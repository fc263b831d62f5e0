"""Crawl state survives restarts and only advances on acknowledged work."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from crawlers.state import CrawlStateStore

T0 = datetime(2024, 11, 30, 12, 0, tzinfo=UTC)


def test_state_persists_across_reopen(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    s = CrawlStateStore(db)
    s.mark_seen("tg", [("101", "tg:x/101"), ("103", "tg:x/103")], T0)
    s.record_result("tg", ok=True, now=T0, validators={"etag": '"abc"', "last_modified": "Sat, 30 Nov 2024"})
    s.record_result("tg", ok=True, now=T0, validators={"last_message_id": 103})
    s.close()
    s = CrawlStateStore(db)
    st = s.get("tg")
    assert st.etag == '"abc"' and st.last_modified == "Sat, 30 Nov 2024"
    assert st.last_message_id == 103 and st.last_success == T0 and st.consecutive_failures == 0
    assert sorted(s.seen_keys("tg")) == ["101", "103"]
    job = s.job_state("tg")
    assert job["last_message_id"] == 103 and set(job["seen"]) == {"101", "103"}


def test_failures_count_and_keep_validators(tmp_path: Path) -> None:
    s = CrawlStateStore(tmp_path / "state.db")
    s.record_result("feed", ok=True, now=T0, validators={"etag": "v1"})
    s.record_result("feed", ok=False, now=T0 + timedelta(minutes=15), error="HTTP 500 after 3 retries")
    s.record_result("feed", ok=False, now=T0 + timedelta(minutes=30), error="timeout")
    st = s.get("feed")
    assert st.etag == "v1" and st.consecutive_failures == 2 and st.last_error == "timeout"
    assert st.last_success == T0
    s.record_result("feed", ok=True, now=T0 + timedelta(hours=1))
    assert s.get("feed").consecutive_failures == 0 and s.get("feed").etag == "v1"


def test_seen_is_idempotent_and_message_id_monotonic(tmp_path: Path) -> None:
    s = CrawlStateStore(tmp_path / "state.db")
    s.mark_seen("tg", [("200", "a")], T0)
    s.mark_seen("tg", [("200", "a"), ("150", "b")], T0 + timedelta(minutes=1))
    assert s.get("tg").last_message_id is None  # seen items alone never move the watermark
    s.record_result("tg", ok=True, now=T0, validators={"last_message_id": 200})
    s.record_result("tg", ok=True, now=T0, validators={"last_message_id": 150})
    s.record_result("tg", ok=False, now=T0, error="x", validators={"last_message_id": 999})
    assert s.get("tg").last_message_id == 200
    assert s.items_since("tg", T0 - timedelta(hours=1)) == 2


def test_health_reports_items_in_last_24h(tmp_path: Path) -> None:
    s = CrawlStateStore(tmp_path / "state.db")
    now = datetime.now(UTC)
    s.mark_seen("a", [("old", "1")], now - timedelta(days=2))
    s.mark_seen("a", [("new", "2")], now - timedelta(hours=1))
    s.record_result("a", ok=False, now=now, error="dns error")
    h = s.health("a", now)
    assert h["items_24h"] == 1 and h["consecutive_failures"] == 1 and h["last_error"] == "dns error"
    assert h["last_success"] is None


def test_replay_rewrites_every_link_to_loopback() -> None:
    """The replay must never send a crawler to a real host, whatever the feed's link style."""
    import re
    import urllib.request

    from narrawatch.demo.replay import ReplayServer

    rss = b"<rss><channel><item><link>https://www.example.org/a/1</link></item></channel></rss>"
    jsonfeed = (
        b'{"version": "https:\\/\\/jsonfeed.org\\/version\\/1", '
        b'"items": [{"url": "https:\\/\\/www.npr.org\\/2020\\/x", "id": "http://npr.org/y/"}]}'
    )
    with ReplayServer((), {"a.rss": rss, "b.json": jsonfeed}) as srv:
        bodies = [urllib.request.urlopen(f"{srv.base_url}/feeds/{n}").read() for n in ("a.rss", "b.json")]
    for body in bodies:
        hosts = re.findall(rb"https?:(?:\\?/){2}([^/\\\"<]+)", body)
        links = [h for h in hosts if h != b"jsonfeed.org"]  # JSON Feed's version is a name, not a link
        assert links and all(h.startswith(b"127.0.0.1:") for h in links), body
    assert b"https:\\/\\/jsonfeed.org\\/version\\/1" in bodies[1]
    assert b"\\/articles\\/npr.org\\/2020\\/x" in bodies[1]
