"""Telegram crawls through the real crawl subprocess against t.me-like preview pages on loopback.

Pages are built (tests/support/tme.py) from 70 real BBC Russian posts (tests/data/site).
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from core.documents import document_id_for_telegram
from tests.support.server import (
    LoopbackServer,
    crawl_events,
    events_of,
    load_posts,
    serve_telegram_channel,
    write_crawl_config,
)


def _posts(test_data: Path) -> list[dict[str, Any]]:
    posts = load_posts(test_data / "site" / "telegram_bbcrussian_posts.jsonl")
    assert len(posts) == 70
    for i, post in enumerate(posts):
        post["views"] = 100 + i * 7  # under 1000: t.me shows exact counts
    posts[-3]["forwarded_from"] = "Би-би-си Украина"
    posts[-3]["forwarded_from_url"] = "https://t.me/bbcukrainian/100"
    return posts


def _page_requests(server: LoopbackServer, channel: str) -> list[str]:
    return [r.path for r in server.requests_for(f"/s/{channel}")]


def test_paging_stops_at_max_pages_then_at_seen_posts(test_data: Path, tmp_path: Path) -> None:
    posts = _posts(test_data)
    older, newer = posts[:-5], posts[-5:]
    with LoopbackServer() as server:
        serve_telegram_channel(server, "bbcrussian", older)
        serve_telegram_channel(server, "bbcrussian_all", older)
        sources = [
            {"id": "bbc2", "kind": "telegram", "channel": "bbcrussian", "base_url": server.base, "max_pages": 2},
            {"id": "bbcall", "kind": "telegram", "channel": "bbcrussian_all", "base_url": server.base, "max_pages": 9},
        ]
        cfg = write_crawl_config(tmp_path / "cfg", sources)

        events = crawl_events(cfg, ["bbc2", "bbcall"])

        # max_pages=2: the 40 newest posts, each once, from exactly two page requests.
        docs = events_of(events, "document", "bbc2")
        ids = [int(e["key"]) for e in docs]
        assert sorted(ids) == sorted(int(p["message_id"]) for p in older[-40:])
        assert len(set(ids)) == len(ids)
        pages = _page_requests(server, "bbcrussian")
        assert len(pages) == 2 and pages[0] == "/s/bbcrussian" and pages[1].startswith("/s/bbcrussian?before=")
        # every post of the channel once, walking back until there were no older posts.
        all_ids = [int(e["key"]) for e in events_of(events, "document", "bbcall")]
        assert sorted(all_ids) == [int(p["message_id"]) for p in older]
        # 20 + 20 + 20 + 5 posts, then the parser's fallback cursor (the oldest id) gives an empty page.
        all_pages = _page_requests(server, "bbcrussian_all")
        assert len(all_pages) == 5 and all_pages[-1].endswith(f"?before={older[0]['message_id']}")

        newest = older[-1]
        doc = next(e["document"] for e in docs if e["key"] == str(newest["message_id"]))
        assert doc["id"] == document_id_for_telegram("bbcrussian", int(newest["message_id"]))
        assert doc["kind"] == "telegram" and doc["extraction"] == "telegram"
        assert doc["url"] == f"{server.base}/bbcrussian/{newest['message_id']}"
        assert doc["outlet"] == "t.me/bbcrussian"
        assert datetime.fromisoformat(doc["published"]) == datetime.fromisoformat(newest["date"])
        words = re.findall(r"[А-Яа-яЁё]{6,}", newest["text"])
        assert doc["language"] == "ru" and len(words) > 5 and all(w in doc["text"] for w in words)
        assert doc["views"] == newest["views"]
        assert {e["state"]["last_message_id"] for e in events_of(events, "state", "bbc2")} == {
            int(newest["message_id"])
        }
        assert all(e["ok"] for e in events_of(events, "source_done"))

        # New posts arrive; the next run reads only them and stops at the first page.
        serve_telegram_channel(server, "bbcrussian", posts)
        state = {"bbc2": {"last_message_id": int(newest["message_id"]), "seen": [str(i) for i in ids]}}
        before = len(_page_requests(server, "bbcrussian"))
        again = crawl_events(cfg, ["bbc2"], state)
        new_docs = {int(e["key"]): e["document"] for e in events_of(again, "document")}
        assert sorted(new_docs) == [int(p["message_id"]) for p in newer]
        assert len(_page_requests(server, "bbcrussian")) == before + 1
        forwarded = new_docs[int(posts[-3]["message_id"])]
        assert forwarded["forwarded_from"] == "Би-би-си Украина"
        assert [e["state"] for e in events_of(again, "state")] == [
            {"last_message_id": int(posts[-1]["message_id"]), "backfill": [], "id_gaps": []}
        ]


def test_channel_page_failure_is_a_source_error(test_data: Path, tmp_path: Path) -> None:
    with LoopbackServer() as server:
        server.add("/s/gone_channel", "<html><body>nothing here</body></html>")
        serve_telegram_channel(server, "bbcrussian", _posts(test_data)[:10])
        sources = [
            {"id": "gone", "kind": "telegram", "channel": "gone_channel", "base_url": server.base},
            {"id": "ok", "kind": "telegram", "channel": "bbcrussian", "base_url": server.base},
        ]
        cfg = write_crawl_config(tmp_path / "cfg", sources)
        events = crawl_events(cfg, ["gone", "ok"])
        done = {e["source"]: e["ok"] for e in events_of(events, "source_done")}
        assert done == {"gone": False, "ok": True}
        assert [e["reason"] for e in events_of(events, "error", "gone")] == ["parse_error"]
        assert len(events_of(events, "document", "ok")) == 10
