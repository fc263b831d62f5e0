"""The re-check schedule (decay with age, its state table) and the per-kind deletion verdicts."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.settings import RecheckSettings
from crawlers.recheck import DEFAULT_AFTER, RecheckStore, classify_page, classify_telegram, due_at, is_front_page
from crawlers.telegram import parse_channel_page
from tests.support.server import load_posts
from tests.support.tme import build_channel_page

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
H = timedelta(hours=1)


def test_checks_thin_out_with_age_and_stop_after_the_last() -> None:
    dues = [due_at(T0, n) for n in range(5)]
    assert dues == [T0 + H, T0 + 6 * H, T0 + 24 * H, T0 + timedelta(days=7), None]
    gaps = [b - a for a, b in itertools.pairwise(dues[:4]) if a and b]
    assert gaps == sorted(gaps) and len(set(gaps)) == 3  # each wait longer than the one before
    assert due_at(T0, 0, (timedelta(minutes=5),)) == T0 + timedelta(minutes=5)
    with pytest.raises(ValueError):
        due_at(T0, -1)


def test_settings_defaults_and_validation() -> None:
    assert RecheckSettings().after == DEFAULT_AFTER
    assert RecheckSettings.model_validate({"after": ["30m", "2h"]}).after == (timedelta(minutes=30), 2 * H)
    for bad in (["6h", "1h"], ["1h", "1h"], [], ["0s"]):
        with pytest.raises(ValueError):
            RecheckSettings.model_validate({"after": bad})
    with pytest.raises(ValueError):
        RecheckSettings.model_validate({"every_other": 1})  # unknown keys rejected


def test_store_due_order_budget_and_outcomes(tmp_path: Path) -> None:
    store = RecheckStore(tmp_path / "recheck.sqlite")
    rows = [
        (f"d{i}", "s1" if i % 2 else "s2", f"https://x.test/{i}", "page", T0 + i * timedelta(minutes=10))
        for i in range(6)
    ]
    assert store.track(rows) == 6
    assert store.track(rows[:2]) == 0  # known ids keep their schedule
    assert store.due(T0 + 59 * timedelta(minutes=1), 10) == []
    due = store.due(T0 + 2 * H, 3)  # the budget: the longest overdue first
    assert [i.document_id for i in due] == ["d0", "d1", "d2"]
    assert [i.document_id for i in store.due(T0 + 2 * H, 10, sources=["s1"])] == ["d1", "d3", "d5"]
    assert store.due(T0 + 2 * H, 10, sources=[]) == []

    now = T0 + 2 * H
    present = store.record("d0", "present", now)
    assert present is not None and present.checks == 1 and present.next_due == T0 + 6 * H
    assert present.last_present == now
    unknown = store.record("d1", "unknown", now)  # undecided: not counted, retried after[0] later
    first_d1 = T0 + timedelta(minutes=10)
    assert unknown is not None and unknown.checks == 0 and unknown.next_due == now + H
    assert unknown.last_present == first_d1
    gone = store.record("d2", "gone", now)
    assert gone is not None and gone.next_due is None and gone.last_outcome == "gone"
    assert [i.document_id for i in store.due(now, 10)] == ["d3", "d4", "d5"]
    # The whole schedule of one item: four checks, then none.
    for n, at in enumerate((6 * H, 24 * H, timedelta(days=7)), start=2):
        item = store.record("d0", "present", T0 + at + timedelta(seconds=1))
        assert item is not None and item.checks == n
    assert item is not None and item.next_due is None
    assert store.record("nope", "present", now) is None
    assert len(store) == 6
    store.close()


@pytest.mark.parametrize(
    ("status", "final", "outcome"),
    [
        (200, "https://x.test/news/1", "present"),
        (404, "https://x.test/news/1", "gone"),
        (410, "https://x.test/news/1", "gone"),
        (200, "https://www.x.test/", "redirected"),
        (200, "https://x.test", "redirected"),
        (200, "https://x.test/news/1-new-slug", "present"),  # moved, not deleted: text is compared
        (200, "https://x.test/?page=2", "present"),
        (200, "https://other.test/", "present"),  # another site's front page: not this site's answer
        (403, "https://x.test/news/1", "unknown"),
        (451, "https://x.test/news/1", "unknown"),
        (503, "https://x.test/news/1", "unknown"),
    ],
)
def test_page_verdicts(status: int, final: str, outcome: str) -> None:
    assert classify_page(status, "https://x.test/news/1", final).outcome == outcome


def test_front_page_of_a_front_page_is_not_a_redirect() -> None:
    assert not is_front_page("https://x.test/", "https://x.test/")


def test_telegram_verdicts_on_real_posts(test_data: Path) -> None:
    posts = load_posts(test_data / "site" / "telegram_bbcrussian_posts.jsonl")[-20:]
    target = int(posts[10]["message_id"])
    # The page that ends at the post (?before=id+1): the post and the older ones.
    upto = [p for p in posts if int(p["message_id"]) <= target]
    page = parse_channel_page(build_channel_page("bbcrussian", upto, None), "bbcrussian")
    assert classify_telegram(page.message_ids, "bbcrussian", target).outcome == "present"
    without = [p for p in upto if int(p["message_id"]) != target]
    page = parse_channel_page(build_channel_page("bbcrussian", without, None), "bbcrussian")
    verdict = classify_telegram(page.message_ids, "BBCRussian", target)
    assert verdict.outcome == "missing" and str(target) in verdict.detail
    empty = parse_channel_page(build_channel_page("bbcrussian", [], None), "bbcrussian")
    assert classify_telegram(empty.message_ids, "bbcrussian", target).outcome == "unknown"
    # Another channel's posts (a renamed channel's page, a wrong base_url) say nothing about this one.
    other = parse_channel_page(build_channel_page("someoneelse", without, None), "bbcrussian")
    assert classify_telegram(other.message_ids, "bbcrussian", target).outcome == "unknown"
