"""crawlers.telegram on real t.me/s blocks (tests/data/telegram, from PythonicCafe/tchan) and on
pages assembled by tests/support/tme.py from real Russian posts."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.errors import ParseError
from crawlers.telegram import TelegramPage, TelegramPost, parse_channel_page, parse_views
from tests.support.tme import build_channel_page, format_views, urls_in


def _cases(test_data: Path) -> list[dict[str, Any]]:
    lines = (test_data / "telegram" / "expected.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _page(test_data: Path, case: dict[str, Any], channel: str = "tchantest") -> TelegramPage:
    return parse_channel_page((test_data / "telegram" / case["html_file"]).read_bytes(), channel)


# tchan's attachment kinds -> our media markers. tchan lists a voice note as "audio" and an audio
# *file* as a "document"; t.me renders them differently (voice player vs document with an audio
# icon), so we say "voice" and "audio". Thumbnails are not attachments of their own, except when
# t.me shows only the thumbnail of a video that is too big to play inline.
def _expected_media(exp: dict[str, Any]) -> Counter[str]:
    urls = [(kind, url) for kind, url in exp["urls"]]
    kinds = Counter(kind for kind, _ in urls)
    media: Counter[str] = Counter()
    for kind, url in urls:
        if kind == "photo" and "/img/emoji/" not in url:  # tchan counts emoji images as photos
            media["photo"] += 1
        elif kind == "video" or (kind == "thumbnail-video" and not kinds["video"]):
            media["video"] += 1
        elif kind == "round-video":
            media["round_video"] += 1
        elif kind == "audio":
            media["voice"] += 1
    if exp["type"] in ("poll", "location"):
        media[exp["type"]] += 1
    if exp["type"] == "document":
        media["audio"] += 1  # the only document case is an audio file (icon class "audio")
    return media


def _expected_links(exp: dict[str, Any]) -> list[str]:
    # tchan reports a location's map link as a link; we report it as the "location" attachment:
    # `links` are hrefs in the message text only.
    if exp["type"] == "location":
        return []
    return [url for kind, url in exp["urls"] if kind == "link"]


def _expected_text(exp: dict[str, Any]) -> str:
    text = exp["text"] or ""
    if exp["type"] == "poll":
        # tchan gives a poll no text; we use the poll question (the poll's content).
        return "Let's do a quick poll quizz mode"
    return text


def _same_text(ours: str, theirs: str, case: str) -> bool:
    if case == "parse_message_weird_preview":
        # tchan puts every emoji and link on a line of its own and drops blank lines; we keep
        # the message's own lines ("🔸 Projeto ...", "clicando aqui!"). Same characters in order:
        return "".join(ours.split()) == "".join(theirs.split()) and ours.count("\n") < theirs.count("\n") * 2
    return ours == theirs


def _compare(post: TelegramPost, exp: dict[str, Any], case: str) -> dict[str, bool]:
    return {
        "id": post.message_id == exp["id"],
        "channel": post.channel == exp["channel"],
        "date": post.date == datetime.fromisoformat(exp["created_at"]),
        "views": post.views == exp["views"],
        "author": post.author == (exp["author"] or ""),
        "text": _same_text(post.text, _expected_text(exp), case),
        "media": Counter(post.media) == _expected_media(exp),
        "links": list(post.links) == _expected_links(exp),
        "forwarded_from": post.forwarded_from == exp.get("forwarded_author", ""),
        "forwarded_from_url": post.forwarded_from_url == exp.get("forwarded_author_url", ""),
        "url": post.url == f"https://t.me/{exp['channel']}/{exp['id']}",
    }


def test_every_real_case_matches_expected(test_data: Path) -> None:
    results: dict[str, dict[str, bool]] = {}
    for case in _cases(test_data):
        exp = case["expected"]
        if exp["__type__"] != "ChannelMessage":
            continue
        page = _page(test_data, case)
        if exp["type"] == "service":
            # Decision: service messages are skipped (no content), but still move paging on.
            assert page.posts == (), case["case"]
            assert page.before == (exp["id"] if exp["id"] > 1 else None)
            results[case["case"]] = {"skipped_service": True}
            continue
        (post,) = page.posts
        results[case["case"]] = _compare(post, exp, case["case"])
        assert post.date.utcoffset() == timedelta(0)
    failures = {case: [f for f, ok in fields.items() if not ok] for case, fields in results.items()}
    failures = {case: fields for case, fields in failures.items() if fields}
    assert len(results) == 21
    assert failures == {}


@pytest.mark.parametrize(
    ("case", "field", "value"),
    [
        ("parse_text_message_multiline", "text", "Bigger\ntext\nmessage\nnumber\n34"),
        ("parse_text_message_multiline", "html", "Bigger<br>text<br>message<br>number<br>34"),
        ("parse_multimedia_message", "media", ("video", "photo", "video", "photo")),
        ("parse_multimedia_message", "text", "Multiple videos and pictures"),
        ("parse_multimedia_message", "views", 436_600),
        ("parse_service_message_channel_video_changed", "views", 3_100_000),
        ("parse_message_weird_preview", "views", 1_200),
        ("parse_forwarded_text_message", "forwarded_from", "Some user"),
        ("parse_forwarded_text_message", "forwarded_from_url", "https://t.me/some_user"),
        ("parse_text_message_signed_not_edited", "author", "Álvaro Justen"),
        ("parse_emoji_message", "text", "👍"),
        ("parse_emoji_message", "media", ()),
        ("parse_audio_message", "media", ("voice",)),
        ("parse_audio_document", "media", ("audio",)),
        ("parse_round_video_single", "media", ("round_video",)),
        ("parse_video_single_2", "text", ""),
    ],
)
def test_selected_fields(test_data: Path, case: str, field: str, value: object) -> None:
    (entry,) = [c for c in _cases(test_data) if c["case"] == case]
    (post,) = _page(test_data, entry).posts
    assert getattr(post, field) == value


def test_weird_preview_text_keeps_lines_and_links(test_data: Path) -> None:
    (entry,) = [c for c in _cases(test_data) if c["case"] == "parse_message_weird_preview"]
    (post,) = _page(test_data, entry, channel="CamaradosDeputados").posts
    lines = post.text.split("\n")
    assert lines[:3] == ["_", "", "✍️ CÂMARA APROVA"]
    assert "🔸 Projeto que aumenta penas para crimes sexuais contra crianças" in lines
    assert "#Punição_ampliada" in lines
    assert "<" not in post.text and "&#33;" not in post.text and "clicando aqui!" in post.text
    # relative hashtag links resolve against the channel's preview page
    assert post.links[1] == "https://t.me/s/CamaradosDeputados?q=%23Puni%C3%A7%C3%A3o_ampliada"
    assert post.html.startswith("_<br><br><b>")


def test_channel_header_title(test_data: Path) -> None:
    (entry,) = [c for c in _cases(test_data) if c["case"] == "channel_info"]
    page = _page(test_data, entry)
    assert (page.title, page.posts, page.before) == ("tchan's test channel 👍", (), None)


def test_whole_fragment_of_all_cases(test_data: Path) -> None:
    cases = [
        c for c in _cases(test_data) if "tchantest" in (c["expected"].get("channel"), c["expected"].get("username"))
    ]
    html = "\n".join((test_data / "telegram" / c["html_file"]).read_text(encoding="utf-8") for c in cases)
    page = parse_channel_page(html, "tchantest")
    service = sum(c["expected"].get("type") == "service" for c in cases)
    assert len(page.posts) == len(cases) - service - 1  # minus channel_info, which has no message
    assert page.title == "tchan's test channel 👍"
    assert page.before is None  # message 1 (channel created) is on the page: nothing older


@pytest.mark.parametrize(
    "html",
    [
        "",
        "   ",
        "<html><head><title>Telegram: Contact @durov</title></head><body><div class='tgme_page'>"
        "<div class='tgme_page_title'>Durov</div></div></body></html>",
        "<html><body><p>Обычная страница</p></body></html>",
        b"\xff\xfe\x00garbage",
    ],
    ids=["empty", "blank", "tgme_page", "html", "garbage"],
)
def test_not_a_preview_page_raises(html: str | bytes) -> None:
    with pytest.raises(ParseError, match=r"t\.me/s/durov"):
        parse_channel_page(html, "durov")


@pytest.mark.parametrize(
    ("text", "value"),
    [("2", 2), ("950", 950), ("1.2K", 1200), ("436.6K", 436_600), ("3.1M", 3_100_000), ("1M", 10**6), ("", None)],
)
def test_parse_views(text: str, value: int | None) -> None:
    assert parse_views(text) == value


# --- round trip through tests/support/tme.py ---------------------------------------------------


def _ru_posts(test_data: Path) -> list[dict[str, Any]]:
    lines = (test_data / "telegram" / "ru_posts_sample.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_round_trip_real_russian_posts(test_data: Path) -> None:
    by_channel: dict[str, list[dict[str, Any]]] = {}
    for post in _ru_posts(test_data):
        by_channel.setdefault(post["channel"], []).append(post)
    assert len(by_channel) >= 3
    for number, (name, posts) in enumerate(sorted(by_channel.items())):
        username = f"channel_{number}"
        posts = sorted(posts, key=lambda p: p["message_id"])  # t.me lists oldest first
        posts[0] = {
            **posts[0],
            "views": 436_600,
            "forwarded_from": "РИА Новости",
            "forwarded_from_url": "https://t.me/rian_ru",
        }
        posts[-1] = {**posts[-1], "author": "Дежурный редактор", "photo": True}
        older = posts[0]["message_id"] - 1
        page = parse_channel_page(build_channel_page(username, posts, before=older).encode(), username)
        assert page.title == name
        assert page.before == older
        assert [p.message_id for p in page.posts] == [p["message_id"] for p in posts]
        for got, src in zip(page.posts, posts, strict=True):
            assert got.channel == username
            assert got.url == f"https://t.me/{username}/{src['message_id']}"
            assert got.date == datetime.fromisoformat(src["date"])
            assert got.text == src["text"].strip()
            assert got.links == tuple(dict.fromkeys(urls_in(src["text"])))
        assert page.posts[0].views == 436_600
        assert (page.posts[0].forwarded_from, page.posts[0].forwarded_from_url) == (
            "РИА Новости",
            "https://t.me/rian_ru",
        )
        assert (page.posts[-1].author, page.posts[-1].media) == ("Дежурный редактор", ("photo",))


def test_round_trip_paging_without_load_more(test_data: Path) -> None:
    posts = sorted(_ru_posts(test_data)[:6], key=lambda p: p["message_id"])
    page = parse_channel_page(build_channel_page("naked", posts, before=None), "naked")
    assert page.before == posts[0]["message_id"]  # no "load more": the oldest id on the page
    assert parse_channel_page(build_channel_page("naked", [], before=None), "naked").before is None


def test_round_trip_special_text() -> None:
    text = "Строка <1> & «2»\n\n  отступ\nhttps://ria.ru/20241130/x.html?a=1&b=2, и ещё https://t.me/rian_ru/1."
    posts = [{"channel": "Тест", "message_id": 5, "date": "2024-11-30T19:39:32+03:00", "text": text, "views": 999}]
    (post,) = parse_channel_page(build_channel_page("test", posts, before=4), "test").posts
    assert post.text == text
    assert post.links == ("https://ria.ru/20241130/x.html?a=1&b=2", "https://t.me/rian_ru/1")
    assert post.date == datetime.fromisoformat("2024-11-30T16:39:32+00:00")
    assert post.views == 999


@pytest.mark.parametrize(("views", "text"), [(2, "2"), (1200, "1.2K"), (436_600, "436.6K"), (3_100_000, "3.1M")])
def test_format_views_matches_parse(views: int, text: str) -> None:
    assert format_views(views) == text
    assert parse_views(text) == views
