"""Telegram markup (core.markup) on real exported posts: stripped to plain text, rendered to safe HTML."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.markup import markup_html, parse_markup, strip_markup, strip_markup_row, strip_markup_spans

POSTS = Path(__file__).resolve().parents[1] / "data" / "markup" / "telegram_markup_posts.jsonl"


def _posts() -> dict[int, str]:
    rows = [json.loads(line) for line in POSTS.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {int(r["message_id"]): str(r["text"]) for r in rows}


@pytest.mark.parametrize("message_id", [11778, 65478, 9507, 65454])
def test_real_posts_lose_every_marker_when_stripped(message_id: int) -> None:
    text = _posts()[message_id]
    plain = strip_markup(text)
    for marker in ("**", "__", "~~", "](http"):
        assert marker not in plain, (message_id, marker)
    html = markup_html(text)
    for marker in ("**", "__", "~~", "](http"):
        assert marker not in html, (message_id, marker)


def test_bold_link_and_strike_of_a_real_post() -> None:
    text = _posts()[9507]
    plain = strip_markup(text)
    assert plain.startswith("☄️ -35% на все курсы Proglib Academy\n")
    assert "👾 Математика для Data Science – 19 490 рублей 29 990 рублей" in plain
    html = markup_html(text)
    assert "<strong> -35% на все курсы Proglib Academy</strong>" in html
    assert "<s>29 990 рублей</s>" in html
    assert (
        '<a href="https://proglib.io/w/5b6bab4b" rel="nofollow noopener noreferrer">Математика для Data Science </a>'
        in html
    )


def test_italic_around_a_link_and_query_strings_escaped() -> None:
    posts = _posts()
    html = markup_html(posts[65454])
    assert html.endswith(
        '<a href="https://t.me/+cHijs8cCXu8zNGY6" rel="nofollow noopener noreferrer"><em>@techniqnews</em></a>'
    )
    assert strip_markup(posts[65454]).endswith("публикуют в канале @techniqnews")
    assert "utm_source=telegram&amp;utm_medium=b2c" in markup_html(posts[11778])
    assert "<em>С таким точно ничего не страшно!</em>" in markup_html(posts[65478])


def test_hostile_text_and_links_are_inert() -> None:
    text = '**<script>alert(1)</script>** [click](javascript:alert(1)) [x](data:text/html,hi) <img src=x onerror=1> [ok](http://a.example/"onmouseover=1)'
    html = markup_html(text)
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x onerror=1&gt;" in html
    assert "javascript:" not in html and "data:" not in html
    assert "click" in html and 'href="http://a.example/&quot;onmouseover=1"' in html
    assert html.count("<a ") == 1
    assert strip_markup(text) == "<script>alert(1)</script> click x <img src=x onerror=1> ok"


def test_unpaired_markers_and_overlap() -> None:
    # A censored word (a real pattern in the corpus: "ох**л") is text, not bold.
    assert strip_markup("зашёл и ох**л удивился") == "зашёл и ох**л удивился"
    assert markup_html("a**b") == "a**b"
    assert strip_markup("snake__case") == "snake__case"
    # A title or passage cut out of a post loses a partner: the stray marker goes, words stay.
    assert strip_markup("**GenBook RK3588: уникальный модульный Linux-ноутбук. И ко") == (
        "GenBook RK3588: уникальный модульный Linux-ноутбук. И ко"
    )
    assert strip_markup("нового оружия «Орешник»**\n\nПолная версия") == "нового оружия «Орешник»\n\nПолная версия"
    assert strip_markup("ох**л и **жирный**") == "ох**л и жирный"
    # Telegram entities may overlap; every run carries its own tags, so the HTML is well nested.
    assert markup_html("**bold __both** it__") == "<strong>bold </strong><strong><em>both</em></strong><em> it</em>"
    assert [r.text for r in parse_markup("**a** b")] == ["a", " b"]


def test_spans_move_from_stored_offsets_to_plain_offsets() -> None:
    raw = "**Вузы** и [изучили](https://x.example/a) ТюмГУ"
    word = raw.index("изучили")
    plain, spans = strip_markup_spans(raw, [[2, 6], [word, word + 7], [raw.index("ТюмГУ"), len(raw)]])
    assert plain == "Вузы и изучили ТюмГУ"
    assert [plain[s:e] for s, e in spans] == ["Вузы", "изучили", "ТюмГУ"]
    # A span over markers only covers nothing visible and is dropped.
    assert strip_markup_spans(raw, [[0, 2]]) == (plain, [])


def test_rows_strip_prose_columns_only() -> None:
    row = {"title": "**T**", "passage": "__p__", "url": "https://x.example/a__b__c", "document_id": "t:1__2__"}
    assert strip_markup_row(row) == {
        "title": "T",
        "passage": "p",
        "url": "https://x.example/a__b__c",
        "document_id": "t:1__2__",
    }
