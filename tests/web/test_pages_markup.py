"""Telegram markup on every surface (issue 14): rendered on the document page and in evidence,
stripped in titles, snippets, CSV exports, alert messages and the CLI; stored text untouched.

The world's real posts carry the markup of the Telegram export (tests/data/index/posts.jsonl:
99 of 200 posts have ``**bold**``; "Boston Dynamics" below also has ``[**text**](url)``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from alerts.render import render_html, render_markdown, render_slack, render_telegram, render_text
from core.documents import document_id_for_telegram
from narrawatch.cli import main
from narrawatch.server import create_app
from tests.api.world import World
from tests.web.conftest import Session

BOSTON = document_id_for_telegram("1001044298783", 11948)
RAW_MARKERS = ("**", "~~", "](http")


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.config, app=world.app), base_url="http://127.0.0.1") as c:
        c.headers["Authorization"] = f"Bearer {world.tokens['analyst']}"
        yield c


def test_stored_text_keeps_the_markup_byte_exact(world: World, client: TestClient) -> None:
    doc = world.app.index.get(BOSTON)
    assert doc is not None and "**Boston Dynamics **[**представили **](https://" in doc.text
    api = client.get(f"/api/v1/documents/{quote(BOSTON, safe='')}").json()
    assert "**Boston Dynamics **" in json.dumps(api, ensure_ascii=False)


def test_csv_export_strips_markup_and_jsonl_keeps_it(client: TestClient) -> None:
    q = {"q": "Boston Dynamics", "mode": "keyword"}
    body = client.get("/api/v1/search/export", params=q | {"format": "csv"}).text
    rows = list(csv.DictReader(io.StringIO(body)))
    hit = next(r for r in rows if r["document_id"] == BOSTON)
    assert hit["passage"].startswith("Boston Dynamics представили")
    for row in rows:
        for marker in RAW_MARKERS:
            assert marker not in row["passage"] and marker not in row["title"], (marker, row)
        assert row["url"].startswith("https://")
    lines = client.get("/api/v1/search/export", params=q | {"format": "jsonl"}).text.splitlines()
    raw = next(json.loads(x) for x in lines if json.loads(x)["document_id"] == BOSTON)
    assert raw["passage"].startswith("**Boston Dynamics **")


def test_cli_search_prints_plain_text(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["--config", str(world.config.root), "--log-level", "WARNING", "search", "Boston Dynamics", "--mode", "keyword"]
    )
    out = capsys.readouterr().out
    assert code == 0 and "Boston Dynamics представили" in out
    for marker in RAW_MARKERS:
        assert marker not in out, marker


def test_alert_messages_carry_no_raw_markup(world: World) -> None:
    outbox = world.app.outbox
    alerts = [a for a in (outbox.alert(i) for i in world.alert_ids) if a is not None]
    with_markup = [a for a in alerts if any("**" in m.passage_text for e in a.events for m in e.evidence)]
    assert with_markup, "the world's alerts should quote posts with markup"
    for alert in with_markup:
        for render in (render_text, render_slack, render_telegram, render_html):
            text = render(alert)
            for marker in RAW_MARKERS:
                assert marker not in text, (render.__name__, marker)
        # CommonMark has bold of its own (the title); a post's markers would arrive escaped.
        assert "\\*\\*" not in render_markdown(alert)
        assert "\\*\\*" not in render_telegram(alert, "MarkdownV2")


@pytest.mark.browser
def test_document_page_renders_markup_with_safe_links(analyst: Session) -> None:
    resp = analyst.goto(f"/documents/{quote(BOSTON, safe='')}")
    assert resp.status == 200
    text = analyst.page.locator(".doctext").inner_text()
    assert text.startswith("Boston Dynamics представили")
    for marker in RAW_MARKERS:
        assert marker not in text, marker
    found = analyst.page.evaluate(
        """() => ({
          strong: [...document.querySelectorAll('.doctext strong')].map(e => e.textContent),
          links: [...document.querySelectorAll('.doctext a')].map(a => [a.getAttribute('href'), a.rel, a.textContent]),
        })"""
    )
    assert "Boston Dynamics " in found["strong"]
    assert found["links"], found
    for href, rel, _label in found["links"]:
        assert href.startswith(("https://", "http://")) and rel == "nofollow noopener noreferrer"
    assert any(label == "представили " for _h, _r, label in found["links"])
    assert not analyst.errors, analyst.errors


@pytest.mark.browser
@pytest.mark.parametrize(
    "path",
    [
        "/search?q=Boston+Dynamics&mode=keyword",
        "/search?q=%D1%84%D1%80%D0%B5%D0%B9%D0%BC%D0%B2%D0%BE%D1%80%D0%BA%D0%BE%D0%B2&mode=keyword",
        "/narratives/n-nuclear-threat",
        "/trace?narrative_id=n-nuclear-threat",
        "/alerts",
    ],
)
def test_pages_show_no_raw_markup(analyst: Session, path: str) -> None:
    resp = analyst.goto(path)
    assert resp.status == 200
    text = analyst.page.locator("main").inner_text()
    for marker in RAW_MARKERS:
        assert marker not in text, (path, marker)
