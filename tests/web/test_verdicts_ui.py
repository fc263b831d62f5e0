"""Verdict buttons in real headless Chromium: an analyst rejects a match on the alert page; readers only see."""

from __future__ import annotations

from typing import Any

import pytest

from core.matches import match_id
from monitors.store import MatchStore
from monitors.verdicts import get_verdict
from narrawatch.read.alerts import show_alert
from tests.api.world import World
from tests.web.conftest import Session

pytestmark = pytest.mark.browser

NOTE = "<b>reports</b> on the strike, does not assert the claim"


def _alert_with_evidence(world: World) -> tuple[str, list[str]]:
    for alert_id in world.alert_ids:
        shown = show_alert(world.app, alert_id).as_dict()
        ids = [match_id(m["document_id"], m["narrative_id"]) for e in shown["events"] for m in e["evidence"]]
        if len(ids) >= 2:
            return alert_id, ids
    raise AssertionError("the fixture world has an alert with evidence")


def _no_csp_violations(s: Session) -> None:
    bad = [e for e in s.errors if "Content Security Policy" in e or "Refused" in e]
    assert not bad, bad


def test_analyst_rejects_a_match_on_the_alert_page(analyst: Session, world: World) -> None:
    alert_id, ids = _alert_with_evidence(world)
    analyst.goto(f"/alerts/{alert_id}")
    card = analyst.page.locator(f"article#match-{ids[0]}").first
    assert card.locator(".verdict .badge").inner_text() == "no verdict"
    assert card.locator("button", has_text="Confirm").count() == 1
    card.locator("input[name=note]").fill(NOTE)
    card.locator("button", has_text="Reject").click()
    analyst.page.wait_for_load_state("load")
    assert analyst.page.url.startswith(analyst.base + f"/alerts/{alert_id}")
    card = analyst.page.locator(f"article#match-{ids[0]}").first
    assert card.locator(".verdict .badge").inner_text() == "rejected"
    assert card.locator(".verdict .analyst").inner_text() == "alice"
    assert card.locator(".verdict q.note").inner_text() == NOTE  # shown as text, not markup
    assert card.locator(".verdict q.note b").count() == 0
    assert "verdict-rejected" in (card.get_attribute("class") or "")
    with MatchStore(world.config.data_dir / "matches.sqlite") as store:
        v = get_verdict(store, ids[0])
        assert v is not None and (v.verdict, v.analyst, v.note) == ("rejected", "alice", NOTE)
        assert ids[0] not in {m.id for m in store.matches()}
    # Then confirm another one from the narrative page.
    narrative = show_alert(world.app, alert_id).as_dict()["events"][0]["narrative_id"]
    analyst.goto(f"/narratives/{narrative}?page_size=100")
    other = analyst.page.locator(f"article#match-{ids[1]}")
    assert other.count() == 1
    other.locator("button", has_text="Confirm").click()
    analyst.page.wait_for_load_state("load")
    assert analyst.page.url.startswith(analyst.base + f"/narratives/{narrative}")
    assert analyst.page.locator(f"article#match-{ids[1]} .verdict .badge").inner_text() == "confirmed"
    # The rejected one is still listed there, marked.
    assert analyst.page.locator(f"article#match-{ids[0]} .verdict .badge").inner_text() == "rejected"
    _no_csp_violations(analyst)
    assert not analyst.errors, analyst.errors


def test_reader_sees_verdicts_but_no_buttons(browser: Any, base_url: str, world: World) -> None:
    alert_id, ids = _alert_with_evidence(world)
    s = Session(browser, base_url, world.tokens["read"])
    try:
        s.goto(f"/alerts/{alert_id}")
        assert s.page.locator("article.evidence .verdict").count() >= len(set(ids))
        assert s.page.locator("button", has_text="Confirm").count() == 0
        assert s.page.locator("button", has_text="Reject").count() == 0
        assert s.page.locator("form.verdict-form").count() == 0
        s.goto("/narratives/n-nuclear-threat")
        assert s.page.locator("article.evidence .verdict").count() >= 1
        assert s.page.locator("form.verdict-form").count() == 0
        # A forged form post (not the session's CSRF token) is refused and records nothing.
        with MatchStore(world.config.data_dir / "matches.sqlite") as store:
            before = get_verdict(store, ids[-1])
        r = s.context.request.post(
            base_url + f"/matches/{ids[-1]}/verdict", form={"csrf": "forged", "verdict": "rejected"}
        )
        assert r.status == 403
        with MatchStore(world.config.data_dir / "matches.sqlite") as store:
            assert get_verdict(store, ids[-1]) == before
        _no_csp_violations(s)
    finally:
        s.close()
