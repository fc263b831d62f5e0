"""``kind: youtube`` through the real crawl subprocess, against saved YouTube answers on loopback.

Data (tests/data/platforms/youtube, origins in SOURCES.tsv): Kurzgesagt's real channel feed
(15 videos), the real 404 of a missing channel's feed, a real logged-out watch page of video
GJLlxj_dtq8 with its caption tracks, the real consent and reCAPTCHA pages, and a timedtext
answer from youtube-transcript-api's tests. The watch page belongs to another channel's video,
so the transcript test substitutes that video id for one feed entry's id (the only change).
"""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from core.errors import ConfigError
from core.settings import load_config
from crawlers.youtube import choose_track, detect_block, parse_transcript, parse_watch_page, transcript_path
from tests.support.platforms import cli_sources, ingest_pipeline
from tests.support.server import LoopbackServer, RecordedRequest, Reply, crawl_events, events_of, write_crawl_config

CHANNEL = "UCsXVk37bltHxD1rDPwtNM8Q"
WATCH_VIDEO = "GJLlxj_dtq8"
FEED_VIDEO = "D0WQK7cMJn8"  # the feed's second entry; replaced by WATCH_VIDEO where a transcript is tested
TRANSCRIPT = (
    "Hey, this is just a test this is not the original transcript just something shorter, I made up for testing"
)


def _data(test_data: Path, name: str) -> bytes:
    raw = (test_data / "platforms" / "youtube" / name).read_bytes()
    return gzip.decompress(raw) if name.endswith(".gz") else raw


def _feed(test_data: Path) -> bytes:
    return _data(test_data, "newpipe_feed_kurzgesagt_2025-07-12.xml")


def _source(server: LoopbackServer, **extra: Any) -> dict[str, Any]:
    return {"id": "kgs", "kind": "youtube", "channel_id": CHANNEL, "base_url": server.base, **extra}


def _serve_feed(server: LoopbackServer, body: bytes) -> None:
    def handler(req: RecordedRequest, _n: int) -> Reply:
        if req.query.get("channel_id") != [CHANNEL]:
            return Reply(404, b"wrong channel", content_type="text/plain")
        return Reply(200, body, content_type="text/xml; charset=UTF-8")

    server.route("/feeds/videos.xml", handler)


def test_feed_videos_ingested_exactly_once(test_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with LoopbackServer() as server:
        _serve_feed(server, _feed(test_data))
        cfg = write_crawl_config(tmp_path / "cfg", [_source(server, transcripts=False)])
        p = ingest_pipeline(load_config(cfg))

        events: list[dict[str, Any]] = []
        (report,) = p.ingest(["kgs"], on_event=events.append)
        assert report.ok and report.new == 15 and not report.errors
        docs = {e["key"]: e["document"] for e in events_of(events, "document")}
        assert len(docs) == 15
        doc = docs["zg40FHOAqC0"]
        assert doc["kind"] == "youtube" and doc["extraction"] == "feed_summary"
        assert doc["title"] == "Jupiter Made Earth Possible"
        assert doc["url"] == f"{server.base}/watch?v=zg40FHOAqC0"
        assert doc["published"].startswith("2026-01-22T15:01:42")
        assert doc["views"] == 1086938
        assert doc["author"] == "Kurzgesagt – In a Nutshell"
        assert doc["outlet"] == f"youtube.com/channel/{CHANNEL}"
        assert doc["text"].startswith("Jupiter once wandered deep into the inner Solar System.")
        assert "https://kgs.link/patreon" in doc["links"]
        assert doc["extra"]["channel_id"] == CHANNEL and doc["language"] == "en"
        assert not server.requests_for("/watch")  # transcripts: false

        # The second run: the same feed, nothing new, nothing indexed twice.
        second: list[dict[str, Any]] = []
        (again,) = p.ingest(["kgs"], on_event=second.append)
        assert again.ok and again.new == 0 and again.updated == 0 and not events_of(second, "document")
        assert events_of(second, "source_done")[0]["counts"]["dropped"] == {"seen": 15}
        assert server.hits("/feeds/videos.xml") == 2
        health = cli_sources(cfg, capsys)["kgs"]
        assert health["status"] == "ok" and health["last_error"] is None and health["items_24h"] == 15


def test_transcript_in_the_original_language_is_the_text(test_data: Path, tmp_path: Path) -> None:
    feed = _feed(test_data).replace(FEED_VIDEO.encode(), WATCH_VIDEO.encode())
    with LoopbackServer() as server:
        _serve_feed(server, feed)

        def watch(req: RecordedRequest, _n: int) -> Reply:
            if req.query.get("v") == [WATCH_VIDEO]:
                return Reply(200, _data(test_data, "yta_watch_GJLlxj_dtq8_2025-02.html.gz"))
            return Reply(404, b"<html>not here</html>")

        server.route("/watch", watch)
        server.add("/api/timedtext", _data(test_data, "yta_transcript.xml"), content_type="text/xml; charset=UTF-8")
        cfg = write_crawl_config(tmp_path / "cfg", [_source(server)])

        events = crawl_events(cfg, ["kgs"])
        docs = {e["key"]: e["document"] for e in events_of(events, "document")}
        assert len(docs) == 15 and events_of(events, "source_done")[0]["ok"]
        doc = docs[WATCH_VIDEO]
        assert doc["text"] == TRANSCRIPT and doc["extraction"] == "transcript"
        assert doc["extra"]["caption_track"] == {"language": "en", "kind": "manual", "name": "English"}
        assert doc["extra"]["description"].startswith("For years, we’ve been dreaming of a second channel.")
        # The page offers zh, cs, en, en (auto), de, hi, ja, ko, es: the human English track was read,
        # from the configured host although the page's baseUrl names www.youtube.com.
        (timedtext,) = server.requests_for("/api/timedtext")
        assert timedtext.query["v"] == [WATCH_VIDEO] and timedtext.query["lang"] == ["en"]
        assert "kind" not in timedtext.query and "fmt" not in timedtext.query
        # Watch pages that answer 404 leave the feed description as the text.
        others = [d for k, d in docs.items() if k != WATCH_VIDEO]
        assert all(d["extraction"] == "feed_summary" for d in others)
        assert len(events_of(events, "dropped")) == 14
        assert {e["reason"] for e in events_of(events, "dropped")} == {"http_404"}

        # Exactly once: a run that has seen them asks for the feed only.
        seen = {"kgs": {"seen": list(docs)}}
        again = crawl_events(cfg, ["kgs"], seen)
        assert not events_of(again, "document") and events_of(again, "source_done")[0]["ok"]
        assert server.hits("/watch") == 15 and server.hits("/api/timedtext") == 1


@pytest.mark.parametrize(
    ("page", "reason"),
    [("yta_consent_page.html", "consent"), ("yta_too_many_requests.html", "rate_limited")],
)
def test_consent_and_captcha_pages_are_source_errors_not_documents(
    test_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], page: str, reason: str
) -> None:
    with LoopbackServer() as server:
        _serve_feed(server, _feed(test_data))
        server.add("/watch", _data(test_data, page))
        cfg = write_crawl_config(tmp_path / "cfg", [_source(server)])
        p = ingest_pipeline(load_config(cfg))

        events: list[dict[str, Any]] = []
        (report,) = p.ingest(["kgs"], on_event=events.append)
        assert not events_of(events, "document") and report.new == 0
        errors = events_of(events, "error")
        assert [e["reason"] for e in errors] == [reason]  # reported once, the other 14 counted as drops
        assert report.dropped[reason] == 14 and not report.ok
        health = cli_sources(cfg, capsys)["kgs"]
        assert health["status"] == "failing" and health["consecutive_failures"] == 1
        assert "nothing from it was indexed" in health["last_error"]

        # Next run, the block has lifted: every video comes (descriptions: no captions offered).
        server.add("/watch", b"<html><body>a watch page without a player response</body></html>")
        (later,) = p.ingest(["kgs"])
        assert later.ok and later.new == 15


def test_rate_limit_status_and_redirects_to_consent_and_sorry(test_data: Path, tmp_path: Path) -> None:
    with LoopbackServer() as server:
        _serve_feed(server, _feed(test_data))
        sources = [_source(server)]

        def watch(req: RecordedRequest, n: int) -> Reply:
            vid = req.query.get("v", [""])[0]
            if vid == "zg40FHOAqC0":
                return Reply(429, _data(test_data, "yta_too_many_requests.html"), {"Retry-After": "0"})
            if vid == FEED_VIDEO:
                return Reply(302, b"", {"Location": "https://consent.youtube.com/m?continue=x"}, None)
            if vid == "OU36JDGzXb0":
                return Reply(302, b"", {"Location": "https://www.google.com/sorry/index?continue=x"}, None)
            return Reply(404, b"gone")

        server.route("/watch", watch)
        cfg = write_crawl_config(tmp_path / "cfg", sources)
        events = crawl_events(cfg, ["kgs"])
        assert sorted(e["reason"] for e in events_of(events, "error")) == ["consent", "rate_limited"]
        blocked = {"zg40FHOAqC0", FEED_VIDEO, "OU36JDGzXb0"}
        assert blocked.isdisjoint(e["key"] for e in events_of(events, "document"))
        assert len(events_of(events, "document")) == 12
        assert not events_of(events, "source_done")[0]["ok"]
        # 429 is retried with backoff (retry_times=2) before it counts as a block.
        assert len([r for r in server.requests_for("/watch") if r.query["v"] == ["zg40FHOAqC0"]]) == 3


def test_missing_channel_is_a_source_error(test_data: Path, tmp_path: Path) -> None:
    mock = json.loads(_data(test_data, "newpipe_feed_notavailable.mock.json"))["response"]
    with LoopbackServer() as server:
        server.add("/feeds/videos.xml", mock["responseBody"], status=mock["responseCode"])
        cfg = write_crawl_config(tmp_path / "cfg", [_source(server)])
        events = crawl_events(cfg, ["kgs"])
        (error,) = events_of(events, "error")
        assert error["reason"] == "http_404" and CHANNEL in error["message"]
        assert not events_of(events, "document") and not events_of(events, "source_done")[0]["ok"]


def test_a_feed_redirected_to_consent_is_a_block(tmp_path: Path) -> None:
    with LoopbackServer() as server:
        location = "https://consent.youtube.com/m?continue=https%3A%2F%2Fwww.youtube.com%2Ffeeds%2Fvideos.xml"
        server.add("/feeds/videos.xml", b"", status=302, headers={"Location": location})
        cfg = write_crawl_config(tmp_path / "cfg", [_source(server)])
        events = crawl_events(cfg, ["kgs"])
        assert [e["reason"] for e in events_of(events, "error")] == ["consent"]
        assert not events_of(events, "source_done")[0]["ok"] and not server.requests_for("/watch")


def test_content_cannot_steer_the_crawler_off_the_configured_host(test_data: Path, tmp_path: Path) -> None:
    """A caption baseUrl naming another (internal) host, and redirects there, are never followed."""
    watch_page = _data(test_data, "yta_watch_GJLlxj_dtq8_2025-02.html.gz")
    feed = _feed(test_data).replace(FEED_VIDEO.encode(), WATCH_VIDEO.encode())
    with LoopbackServer() as server, LoopbackServer(host="127.0.0.2") as internal:
        internal.add("/api/timedtext", _data(test_data, "yta_transcript.xml"))
        internal.add("/feeds/videos.xml", feed)
        tampered = watch_page.replace(b"https://www.youtube.com/api/timedtext", internal.url("/api/timedtext").encode())
        assert tampered != watch_page
        _serve_feed(server, feed)
        server.route(
            "/watch",
            lambda req, _n: (
                Reply(200, tampered)
                if req.query.get("v") == [WATCH_VIDEO]
                else Reply(302, b"", {"Location": internal.url("/feeds/videos.xml")}, None)
            ),
        )
        server.add("/api/timedtext", _data(test_data, "yta_transcript.xml"))
        cfg = write_crawl_config(tmp_path / "cfg", [_source(server)])
        events = crawl_events(cfg, ["kgs"])

        assert not internal.requests  # not one byte to the other host
        docs = {e["key"]: e["document"] for e in events_of(events, "document")}
        assert docs[WATCH_VIDEO]["text"] == TRANSCRIPT  # the path and query, asked of the configured host
        assert server.hits("/api/timedtext") == 1
        # Redirects elsewhere are refused; those videos keep their descriptions.
        assert [e["reason"] for e in events_of(events, "dropped")] == ["off_host_redirect"] * 14
        assert sum(d["extraction"] == "feed_summary" for d in docs.values()) == 14
        assert "not followed" in docs["zg40FHOAqC0"]["extra"]["transcript_note"]


def test_handle_needs_channel_id(tmp_path: Path) -> None:
    cfg = write_crawl_config(tmp_path / "cfg", [{"id": "yt", "kind": "youtube", "handle": "@kurzgesagt"}])
    with pytest.raises(ConfigError) as exc:
        load_config(cfg)
    assert "'handle' is not supported" in str(exc.value) and "channel_id" in str(exc.value)


def test_track_choice_and_url_rules_on_the_real_player_response(test_data: Path) -> None:
    page = parse_watch_page(_data(test_data, "yta_watch_GJLlxj_dtq8_2025-02.html.gz").decode("utf-8"))
    assert page.video_id == WATCH_VIDEO and page.views == 1854904 and len(page.tracks) == 9
    assert [t.language for t in page.tracks if t.kind == "asr"] == ["en"]
    track = choose_track(page)
    assert track is not None and (track.language, track.kind) == ("en", "")
    # With the automatic track's language unknown, the source's language decides.
    no_asr = dataclasses.replace(page, tracks=tuple(t for t in page.tracks if t.kind != "asr"), default_track=None)
    chosen = choose_track(no_asr, "de")
    assert chosen is not None and chosen.language == "de"
    assert transcript_path(track, "other_video") is None
    elsewhere = dataclasses.replace(track, base_url="https://x/api/other?v=" + WATCH_VIDEO)
    assert transcript_path(elsewhere, WATCH_VIDEO) is None
    assert parse_transcript(_data(test_data, "yta_transcript.xml")) == TRANSCRIPT
    assert detect_block(200, "", _data(test_data, "yta_watch_GJLlxj_dtq8_2025-02.html.gz")) is None
