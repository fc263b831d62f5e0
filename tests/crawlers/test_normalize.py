"""crawlers.normalize: canonical URLs, passages, fingerprints, hashes, make_document."""

from __future__ import annotations

import gzip
import json
import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from core.documents import document_id_for_telegram, document_id_for_url
from crawlers.extract import extract_article
from crawlers.normalize import (
    canonical_url,
    clean_text,
    content_hash,
    fingerprint,
    fingerprint_similarity,
    make_document,
    split_passages,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "HTTPS://WWW.Example.COM:443/News/Item?utm_source=tg&b=2&a=1#comments",
            "https://www.example.com/News/Item?a=1&b=2",
        ),
        ("http://example.org:80/a?fbclid=XYZ&gclid=1&yclid=2", "http://example.org/a"),
        ("http://example.org:8080/a", "http://example.org:8080/a"),
        ("https://meduza.io/news/2024/11/20/x?utm_medium=rss&utm_campaign=c", "https://meduza.io/news/2024/11/20/x"),
        ("https://t.me/rian_ru/123", "https://t.me/rian_ru/123"),
        ("https://example.com", "https://example.com/"),
        ("  https://example.com/Path/?q=Путин  ", "https://example.com/Path/?q=%D0%9F%D1%83%D1%82%D0%B8%D0%BD"),
    ],
)
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected
    assert canonical_url(expected) == expected  # idempotent


def _check_passages(text: str, max_words: int) -> None:
    passages = split_passages(text, max_words)
    for i, p in enumerate(passages):
        assert p.index == i
        assert text[p.start : p.start + len(p.text)] == p.text
        assert p.text == p.text.strip() and p.text
        assert len(p.text.split()) <= max_words or len(text.split()) == 0
    starts = [p.start for p in passages]
    assert starts == sorted(starts)
    # every word is covered exactly once, in order
    assert " ".join(w for p in passages for w in p.text.split()) == " ".join(text.split())


def test_passages_on_real_telegram_posts(shared_data: Path) -> None:
    lines = (shared_data / "telegram_ru_posts.jsonl").read_text(encoding="utf-8").splitlines()
    rng = random.Random(3)
    for line in rng.sample(lines, 400):
        text = json.loads(line)["text"] or ""
        for max_words in (10, 40, 120):
            _check_passages(text, max_words)


def test_passages_on_real_page(test_data: Path) -> None:
    html = gzip.decompress(Path(test_data / "pages" / "ua_Pravda_2026_01_08.html.gz").read_bytes())
    text = extract_article(html, "https://www.pravda.com.ua/rus/articles/2026/01/08/8015225/").text
    _check_passages(text, 120)
    passages = split_passages(text, 120)
    assert len(passages) > 5
    # short paragraphs are merged: fewer passages than paragraphs
    assert len(passages) < len(text.split("\n\n"))
    # a paragraph that fits is never cut in the middle
    for para in text.split("\n\n"):
        if len(para.split()) <= 120:
            assert any(para in p.text for p in passages)


def test_long_sentence_hard_split_and_sentence_split() -> None:
    long_sentence = " ".join(f"слово{i}" for i in range(250))
    passages = split_passages(long_sentence, 100)
    assert [len(p.text.split()) for p in passages] == [100, 100, 50]
    text = "Первое предложение здесь. " * 30 + "\n\nКороткий абзац."
    passages = split_passages(text.strip(), 20)
    assert all(p.text.endswith(".") for p in passages)
    assert split_passages("") == ()
    assert split_passages("\n\n  \n") == ()


def _posts(shared_data: Path) -> dict[tuple[str, int], str]:
    out = {}
    for line in (shared_data / "telegram_ru_posts.jsonl").read_text(encoding="utf-8").splitlines():
        p = json.loads(line)
        out[(str(p["channel_id"]), int(p["message_id"]))] = p["text"] or ""
    return out


# Reposts between different channels, found with datasketch LSH over the real posts.
REPOSTS = [
    (("-1001100158992", 74258), ("-1001125816841", 45815)),
    (("-1001117628569", 59441), ("-1001136626166", 61212)),
    (("-1001117628569", 59655), ("-1001136626166", 61530)),
    (("-1001100158992", 74464), ("-1001136626166", 61214)),
]


def test_fingerprint_finds_reposts_not_unrelated(shared_data: Path) -> None:
    posts = _posts(shared_data)
    for a, b in REPOSTS:
        assert fingerprint_similarity(fingerprint(posts[a]), fingerprint(posts[b])) >= 0.7
    rng = random.Random(5)
    long_posts = [t for t in posts.values() if len(t) > 300]
    for _ in range(100):
        x, y = rng.sample(long_posts, 2)
        assert fingerprint_similarity(fingerprint(x), fingerprint(y)) < 0.3


def test_fingerprint_normalisation() -> None:
    a = fingerprint("Ещё один ТЕСТ: новости, https://t.me/x/1 и всё остальное здесь сегодня!")
    b = fingerprint("еще один тест новости и все остальное здесь сегодня")
    assert len(a) == 64 and fingerprint_similarity(a, b) == 1.0
    assert fingerprint("") == () and fingerprint_similarity((), a) == 0.0
    with pytest.raises(ValueError):
        fingerprint_similarity(a, fingerprint("x y z", num_perm=32))


def test_content_hash_ignores_whitespace_only() -> None:
    assert content_hash("Title", "a  b\n\nc") == content_hash(" Title ", "a b c")
    assert content_hash("Title", "a b c") != content_hash("Title", "a b d")
    assert len(content_hash("", "")) == 64


def test_clean_text() -> None:
    assert clean_text("A\u200b b\x00\r\n\n\n\nc\u00a0 d  ") == "A b\n\nc d"
    assert clean_text("e\u0301") == "é"


def _doc(**kwargs: Any) -> Any:
    base: dict[str, Any] = {
        "source_id": "pravda",
        "kind": "site",
        "url": "https://www.pravda.com.ua/rus/news/1/?utm_source=x#top",
        "title": "  Заголовок\u00a0новости ",
        "text": "Первый абзац новости о событиях.\r\n\r\n\r\nВторой абзац\u200b текста.",
        "published": datetime(2026, 1, 8, 17, 46, tzinfo=timezone(timedelta(hours=2))),
        "fetched": datetime(2026, 1, 8, 16, 0),
    }
    base.update(kwargs)
    return make_document(**base)


def test_make_document_fields() -> None:
    doc = _doc()
    assert doc.url == "https://www.pravda.com.ua/rus/news/1/"
    assert doc.id == document_id_for_url(doc.url)
    assert doc.outlet == "pravda.com.ua"
    assert doc.published == datetime(2026, 1, 8, 15, 46, tzinfo=UTC)
    assert doc.fetched == datetime(2026, 1, 8, 16, 0, tzinfo=UTC)
    assert doc.title == "Заголовок новости"
    assert doc.text == "Первый абзац новости о событиях.\n\nВторой абзац текста."
    assert doc.language == "ru"
    assert [p.text for p in doc.passages] == [doc.text]
    assert doc.content_hash == content_hash(doc.title, doc.text)
    assert len(doc.fingerprint) == 64


def test_make_document_telegram_and_defaults() -> None:
    doc = _doc(
        kind="telegram",
        url="https://t.me/rian_ru/5",
        doc_id=document_id_for_telegram("rian_ru", 5),
        outlet="t.me/rian_ru",
        published=None,
        text="👍",
        title="",
        language_hint="ru",
        extraction="telegram",
        links=("https://a.example/x", "https://a.example/x", ""),
        views=1200,
        media=("photo",),
        passage_max_words=50,
        extra={"forwards": 3},
    )
    assert doc.id == "tg:rian_ru/5"
    assert doc.published == doc.fetched
    assert doc.language == "ru"  # from the hint: the text is emoji only
    assert doc.links == ("https://a.example/x",)
    assert doc.outlet == "t.me/rian_ru" and doc.views == 1200 and doc.extra == {"forwards": 3}
