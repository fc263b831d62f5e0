"""Telegram holes, forged ids and id gaps, through the real crawl subprocess and the ingest pass.

A loopback server plays a t.me/s channel (tests/support/server.py, ``?before=`` paging) built
from 70 real BBC Russian posts (tests/data/site/telegram_bbcrussian_posts.jsonl, ids 73501-73590).
Everything after the crawl child is real too: the hashing embedder, the embedded index, the
crawl-state store, and the health that ``narrawatch sources`` and the API print.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from core.documents import document_id_for_telegram
from core.settings import Config, load_config
from crawlers.state import CrawlStateStore
from index.embed import HashingEmbedder
from index.local import EmbeddedIndex
from narrawatch.pipeline import Pipeline
from tests.support.server import (
    LoopbackServer,
    Reply,
    crawl_events,
    events_of,
    load_posts,
    serve_telegram_channel,
    write_crawl_config,
)
from tests.support.tme import build_channel_page

CHANNEL = "bbcrussian"


def _posts(test_data: Path) -> list[dict[str, Any]]:
    posts = load_posts(test_data / "site" / "telegram_bbcrussian_posts.jsonl")
    assert len(posts) == 70
    return posts


def _ids(posts: list[dict[str, Any]]) -> list[int]:
    return [int(p["message_id"]) for p in posts]


def _pipeline(config: Config) -> Pipeline:
    emb = HashingEmbedder()
    return Pipeline(
        config,
        embedder=emb,
        index=EmbeddedIndex(config.index_path, emb.space),
        state=CrawlStateStore(config.data_dir / "state.db"),
    )


def _indexed(p: Pipeline, ids: list[int]) -> list[int]:
    return [i for i in ids if p.index.get(document_id_for_telegram(CHANNEL, i)) is not None]


def _cli_health(cfg: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    from narrawatch.cli import main

    capsys.readouterr()
    assert main(["--config", str(cfg), "sources", "--json"]) == 0
    return {h["id"]: h for h in json.loads(capsys.readouterr().out)}["tg"]


@pytest.mark.timeout(240)
def test_a_channel_that_outposts_max_pages_is_backfilled_on_the_next_run(
    test_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    posts = _posts(test_data)
    with LoopbackServer() as server:
        source = {"id": "tg", "kind": "telegram", "channel": CHANNEL, "base_url": server.base, "max_pages": 2}
        cfg = write_crawl_config(tmp_path / "cfg", [source])
        p = _pipeline(load_config(cfg))

        # Run 1: the channel has 20 posts.
        serve_telegram_channel(server, CHANNEL, posts[:20])
        (first,) = p.ingest(["tg"])
        assert first.ok and first.new == 20
        watermark = int(posts[19]["message_id"])
        assert p.state.get("tg").last_message_id == watermark

        # The channel posts 50 more: more than max_pages x 20 = 40 between two runs.
        serve_telegram_channel(server, CHANNEL, posts)
        (second,) = p.ingest(["tg"])
        assert second.ok and second.new == 40  # posts[30:70]; posts[20:30] are the hole
        assert p.state.get("tg").last_message_id == int(posts[-1]["message_id"])
        assert _indexed(p, _ids(posts[20:30])) == []
        cursor = int(posts[30]["message_id"])
        health = _cli_health(cfg, capsys)
        assert health["backfill_ranges"] == [[watermark, cursor]]
        assert health["backfill_pending"] == cursor - watermark - 1
        assert health["warning_reasons"] == {"backfill_pending": 1}
        assert "backfill: " in health["notes"] and "ids in 1 ranges left" in health["notes"]

        # A pass whose first page fails finishes nothing: watermark and backfill stay as they were.
        server.route(f"/s/{CHANNEL}", Reply(500, b"server error", content_type="text/plain"))
        (failed,) = p.ingest(["tg"])
        assert not failed.ok
        assert p.state.get("tg").last_message_id == int(posts[-1]["message_id"])
        assert p.state.notes("tg")["backfill"] == [(watermark, cursor)]

        # Run 3: nothing new at the head; the backfill walk reads the hole and closes it.
        serve_telegram_channel(server, CHANNEL, posts)
        seen_before = len(server.requests_for(f"/s/{CHANNEL}"))
        (third,) = p.ingest(["tg"])
        assert third.ok and third.new == 10
        assert _indexed(p, _ids(posts)) == _ids(posts)
        paths = [r.path for r in server.requests_for(f"/s/{CHANNEL}")[seen_before:]]
        assert sorted(paths) == sorted([f"/s/{CHANNEL}", f"/s/{CHANNEL}?before={cursor}"])
        health = _cli_health(cfg, capsys)
        assert health["backfill_ranges"] == [] and health["backfill_pending"] == 0
        assert health["last_pass_warnings"] == 0 and health["notes"] == ""
        assert p.state.get("tg").last_message_id == int(posts[-1]["message_id"])


@pytest.mark.timeout(120)
def test_a_hole_wider_than_one_run_fills_over_several_runs(test_data: Path, tmp_path: Path) -> None:
    posts = _posts(test_data)
    with LoopbackServer() as server:
        sources = [{"id": "tg", "kind": "telegram", "channel": CHANNEL, "base_url": server.base, "max_pages": 1}]
        cfg = write_crawl_config(tmp_path / "cfg", sources)
        serve_telegram_channel(server, CHANNEL, posts)
        # An earlier run read posts[60:70] and left posts[10:60] (50 posts) as a hole; one page per run.
        newest, floor, hole_top = (int(posts[i]["message_id"]) for i in (69, 9, 60))
        got: set[int] = set(_ids(posts[60:70]))
        pending = [[floor, hole_top]]
        runs = 0
        while pending and runs < 5:
            runs += 1
            job = {"last_message_id": newest, "backfill": pending, "seen": [str(i) for i in got]}
            events = crawl_events(cfg, ["tg"], {"tg": job})
            got |= {int(e["key"]) for e in events_of(events, "document", "tg")}
            (st,) = [e["state"] for e in events_of(events, "state", "tg")]
            pending = st["backfill"]
            assert st["last_message_id"] == newest
            if pending:  # each run moves the range's upper end down by one page
                assert pending[0][0] == floor and pending[0][1] < hole_top
                hole_top = pending[0][1]
        assert not pending and runs == 3  # 50 posts: 20 + 20 + 10 (the last page reaches the floor)
        assert set(_ids(posts[10:70])) <= got
        assert not got & set(_ids(posts[:10]))


def _forged_page(posts: list[dict[str, Any]], forged: str) -> str:
    html = build_channel_page(CHANNEL, [dict(p) for p in posts], int(posts[0]["message_id"]))
    # A real post block, re-labelled: same markup t.me uses, only the data-post differs.
    last = int(posts[-1]["message_id"])
    block_start = html.rindex('<div class="tgme_widget_message_wrap')
    block = html[block_start : html.index("</section>", block_start)]
    copy = block.replace(f'data-post="{CHANNEL}/{last}"', f'data-post="{forged}"')
    assert copy != block
    return html[:block_start] + block + copy + html[block_start + len(block) :]


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("forged", "reason"),
    [(f"{CHANNEL}/999999999", "implausible_id"), ("otherchannel/123", "foreign_channel")],
    ids=["huge-id", "other-channel"],
)
def test_forged_data_post_does_not_move_the_watermark_and_is_counted(
    test_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], forged: str, reason: str
) -> None:
    posts = _posts(test_data)[:20]
    with LoopbackServer() as server:
        server.add(f"/s/{CHANNEL}", _forged_page(posts, forged))
        source = {"id": "tg", "kind": "telegram", "channel": CHANNEL, "base_url": server.base, "max_pages": 1}
        cfg = write_crawl_config(tmp_path / "cfg", [source])
        p = _pipeline(load_config(cfg))
        (report,) = p.ingest(["tg"])
        assert report.ok and report.new == 20
        assert p.state.get("tg").last_message_id == int(posts[-1]["message_id"])
        name, _, number = forged.partition("/")
        assert p.index.get(document_id_for_telegram(name, int(number))) is None
        assert p.index.get(document_id_for_telegram(CHANNEL, int(number))) is None
        health = _cli_health(cfg, capsys)
        assert health["warning_reasons"] == {reason: 1}
        assert forged in health["last_warnings"][0]
        assert f"last pass: 1 warnings ({reason} 1)" in health["notes"]


@pytest.mark.timeout(120)
def test_a_page_of_another_channel_only_fails_the_source(test_data: Path, tmp_path: Path) -> None:
    posts = _posts(test_data)[:10]
    with LoopbackServer() as server:
        server.add(f"/s/{CHANNEL}", build_channel_page("otherchannel", [dict(p) for p in posts], None))
        source = {"id": "tg", "kind": "telegram", "channel": CHANNEL, "base_url": server.base}
        cfg = write_crawl_config(tmp_path / "cfg", [source])
        events = crawl_events(cfg, ["tg"], {"tg": {"last_message_id": 5}})
        assert [e["ok"] for e in events_of(events, "source_done")] == [False]
        (error,) = events_of(events, "error")
        assert "page shows posts of otherchannel, not of bbcrussian" in error["message"]
        assert not events_of(events, "document") and not events_of(events, "state")


@pytest.mark.timeout(120)
def test_long_runs_of_absent_ids_are_reported_as_id_gaps(
    test_data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    posts = _posts(test_data)[:30]
    # The preview skips 200 ids after the 10th post: more than albums and deletions explain.
    shifted = [dict(p, message_id=int(p["message_id"]) + (200 if i >= 10 else 0)) for i, p in enumerate(posts)]
    with LoopbackServer() as server:
        serve_telegram_channel(server, CHANNEL, shifted)
        source = {"id": "tg", "kind": "telegram", "channel": CHANNEL, "base_url": server.base, "max_pages": 3}
        cfg = write_crawl_config(tmp_path / "cfg", [source])
        p = _pipeline(load_config(cfg))
        with caplog.at_level(logging.WARNING, logger="narrawatch.pipeline"):
            (report,) = p.ingest(["tg"])
        assert report.ok and report.new == 30
        first, last = int(shifted[9]["message_id"]) + 1, int(shifted[10]["message_id"]) - 1
        health = _cli_health(cfg, capsys)
        assert health["id_gaps"] == [[first, last]]
        assert health["warning_reasons"] == {"id_gap": 1}
        assert f"id gaps: 1 (latest {first}-{last})" in health["notes"]
        lines = [r.getMessage() for r in caplog.records if r.name == "narrawatch.pipeline"]
        assert [m for m in lines if m.startswith("source tg: 1 warnings this pass (id_gap=1)")]
        # The gap stays visible after a quiet pass (nothing new, no warnings).
        (again,) = p.ingest(["tg"])
        assert again.ok and again.new == 0
        health = _cli_health(cfg, capsys)
        assert health["id_gaps"] == [[first, last]] and health["last_pass_warnings"] == 0


@pytest.mark.timeout(120)
def test_past_the_range_cap_the_oldest_hole_is_given_up_and_reported(test_data: Path, tmp_path: Path) -> None:
    from crawlers.scrapy_project.spiders.telegram import MAX_PENDING_RANGES

    posts = _posts(test_data)
    with LoopbackServer() as server:
        serve_telegram_channel(server, CHANNEL, posts)
        source = {"id": "tg", "kind": "telegram", "channel": CHANNEL, "base_url": server.base, "max_pages": 1}
        cfg = write_crawl_config(tmp_path / "cfg", [source])
        old = [[10 * k, 10 * k + 5] for k in range(1, MAX_PENDING_RANGES + 2)]  # one more than the cap
        floor = int(posts[9]["message_id"])
        events = crawl_events(cfg, ["tg"], {"tg": {"last_message_id": floor, "backfill": old, "seen": []}})
        (st,) = [e["state"] for e in events_of(events, "state", "tg")]
        # The newest range was walked (nothing there), the head walk left a new hole on top:
        assert st["backfill"][0] == [floor, int(posts[50]["message_id"])]
        assert len(st["backfill"]) == MAX_PENDING_RANGES
        assert [10, 15] not in st["backfill"] and {"first": 11, "last": 14, "reason": "not_walked"} in st["id_gaps"]
        reasons = sorted(e["reason"] for e in events_of(events, "warning", "tg"))
        assert reasons == ["backfill_dropped", "backfill_pending"]
