"""The sources page in Chromium: metadata columns (actor type, country, owner, platform, language,
tags), and the analyst's add-source form checked with one real fetch of a loopback feed (a real saved
Meduza feed), refusing a page that is not a feed and a dead host (tests/api/sources_world.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from narrawatch.server import ApiServer
from tests.api.sources_world import SourcesWorld, sources_world
from tests.support.server import closed_port
from tests.web.conftest import Session

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def sworld(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SourcesWorld]:
    with sources_world(tmp_path_factory.mktemp("sources-web")) as w:
        yield w


@pytest.fixture(scope="module")
def sbase(sworld: SourcesWorld) -> Iterator[str]:
    server = ApiServer(sworld.config, sworld.app, port=0).start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


def _row(page: Any, source_id: str) -> dict[str, str]:
    row = page.locator(f'tr[data-source="{source_id}"]')
    return {
        cls: row.locator(f"td.{cls}").inner_text().strip() for cls in ("actor", "country", "owner", "platform", "tags")
    }


def test_sources_page_shows_metadata_and_adds_a_checked_source(
    browser: Any, sbase: str, sworld: SourcesWorld, artifacts: Path
) -> None:
    s = Session(browser, sbase, sworld.tokens["analyst"])
    try:
        s.goto("/sources")
        page = s.page
        assert _row(page, "rian") == {
            "actor": "state media",
            "country": "RU",
            "owner": "Rossiya Segodnya",
            "platform": "Telegram",
            "tags": "state agency",
        }
        assert _row(page, "meduza")["actor"] == "exile media" and _row(page, "tutby")["owner"] == ""
        # The actor badges differ in colour: state media does not look like an independent outlet.
        state = page.locator('tr[data-source="rian"] td.actor .badge').evaluate(
            "e => getComputedStyle(e).backgroundColor"
        )
        indep = page.locator('tr[data-source="tutby"] td.actor .badge').evaluate(
            "e => getComputedStyle(e).backgroundColor"
        )
        assert state != indep

        # Not a feed: refused with the reason, the form keeps what was typed, nothing saved.
        page.select_option("#add-source select[name=kind]", "feed")
        page.fill("#add-source input[name=address]", sworld.server.url("/about.html"))
        page.fill("#add-source input[name=id]", "about")
        page.click("#add-source button[type=submit]")
        page.wait_for_load_state("load")
        assert "not an RSS/Atom/JSON feed" in page.locator("#add-error").inner_text()
        assert page.locator("#add-source input[name=address]").input_value().endswith("/about.html")
        assert page.locator('tr[data-source="about"]').count() == 0

        # A dead host.
        page.fill("#add-source input[name=address]", f"http://127.0.0.1:{closed_port()}/rss")
        page.fill("#add-source input[name=id]", "dead")
        page.click("#add-source button[type=submit]")
        page.wait_for_load_state("load")
        assert "could not fetch" in page.locator("#add-error").inner_text()

        # A real feed: checked with one fetch, saved with its labels, listed.
        hits = sworld.server.hits("/rss/meduza.xml")
        page.fill("#add-source input[name=address]", sworld.server.url("/rss/meduza.xml"))
        page.fill("#add-source input[name=id]", "meduza-mirror")
        page.fill("#add-source input[name=outlet]", "Meduza (mirror)")
        page.select_option("#add-source select[name=actor]", "exile_media")
        page.fill("#add-source input[name=country]", "ru")
        page.fill("#add-source input[name=owner]", "Meduza Project")
        page.fill("#add-source input[name=tags]", "exile, mirror")
        page.click("#add-source button[type=submit]")
        page.wait_for_url("**/sources?added=meduza-mirror*")
        assert "reachable: 4 entries found" in page.locator("#source-added").inner_text()
        assert sworld.server.hits("/rss/meduza.xml") == hits + 1
        assert _row(page, "meduza-mirror") == {
            "actor": "exile media",
            "country": "RU",
            "owner": "Meduza Project",
            "platform": "web (feed)",
            "tags": "exile mirror",
        }
        page.screenshot(path=str(artifacts / "sources.png"), full_page=True)
        # The two refusals answer 422 (the form page again, with its error): Chromium logs those.
        assert [e for e in s.errors if "status of 422" not in e] == [], s.errors
    finally:
        s.close()


def test_readers_see_no_add_form(browser: Any, sbase: str, sworld: SourcesWorld) -> None:
    s = Session(browser, sbase, sworld.tokens["read"])
    try:
        s.goto("/sources")
        assert s.page.locator("#add-source").count() == 0
        assert s.page.locator('tr[data-source="rian"]').count() == 1
    finally:
        s.close()


def test_sources_page_and_form_fit_a_phone(browser: Any, sbase: str, sworld: SourcesWorld) -> None:
    s = Session(browser, sbase, sworld.tokens["analyst"])
    try:
        s.page.set_viewport_size({"width": 390, "height": 844})
        s.goto("/sources")
        width = s.page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, width
        assert s.page.locator("#add-source button[type=submit]").is_visible()
    finally:
        s.close()
