"""``kind: vk`` through the real crawl subprocess, against saved VK API answers on loopback.

Data (tests/data/platforms/vk, origins in SOURCES.tsv): real ``wall.get`` answers (the
Фудшеринг community's 10 posts of June 2020 incl. a pinned one; 2014 reposts with a photo and a
poll; a 2020 podcast post with groups) and real VK error answers (codes 5 and 15). Paging is
played by serving the real Фудшеринг items in ``offset``/``count`` slices of the real answer;
error 6 (no saved answer exists) is written in the documented error format.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.settings import load_config
from narrawatch.scheduler import Service
from tests.support.platforms import cli_sources, ingest_pipeline
from tests.support.server import LoopbackServer, RecordedRequest, Reply, crawl_events, events_of, write_crawl_config

TOKEN = "vk1.a.loopbacktesttoken0123456789"
FOOD = -109125816


def _json(test_data: Path, name: str) -> Any:
    return json.loads((test_data / "platforms" / "vk" / name).read_text(encoding="utf-8"))


def _food_items(test_data: Path) -> tuple[int, list[dict[str, Any]]]:
    # The saved file is the "response" object itself (its JS wrapper was stripped upstream).
    data = _json(test_data, "hackit_foodsharing_wall_get_2020-06.json")
    return int(data["count"]), list(data["items"])


def _serve_wall(server: LoopbackServer, count: int, items: list[dict[str, Any]]) -> None:
    def handler(req: RecordedRequest, _n: int) -> Reply:
        form = req.form
        offset, size = int(form["offset"][0]), int(form["count"][0])
        body = {"response": {"count": count, "items": items[offset : offset + size]}}
        return Reply(200, json.dumps(body, ensure_ascii=False).encode(), content_type="application/json; charset=utf-8")

    server.route("/method/wall.get", handler)


def _source(server: LoopbackServer, **extra: Any) -> dict[str, Any]:
    return {"id": "food", "kind": "vk", "owner_id": FOOD, "base_url": server.url("/method"), **extra}


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("NARRAWATCH_VK_TOKEN", TOKEN)
    return TOKEN


def test_wall_paged_until_seen_posts_exactly_once(
    test_data: Path, tmp_path: Path, token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    count, items = _food_items(test_data)
    pinned, newest_first = items[0], items[1:]
    assert pinned["is_pinned"] == 1 and pinned["id"] < min(i["id"] for i in newest_first)
    with LoopbackServer() as server:
        # Run 1: the wall as it was before its 4 newest posts: pinned + 5 older posts.
        _serve_wall(server, count, [pinned, *newest_first[4:]])
        cfg = write_crawl_config(tmp_path / "cfg", [_source(server, page_size=4)])
        p = ingest_pipeline(load_config(cfg))
        first: list[dict[str, Any]] = []
        (report,) = p.ingest(["food"], on_event=first.append)
        assert report.ok and report.new == 6
        calls = server.requests_for("/method/wall.get")
        assert [c.form["offset"] for c in calls] == [["0"], ["4"], ["6"]]  # the third page is empty: the end
        form = calls[0].form
        assert form["access_token"] == [token] and form["owner_id"] == [str(FOOD)] and form["v"] == ["5.199"]
        assert form["extended"] == ["1"] and all(c.method == "POST" and "?" not in c.path for c in calls)
        assert token not in json.dumps(first)  # neither in URLs nor anywhere else in the events
        states = events_of(first, "state")
        assert [e["state"] for e in states] == [{"last_message_id": newest_first[4]["id"]}]

        docs = {e["key"]: e["document"] for e in events_of(first, "document")}
        ad = docs[f"{FOOD}_{pinned['id']}"]
        assert ad["kind"] == "vk" and ad["extraction"] == "api" and ad["url"] == f"https://vk.com/wall{FOOD}_519471"
        assert ad["outlet"] == "vk.com/club109125816" and ad["language"] == "ru"
        assert ad["text"].startswith("😊Ура! Конкурс для Москвы!") and ad["title"] == "😊Ура! Конкурс для Москвы!"
        assert ad["views"] == 8887 and ad["extra"]["reach"] == {
            "views": 8887,
            "likes": 146,
            "reposts": 92,
            "comments": 104,
        }
        assert ad["extra"]["is_pinned"] is True and "photo" in ad["media"]
        assert ad["published"].startswith("2020-06-18T")

        # Run 2: the 4 new posts have arrived. The pinned post is seen but does not stop the walk;
        # the first seen post in date order does.
        _serve_wall(server, count, items)
        second: list[dict[str, Any]] = []
        (again,) = p.ingest(["food"], on_event=second.append)
        new_keys = sorted(e["key"] for e in events_of(second, "document"))
        assert new_keys == sorted(f"{FOOD}_{i['id']}" for i in newest_first[:4]) and again.new == 4
        assert [c.form["offset"] for c in server.requests_for("/method/wall.get")[3:]] == [["0"], ["4"]]
        assert [e["state"] for e in events_of(second, "state")] == [{"last_message_id": newest_first[0]["id"]}]

        # Run 3: nothing new; one page, nothing indexed twice.
        third: list[dict[str, Any]] = []
        (last,) = p.ingest(["food"], on_event=third.append)
        assert last.ok and last.new == 0 and not events_of(third, "document")
        assert len(server.requests_for("/method/wall.get")) == 6
        assert cli_sources(cfg, capsys)["food"]["items_24h"] == 10


def test_reposts_are_spread_edges_and_polls_are_text(test_data: Path, tmp_path: Path, token: str) -> None:
    with LoopbackServer() as server:
        answers = {
            "10": _json(test_data, "vknet_wall_get_extended_2014.json"),
            "1563369": _json(test_data, "vknet_wall_get_geo_poll_2014.json"),
            "cityhaze": _json(test_data, "vknet_wall_get_podcast_2020.json"),
        }

        def handler(req: RecordedRequest, _n: int) -> Reply:
            wall = (req.form.get("owner_id") or req.form.get("domain") or [""])[0]
            offset = int(req.form["offset"][0])
            answer = answers[wall] if offset == 0 else {"response": {"count": 0, "items": []}}
            return Reply(200, json.dumps(answer, ensure_ascii=False).encode(), content_type="application/json")

        server.route("/method/wall.get", handler)
        base = server.url("/method")
        sources = [
            {"id": "ivan", "kind": "vk", "owner_id": 10, "base_url": base},
            {"id": "poll", "kind": "vk", "owner_id": 1563369, "base_url": base},
            {"id": "haze", "kind": "vk", "domain": "cityhaze", "base_url": base},
        ]
        cfg = write_crawl_config(tmp_path / "cfg", sources)
        events = crawl_events(cfg, ["ivan", "poll", "haze"])
        assert all(e["ok"] for e in events_of(events, "source_done"))

        (repost,) = [e["document"] for e in events_of(events, "document", "ivan")]
        # The same two fields a Telegram forward fills, which the trace turns into a forward edge.
        assert repost["forwarded_from"] == "vk.com/evil_incorparate"
        assert repost["extra"]["forwarded_from_url"] == "https://vk.com/wall-29246653_93530"
        assert repost["media"] == ["photo"] and repost["author"] == ""
        assert repost["extra"]["reach"]["likes"] == 1 and repost["outlet"] == "vk.com/id10"

        (poll,) = [e["document"] for e in events_of(events, "document", "poll")]
        assert poll["forwarded_from"] == "vk.com/club42895313"
        assert "Мы оформляем храм" in poll["text"] and "А вы как готовитесь к Пасхе?" in poll["text"]
        assert poll["media"] == ["poll"]

        (podcast,) = [e["document"] for e in events_of(events, "document", "haze")]
        assert podcast["url"] == "https://vk.com/wall-74962618_111721" and podcast["outlet"] == "vk.com/cityhaze"
        assert podcast["media"] == ["photo", "audio"] and podcast["views"] == 6063
        assert "cityhaze" in {r.form.get("domain", [""])[0] for r in server.requests_for("/method/wall.get")}


def test_no_token_means_disabled_not_an_error_loop(
    test_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("NARRAWATCH_VK_TOKEN", raising=False)
    from narrawatch.cli import main

    with LoopbackServer() as server:
        _serve_wall(server, *_food_items(test_data))
        cfg = write_crawl_config(tmp_path / "cfg", [_source(server)])

        capsys.readouterr()
        assert main(["--config", str(cfg), "config", "check"]) == 0
        out = capsys.readouterr().out
        assert "sources.food: vk needs NARRAWATCH_VK_TOKEN in the environment; disabled until set" in out
        assert "1 disabled" in out

        p = ingest_pipeline(load_config(cfg))
        assert p.ingest() == []  # a pass over every source leaves it out
        service = Service(p.config, p)
        service.schedule_sources()
        # the service does not schedule it: no lease row any worker could claim, nothing claimed
        assert [lease.source_id for lease in p.state.leases()] == []
        assert service.claim_tick() == []
        assert not [j.id for j in service.scheduler.get_jobs() if j.id.startswith("crawl:")]
        health = cli_sources(cfg, capsys)["food"]
        assert health["status"] == "disabled" and "NARRAWATCH_VK_TOKEN" in health["notes"]
        assert health["consecutive_failures"] == 0

        # Asked for by name, the crawler says why and sends nothing.
        events = crawl_events(cfg, ["food"])
        assert [e["reason"] for e in events_of(events, "error")] == ["disabled"]
        assert not server.requests

        # Set the variable: the same config runs (read at call time, no reload).
        monkeypatch.setenv("NARRAWATCH_VK_TOKEN", TOKEN)
        (report,) = p.ingest()
        assert report.ok and report.new == 10
        assert main(["--config", str(cfg), "config", "check"]) == 0
        assert "disabled until set" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("name", "reason", "words"),
    [
        ("vknet_error_5.json", "auth_failed", "User authorization failed"),
        ("vknet_error_15.json", "access_denied", "private community"),
    ],
)
def test_api_errors_are_clear_source_errors(
    test_data: Path,
    tmp_path: Path,
    token: str,
    name: str,
    reason: str,
    words: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The crawl child logs everything (Scrapy included) to stderr, which run_crawl relays here.
    monkeypatch.setenv("NARRAWATCH_SCRAPY_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("NARRAWATCH_CRAWL_LOG_LEVEL", "DEBUG")
    with LoopbackServer() as server:
        server.add(
            "/method/wall.get", (test_data / "platforms" / "vk" / name).read_bytes(), content_type="application/json"
        )
        cfg = write_crawl_config(tmp_path / "cfg", [_source(server)])
        events = crawl_events(cfg, ["food"])
        (error,) = events_of(events, "error")
        assert error["reason"] == reason and words in error["message"]
        assert "request_params" not in error["message"] and token not in json.dumps(events)
        assert not events_of(events, "state") and not events_of(events, "source_done")[0]["ok"]
        assert len(server.requests_for("/method/wall.get")) == 1  # not retried
        logged = capsys.readouterr().err
        assert "wall.get" in logged and token not in logged


def test_too_many_requests_is_retried_then_reported(test_data: Path, tmp_path: Path, token: str) -> None:
    count, items = _food_items(test_data)
    too_many = json.dumps(
        {"error": {"error_code": 6, "error_msg": "Too many requests per second", "request_params": []}}
    )
    page = json.dumps({"response": {"count": count, "items": items}}, ensure_ascii=False)
    with LoopbackServer() as server:
        server.route(
            "/method/wall.get",
            lambda req, n: (
                Reply(200, (too_many if n <= 2 else page).encode(), content_type="application/json")
                if req.form["offset"] == ["0"]
                else Reply(200, b'{"response": {"count": 0, "items": []}}', content_type="application/json")
            ),
        )
        server.add("/method2/wall.get", too_many, content_type="application/json")
        sources = [_source(server), _source(server, id="busy", base_url=server.url("/method2"))]
        cfg = write_crawl_config(tmp_path / "cfg", sources)
        events = crawl_events(cfg, ["food", "busy"])
        # Twice "too many requests", then the page: 10 posts, no error (retry_times is 2).
        assert len(events_of(events, "document", "food")) == 10 and not events_of(events, "error", "food")
        # Always "too many requests": three attempts, then a rate_limited source error; no watermark.
        (error,) = events_of(events, "error", "busy")
        assert error["reason"] == "rate_limited" and "retry later" in error["message"]
        assert server.hits("/method2/wall.get") == 3 and not events_of(events, "state", "busy")


def test_content_urls_are_never_fetched(test_data: Path, tmp_path: Path, token: str) -> None:
    """Link attachments and URLs in posts (here pointed at an internal host) are data, never requests."""
    count, items = _food_items(test_data)
    with LoopbackServer() as server, LoopbackServer(host="127.0.0.2") as internal:
        tampered = json.loads(json.dumps(items))
        tampered[1]["text"] += f"\n{internal.url('/admin')}"
        tampered[1].setdefault("attachments", []).append({"type": "link", "link": {"url": internal.url("/link")}})
        _serve_wall(server, count, tampered)
        cfg = write_crawl_config(tmp_path / "cfg", [_source(server)])
        events = crawl_events(cfg, ["food"])
        doc = next(e["document"] for e in events_of(events, "document") if e["key"] == f"{FOOD}_{items[1]['id']}")
        assert internal.url("/link") in doc["links"] and internal.url("/admin") in doc["links"]
        assert not internal.requests
        assert {r.route for r in server.requests} <= {"/method/wall.get", "/robots.txt"}
