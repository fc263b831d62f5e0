"""The themes page, API and CLI on one read model (issue 14): the window follows the data (the
newest stored document, not the wall clock), and the page shows representative posts (markup
rendered, text escaped), dates and growth.

The world is the API test world plus 40 real posts about the offensive on Aleppo from seven
channels (tests/data/themes/), all from November 2024: two years before any wall clock this
runs on, so a window counted back from "now" would find nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from narrawatch.cli import main
from narrawatch.read import themes
from narrawatch.server import create_app
from tests.api.world import NOW, World, build_world
from tests.support.posts import telegram_documents
from tests.web.conftest import Session

ALEPPO = Path(__file__).resolve().parents[1] / "data" / "themes" / "aleppo_posts.jsonl"


def _aleppo_documents() -> list[Any]:
    return list(telegram_documents(ALEPPO, NOW))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with build_world(tmp_path_factory.mktemp("themes-world")) as w:
        assert w.app.pipeline is not None
        w.app.pipeline.index_documents(_aleppo_documents())
        yield w


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.config, app=world.app), base_url="http://127.0.0.1") as c:
        c.headers["Authorization"] = f"Bearer {world.tokens['analyst']}"
        yield c


def test_the_default_window_ends_at_the_newest_stored_document(world: World) -> None:
    w = themes.theme_window(world.app)
    assert w.until == datetime(2024, 12, 1, tzinfo=UTC)  # the newest posts are of 2024-11-30
    assert w.since == datetime(2024, 11, 24, tzinfo=UTC)
    assert w.relative_to_data
    # An explicit window is kept as given.
    given = themes.theme_window(world.app, datetime(2024, 11, 1, tzinfo=UTC), datetime(2024, 11, 10, tzinfo=UTC))
    assert (given.since, given.until, given.relative_to_data) == (
        datetime(2024, 11, 1, tzinfo=UTC),
        datetime(2024, 11, 10, tzinfo=UTC),
        False,
    )


def test_api_finds_themes_without_a_window_and_says_when_they_grew(client: TestClient) -> None:
    r = client.get("/api/v1/themes", params={"min_size": 2})
    assert r.status_code == 200, r.text
    found = r.json()
    assert found, "no themes in the 7 days up to the newest document"
    t = found[0]
    assert {"top_terms", "representatives", "first_seen", "last_seen", "growth", "early", "late"} <= set(t)
    assert t["representatives"] and all(p["text"] and p["published"] for p in t["representatives"])
    assert "2024-11-24" <= t["first_seen"] <= t["last_seen"] < "2024-12-01"
    assert client.get("/api/v1/themes", params={"min_size": 1}).status_code == 422


def test_cli_lists_the_same_themes_as_the_api(
    world: World, client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    api = client.get("/api/v1/themes", params={"min_size": 2}).json()
    code = main(["--config", str(world.config.root), "--log-level", "WARNING", "themes", "--min-size", "2", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    assert api and json.loads(out) == api


@pytest.mark.browser
def test_themes_page_shows_representatives_dates_and_growth(
    analyst: Session, client: TestClient, artifacts: Path
) -> None:
    api = client.get("/api/v1/themes", params={"min_size": 2}).json()
    resp = analyst.goto("/themes?min_size=2")
    assert resp.status == 200
    page = analyst.page
    assert "7 days up to the newest stored document" in page.locator("#theme-window").inner_text()
    assert "2024-11-24 00:00 – 2024-12-01 00:00" in page.locator("#theme-window").inner_text()
    cards = page.locator("section.theme")
    assert cards.count() == len(api) >= 1
    first = cards.nth(0)
    assert first.get_attribute("data-theme-id") == api[0]["id"]
    meta = first.locator(".theme-meta").inner_text()
    assert api[0]["first_seen"][:10] in meta and api[0]["last_seen"][:10] in meta
    assert f"growth ×{api[0]['growth']}" in meta
    assert first.locator(".terms .tag").count() == min(10, len(api[0]["top_terms"]))
    reps = first.locator("ol.representatives li")
    assert reps.count() == min(3, len(api[0]["representatives"]))
    assert reps.nth(0).locator("a").first.get_attribute("href").startswith("/documents/")
    body = page.locator("main").inner_text()
    for marker in ("**", "~~", "](http"):
        assert marker not in body, marker
    # Markup in the real posts became elements; nothing else did.
    tags = page.evaluate(
        "() => [...document.querySelectorAll('ol.representatives blockquote *')].map(e => e.tagName.toLowerCase())"
    )
    assert set(tags) <= {"strong", "em", "s", "a"}
    assert "strong" in tags
    links = page.evaluate(
        "() => [...document.querySelectorAll('ol.representatives blockquote a')].map(a => [a.href, a.rel])"
    )
    assert all(h.startswith(("http://", "https://")) and r == "nofollow noopener noreferrer" for h, r in links)
    page.screenshot(path=str(artifacts / "themes.png"), full_page=True)
    assert not analyst.errors, analyst.errors


@pytest.mark.browser
def test_promote_from_the_page_uses_the_window_it_showed(analyst: Session, client: TestClient, world: World) -> None:
    api = client.get("/api/v1/themes", params={"min_size": 2}).json()
    analyst.goto("/themes?min_size=2")
    card = analyst.page.locator(f'section.theme[data-theme-id="{api[0]["id"]}"]')
    card.locator("input[name=narrative_id]").fill("aleppo-offensive")
    card.locator("button", has_text="Promote to draft").click()
    analyst.page.wait_for_load_state("load")
    notice = analyst.page.locator("p.notice[role=status]").inner_text()
    assert "aleppo-offensive.yaml" in notice
    assert (themes.drafts_dir(world.app) / "aleppo-offensive.yaml").is_file()
