"""Contract: crawl state, source health and source leases, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from crawlers.state import CrawlStateStore, SourceRelease
from tests.state.conftest import Target

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _two(target: Callable[[str], Target]) -> tuple[CrawlStateStore, CrawlStateStore]:
    """Two stores on one database: two workers of a deployment."""
    return CrawlStateStore(target("state.db")), CrawlStateStore(target("state.db"))


def test_validators_and_failures_round_trip(target: Callable[[str], Target]) -> None:
    with CrawlStateStore(target("state.db")) as s:
        assert s.get("feed").consecutive_failures == 0 and s.get("feed").etag is None
        s.record_result("feed", ok=True, now=T0, validators={"etag": 'W/"1"', "last_modified": "Sun"})
        s.record_result("feed", ok=False, now=T0 + timedelta(minutes=5), error="HTTP 503")
        s.record_result("feed", ok=False, now=T0 + timedelta(minutes=10), error="HTTP 503")
        st = s.get("feed")
        assert (st.etag, st.last_modified) == ('W/"1"', "Sun")
        assert st.consecutive_failures == 2 and st.last_error == "HTTP 503"
        assert st.last_success == T0 and st.last_attempt == T0 + timedelta(minutes=10)
        s.record_result("tg", ok=True, now=T0, validators={"last_message_id": 50})
        s.record_result("tg", ok=True, now=T0, validators={"last_message_id": 40})
        assert s.get("tg").last_message_id == 50  # the watermark never goes back


def test_seen_and_rejected(target: Callable[[str], Target]) -> None:
    with CrawlStateStore(target("state.db")) as s:
        s.mark_seen("feed", [("k1", "h1"), ("k2", "h2")], T0)
        s.mark_seen("feed", [("k1", "h1")], T0 + timedelta(minutes=1))
        assert sorted(s.seen_keys("feed")) == ["k1", "k2"]
        assert s.seen_keys("other") == []
        s.record_rejected("feed", [("r1", "too short"), ("r2", "not text")], T0)
        s.record_rejected("feed", [("r1", "too short")], T0)
        assert s.rejected_count("feed") == 2


def test_claims_are_disjoint_and_expire(target: Callable[[str], Target]) -> None:
    a, b = _two(target)
    with a, b:
        assert a.schedule({f"s{i}": T0 for i in range(6)}) == 6
        assert b.schedule({"s0": T0 + timedelta(days=1)}) == 0  # scheduled already: kept
        got_a = a.claim_due("A", T0, 60, limit=4)
        got_b = b.claim_due("B", T0, 60, limit=4)
        ids_a, ids_b = {x.source_id for x in got_a}, {x.source_id for x in got_b}
        assert len(ids_a) == 4 and len(ids_b) == 2 and not ids_a & ids_b
        assert a.claim_due("A", T0 + timedelta(seconds=30), 60, limit=10) == []  # all held
        # A dies: after its lease period B takes its sources.
        later = T0 + timedelta(seconds=61)
        taken = {x.source_id for x in b.claim_due("B", later, 60, limit=10)}
        assert ids_a <= taken
        assert not a.renew(sorted(ids_a)[0], "A", later, 60)  # no longer A's
        assert b.renew(sorted(ids_a)[0], "B", later, 60)
        lease = b.lease(sorted(ids_a)[0])
        assert lease is not None and lease.owner == "B" and lease.claims == 2


def test_a_worker_does_not_reclaim_what_it_is_still_crawling(target: Callable[[str], Target]) -> None:
    """A lease that ran out under a hung crawl goes to another worker, not back to the hung one."""
    a, b = _two(target)
    with a, b:
        a.schedule({"tg-mash": T0, "tg-rian": T0, "feed": T0})
        assert {x.source_id for x in a.claim_due("A", T0, 60, limit=2)} == {"feed", "tg-mash"}
        later = T0 + timedelta(seconds=61)  # both leases ran out; A still crawls tg-mash
        got = a.claim_due("A", later, 60, limit=5, exclude={"tg-mash"})
        assert sorted(x.source_id for x in got) == ["feed", "tg-rian"]
        assert [x.source_id for x in b.claim_due("B", later, 60, limit=5, exclude=())] == ["tg-mash"]


def test_release_records_result_and_next_due(target: Callable[[str], Target]) -> None:
    a, b = _two(target)
    with a, b:
        a.schedule({"feed": T0})
        assert [x.owner for x in a.claim_due("A", T0, 60, limit=5)] == ["A"]
        nxt = T0 + timedelta(minutes=15)
        ended = T0 + timedelta(seconds=20)
        # Not the owner: nothing is written.
        assert not b.release("feed", "B", SourceRelease(next_due=nxt, ok=False, at=ended, error="x"))
        assert b.get("feed").consecutive_failures == 0
        ok = SourceRelease(next_due=nxt, ok=True, at=ended, validators={"etag": "e2"})
        assert a.release("feed", "A", ok)
        st = b.get("feed")
        assert st.etag == "e2" and st.last_success == ended
        row = b.lease("feed")
        assert row is not None and row.owner is None and row.due_at == nxt
        assert b.claim_due("B", nxt - timedelta(seconds=1), 60, limit=5) == []
        assert [x.source_id for x in b.claim_due("B", nxt, 60, limit=5)] == ["feed"]
        a.unschedule(["feed"])
        assert a.lease("feed") is None and a.leases() == []
