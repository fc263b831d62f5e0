"""The rules page in real headless Chromium: list, test a saved search, save, edit, delete; readers
see no form and cannot post one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.world import World
from tests.web.conftest import Session

pytestmark = pytest.mark.browser


@pytest.fixture()
def reader(browser: Any, base_url: str, world: World) -> Iterator[Session]:
    s = Session(browser, base_url, world.tokens["read"])
    yield s
    s.close()


def test_saved_search_lifecycle(analyst: Session, world: World, artifacts: Path) -> None:
    p = analyst.page
    assert analyst.goto("/rules").status == 200
    assert p.locator("header.topbar nav a.active").inner_text() == "Rules"
    spike = p.locator("#rule-spike")
    assert "YAML" in spike.inner_text() and spike.locator(".delete-form").count() == 0

    p.fill("#rule-id", "watch-oreshnik")
    p.fill("#rule-query", "Орешник")
    p.fill("input[name=since]", "2020-01-01")  # the fixture's posts are from 2024
    p.click("#rule-test-button")
    p.wait_for_load_state("load")
    result = p.locator("#rule-test")
    assert "Nothing was raised or sent" in result.inner_text()
    snippets = result.locator(".snippet").all_inner_texts()
    assert snippets and all("орешник" in s.lower() for s in snippets), [
        s for s in snippets if "орешник" not in s.lower()
    ]
    assert p.locator("#rule-watch-oreshnik").count() == 0  # testing saved nothing
    assert p.input_value("#rule-query") == "Орешник"  # the form keeps what was tested
    p.screenshot(path=str(artifacts / "rules.png"), full_page=True)

    p.click("#rule-save")
    p.wait_for_url("**/rules?notice=saved")
    row = p.locator("#rule-watch-oreshnik")
    assert "saved here" in row.inner_text() and "Орешник" in row.inner_text() and "alice" in row.inner_text()
    assert [r.rule.id for r in world.app.rules.rules()] == ["watch-oreshnik"]

    row.locator(".edit-link").click()
    p.wait_for_load_state("load")
    assert p.input_value("#rule-query") == "Орешник"
    p.select_option("select[name=severity]", "critical")
    p.click("#rule-save")
    p.wait_for_url("**/rules?notice=saved")
    assert "critical" in p.locator("#rule-watch-oreshnik").inner_text()

    link = p.locator("#rule-watch-oreshnik .test-link")
    assert link.get_attribute("href") == "/rules/watch-oreshnik/test"
    analyst.goto("/rules/watch-oreshnik/test?since=2020-01-01")
    assert "Test of watch-oreshnik" in p.locator("#rule-test h2").inner_text()
    assert p.locator("#rule-test .snippet").count() > 0

    p.locator("#rule-watch-oreshnik .delete-form button").click()
    p.wait_for_url("**/rules?notice=deleted")
    assert p.locator("#rule-watch-oreshnik").count() == 0
    assert world.app.rules.rules() == []
    assert not analyst.errors and not analyst.dialogs, (analyst.errors, analyst.dialogs)


def test_bad_rule_shows_the_problem_and_keeps_the_form(analyst: Session) -> None:
    p = analyst.page
    analyst.goto("/rules")
    p.fill("#rule-id", "bad")
    p.fill("#rule-query", "Орешник")
    p.fill("input[name=countries]", "Russia")
    p.click("#rule-save")
    p.wait_for_load_state("load")
    assert "countries" in p.locator("#rules-error").inner_text()
    assert p.input_value("#rule-query") == "Орешник"
    assert p.locator("#rule-bad").count() == 0


def test_readers_see_no_form_and_cannot_post(reader: Session, base_url: str) -> None:
    reader.goto("/rules")
    assert reader.page.locator("#rule-form").count() == 0
    assert reader.page.locator("#rules-table").count() == 1
    post = (
        "async ([url, csrf]) => { const r = await fetch(url, {method: 'POST', body: new URLSearchParams("
        "{csrf, id: 'sneaky', query: 'x', action: 'save'})}); return [r.status, await r.text()]; }"
    )
    csrf = reader.page.locator("form.who input[name=csrf]").input_value()  # the session's own token
    status, text = reader.page.evaluate(post, [base_url + "/rules", csrf])
    assert status == 403 and "analyst" in text  # the role, not the CSRF check, refuses it
    status, _ = reader.page.evaluate(post, [base_url + "/rules", "forged"])
    assert status == 403
