"""crawlers.telegram.screen_page: which data-post ids a source believes (pages built by
tests/support/tme.py from real BBC Russian posts, tests/data/site; real tchan blocks, tests/data/telegram)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crawlers.telegram import MAX_ID_DISTANCE, parse_channel_page, screen_page
from tests.support.server import load_posts
from tests.support.tme import build_channel_page


def _posts(test_data: Path, n: int = 20) -> list[dict[str, Any]]:
    return load_posts(test_data / "site" / "telegram_bbcrussian_posts.jsonl")[:n]


def _page(posts: list[dict[str, Any]], channel: str = "bbcrussian") -> str:
    return build_channel_page(channel, [dict(p) for p in posts], None)


def test_a_genuine_page_is_believed_whole(test_data: Path) -> None:
    posts = _posts(test_data)
    page = parse_channel_page(_page(posts), "bbcrussian")
    screened = screen_page(page, "BBCRussian", watermark=int(posts[5]["message_id"]))  # usernames: any case
    assert screened.rejected == () and screened.posts == page.posts
    assert screened.ids == tuple(sorted(int(p["message_id"]) for p in posts))


def test_huge_and_foreign_ids_are_rejected(test_data: Path) -> None:
    posts = _posts(test_data)
    forged = [dict(posts[-1], message_id=999_999_999), dict(posts[-2], message_id=123)]
    html = _page(posts + forged).replace('data-post="bbcrussian/123"', 'data-post="otherchannel/123"')
    page = parse_channel_page(html, "bbcrussian")
    assert ("otherchannel", 123) in page.message_ids and ("bbcrussian", 999_999_999) in page.message_ids
    screened = screen_page(page, "bbcrussian")
    assert {(r.channel, r.message_id, r.reason) for r in screened.rejected} == {
        ("bbcrussian", 999_999_999, "implausible_id"),
        ("otherchannel", 123, "foreign_channel"),
    }
    assert max(screened.ids) == int(posts[-1]["message_id"])
    assert all(p.channel == "bbcrussian" and p.message_id < 999_999_999 for p in screened.posts)


def test_the_watermark_anchors_a_page_with_one_real_post(test_data: Path) -> None:
    (post,) = _posts(test_data, 1)
    real = int(post["message_id"])
    page = parse_channel_page(_page([post, dict(post, message_id=real + 10 * MAX_ID_DISTANCE)]), "bbcrussian")
    assert [r.message_id for r in screen_page(page, "bbcrussian", watermark=real - 1).rejected] == [
        real + 10 * MAX_ID_DISTANCE
    ]


def test_a_long_pause_is_not_a_forgery(test_data: Path) -> None:
    # The channel posted far more than the limit since the last run: every id on the page is far
    # from the watermark, but close to each other, so all are believed.
    posts = _posts(test_data)
    page = parse_channel_page(_page(posts), "bbcrussian")
    far = int(posts[0]["message_id"]) - 50 * MAX_ID_DISTANCE
    assert screen_page(page, "bbcrussian", watermark=far).rejected == ()


def test_service_messages_count_as_ids(test_data: Path) -> None:
    html = (test_data / "telegram" / "cases" / "parse_service_message_channel_created.html").read_bytes()
    page = parse_channel_page(html, "tchantest")
    assert page.posts == () and page.message_ids == (("tchantest", 1),)
    assert screen_page(page, "tchantest").ids == (1,)
