"""crawlers.extract on real pages (tests/data/pages, copied from ../shared/data)."""

from __future__ import annotations

import gzip
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from core.errors import ExtractionError
from crawlers.extract import MAX_INPUT_BYTES, Extracted, extract_article

_WS = re.compile(r"\s+")
PASS_RATE_FLOOR = 0.4  # measured 7/16 on this random set; the full shared sets: see docs/extract.md


def _norm(text: str) -> str:
    return _WS.sub(" ", text).strip().casefold()


def _cases(test_data: Path) -> list[dict[str, Any]]:
    return json.loads((test_data / "pages" / "cases.json").read_text(encoding="utf-8"))


def _run(test_data: Path, case: dict[str, Any]) -> tuple[Extracted | None, bool]:
    html = gzip.decompress(Path(test_data / "pages" / case["file"]).read_bytes())
    try:
        got = extract_article(html, case["url"])
    except ExtractionError:
        return None, False
    text = _norm(got.title + "\n" + got.text + "\n" + " ".join(got.links))
    ok = all(_norm(s) in text for s in case["must_contain"])
    ok = ok and not any(_norm(s) in text for s in case["must_not_contain"])
    if case["body_paragraphs"]:  # fundus: >= 80% of the expected paragraphs (first 80 chars) found
        found = sum(_norm(p) in text for p in case["body_paragraphs"])
        ok = ok and found >= 0.8 * len(case["body_paragraphs"])
    if case["title"]:
        ok = ok and _norm(got.title) == _norm(case["title"])
    if case["published_day"]:
        day = datetime.fromisoformat(case["published_day"]).astimezone(UTC).date()
        ok = ok and got.published is not None and got.published.date() == day
    return got, ok


def test_pravda_russian_edition(test_data: Path) -> None:
    case = next(c for c in _cases(test_data) if c["file"].startswith("ua_Pravda"))
    got, ok = _run(test_data, case)
    assert got is not None and ok
    assert got.title.startswith("157 миллионов за бездействие")
    assert got.published == datetime(2026, 1, 8, 15, 46, tzinfo=UTC)  # 17:46+02:00 on the page
    assert "Ярослав Кузишин" in got.author
    assert got.language_hint == "ru"
    paragraphs = got.text.split("\n\n")
    assert paragraphs[0].startswith("157 миллионов гривен — именно столько за последние три года")
    assert len(paragraphs) > 20
    assert all(p == p.strip() and p for p in paragraphs)
    assert "https://www.radiosvoboda.org/a/news-skhemy-oask-yanukovych/32135644.html" in got.links
    assert all(link.startswith(("http://", "https://")) for link in got.links)


def test_pass_rate_floor(test_data: Path) -> None:
    results = [_run(test_data, case)[1] for case in _cases(test_data)]
    rate = sum(results) / len(results)
    assert rate >= PASS_RATE_FLOOR, f"pass rate {rate:.2f} < {PASS_RATE_FLOOR}"


def test_titles_lose_site_name_suffix(test_data: Path) -> None:
    case = next(c for c in _cases(test_data) if c["file"].startswith("de_Golem_2024"))
    got, _ = _run(test_data, case)
    assert got is not None
    assert got.title == "LTE-Patent: Samsung soll wegen Patentklage Smartphones zerstören"


@pytest.mark.parametrize(
    "html",
    ["", b"", "   ", "<html><body></body></html>", b"<html><head><title>x</title></head><body><nav>menu</nav>"],
)
def test_no_main_text_raises(html: str | bytes) -> None:
    with pytest.raises(ExtractionError):
        extract_article(html, "https://example.org/a")


def test_broken_html_and_charset() -> None:
    paragraph = "Тестовый абзац о событиях в регионе, в котором достаточно слов для извлечения. " * 4
    html = (
        '<html><head><meta charset="windows-1251"><title>Заголовок новости</title></head><body><article>'
        f"<h1>Заголовок новости</h1><p>{paragraph}<p>{paragraph}<div><b>unclosed <i>tags"
    ).encode("cp1251")
    got = extract_article(html, "https://example.ru/news/1")
    assert "Тестовый абзац о событиях" in got.text
    assert "\ufffd" not in got.text


def test_hostile_page_is_truncated_not_hung() -> None:
    soup = "<div " + " ".join(f'a{i}="{"x" * 20}"' for i in range(8_000)) + ">"
    script = "<script>" + "var a = 1;" * 160_000 + "</script>"
    body = "<p>" + "Real article text that should still be found by the extractor. " * 20 + "</p>"
    html = f"<html><body><article>{body}</article>{soup * 3}{script}</body></html>"
    assert len(html.encode()) > MAX_INPUT_BYTES
    got = extract_article(html, "https://example.org/hostile")
    assert "Real article text" in got.text
    assert "var a" not in got.text
