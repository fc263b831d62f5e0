"""``kind: rutube`` through the real crawl subprocess, against a saved RuTube API answer on loopback.

Data (tests/data/platforms/rutube, origin in SOURCES.tsv): the real ``/api/play/options/<id>/``
answer for video 2ce725b3dc1a243f8456458975ecd872 ("Пальцы | Трейлер | PREMIER", Dec 2024).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.errors import ConfigError
from core.settings import load_config
from tests.support.platforms import cli_sources, ingest_pipeline
from tests.support.server import LoopbackServer, Reply, crawl_events, events_of, write_crawl_config

VIDEO = "2ce725b3dc1a243f8456458975ecd872"
MISSING = "0" * 32
AUTHOR = 5518074


def _options(test_data: Path) -> bytes:
    return (test_data / "platforms" / "rutube" / "rutube_play_options_2024-12.json").read_bytes()


def _source(server: LoopbackServer, **extra: Any) -> dict[str, Any]:
    return {
        "id": "premier",
        "kind": "rutube",
        "videos": [f"https://rutube.ru/video/{VIDEO}/", MISSING],
        "author_id": AUTHOR,
        "base_url": server.base,
        **extra,
    }


def test_video_metadata_ingested_exactly_once(
    test_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with LoopbackServer() as server:
        server.add(f"/api/play/options/{VIDEO}/", _options(test_data), content_type="application/json")
        cfg = write_crawl_config(tmp_path / "cfg", [_source(server)])
        p = ingest_pipeline(load_config(cfg))

        events: list[dict[str, Any]] = []
        (report,) = p.ingest(["premier"], on_event=events.append)
        assert report.ok and report.new == 1 and report.dropped["http_404"] == 1
        assert [e["reason"] for e in events_of(events, "warning")] == ["not_found"]
        (doc,) = [e["document"] for e in events_of(events, "document")]
        assert doc["kind"] == "rutube" and doc["extraction"] == "api"
        assert doc["title"] == "Пальцы | Трейлер | PREMIER" and doc["author"] == "PREMIER онлайн-кинотеатр"
        assert doc["text"].startswith("Смотрите криминальный сериал на PREMIER") and doc["language"] == "ru"
        assert doc["url"] == f"{server.base}/video/{VIDEO}/" and doc["outlet"] == f"rutube.ru/video/person/{AUTHOR}"
        extra = doc["extra"]
        assert extra["duration_seconds"] == pytest.approx(59.329) and extra["author_id"] == AUTHOR
        assert extra["category"] == "Сериалы" and extra["tags"] == ["Трейлеры"]
        assert extra["available"] is True and extra["published_known"] is False
        assert doc["published"] == doc["fetched"]  # the endpoint has no publication date

        second: list[dict[str, Any]] = []
        (again,) = p.ingest(["premier"], on_event=second.append)
        assert again.ok and again.new == 0 and not events_of(second, "document")
        assert server.hits(f"/api/play/options/{VIDEO}/") == 1  # a seen video is not asked for again
        assert cli_sources(cfg, capsys)["premier"]["status"] == "ok"


def test_other_authors_videos_and_server_failures(test_data: Path, tmp_path: Path) -> None:
    with LoopbackServer() as server:
        server.add(f"/api/play/options/{VIDEO}/", _options(test_data), content_type="application/json")
        server.fail_times(f"/api/play/options/{MISSING}/", 99, then=Reply(200, b"{}", content_type="application/json"))
        sources = [
            _source(server, id="other", author_id=1, videos=[VIDEO]),
            _source(server, id="down", videos=[MISSING]),
        ]
        cfg = write_crawl_config(tmp_path / "cfg", sources)
        events = crawl_events(cfg, ["other", "down"])
        assert not events_of(events, "document")
        assert [e["reason"] for e in events_of(events, "warning", "other")] == ["foreign_author"]
        done = {e["source"]: e["ok"] for e in events_of(events, "source_done")}
        assert done == {"other": True, "down": False}
        assert [e["reason"] for e in events_of(events, "error", "down")] == ["http_500"]
        assert server.hits(f"/api/play/options/{MISSING}/") == 3  # retried (retry_times 2)


def test_urls_in_the_answer_are_never_fetched(test_data: Path, tmp_path: Path) -> None:
    """The answer names the HLS balancer, thumbnails and ~80 tracking URLs: none is requested."""
    with LoopbackServer() as server, LoopbackServer(host="127.0.0.2") as internal:
        body = _options(test_data).replace(b"https://bl.rutube.ru", internal.base.encode())
        body = body.replace(b"https://rutube.ru/video/", internal.url("/video/").encode())
        assert internal.base.encode() in body and json.loads(body)["video_id"] == VIDEO
        server.add(f"/api/play/options/{VIDEO}/", body, content_type="application/json")
        cfg = write_crawl_config(tmp_path / "cfg", [_source(server, videos=[VIDEO])])
        events = crawl_events(cfg, ["premier"])
        (doc,) = [e["document"] for e in events_of(events, "document")]
        assert doc["url"] == f"{server.base}/video/{VIDEO}/"  # from the config, not from the answer
        assert not internal.requests
        assert {r.route for r in server.requests} <= {f"/api/play/options/{VIDEO}/", "/robots.txt"}


def test_video_ids_are_validated(tmp_path: Path) -> None:
    cfg = write_crawl_config(tmp_path / "cfg", [{"id": "rt", "kind": "rutube", "videos": ["https://example.com/x"]}])
    with pytest.raises(ConfigError) as exc:
        load_config(cfg)
    assert "not a RuTube video id or URL" in str(exc.value)
