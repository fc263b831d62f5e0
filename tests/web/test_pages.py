"""The web UI in real headless Chromium: pages, charts, graph, acknowledgement, hostile content, CSP."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from narrawatch.read.alerts import list_alerts
from tests.api.world import HOSTILE_ID, World
from tests.web.conftest import Session

pytestmark = pytest.mark.browser

PAGES = [
    ("alerts", "/alerts"),
    ("narratives", "/narratives"),
    ("narrative", "/narratives/n-nuclear-threat"),
    ("search", "/search?q=%D0%B2%D1%8B%D0%B1%D0%BE%D1%80%D1%8B&mode=keyword"),
    ("trace", "/trace?narrative_id=n-nuclear-threat"),
    ("sources", "/sources"),
    ("themes", "/themes"),
]

CANVAS_PAINTED = """(c) => {
  const ctx = c.getContext('2d'); const {width, height} = c;
  if (!width || !height) return 0;
  const px = ctx.getImageData(0, 0, width, height).data; let n = 0;
  for (let i = 3; i < px.length; i += 4) if (px[i] > 0) n++;
  return n;
}"""


def _no_csp_violations(s: Session) -> None:
    bad = [e for e in s.errors if "Content Security Policy" in e or "Refused" in e]
    assert not bad, bad


@pytest.mark.parametrize(("name", "path"), PAGES)
def test_page_loads_after_login(analyst: Session, artifacts: Path, name: str, path: str) -> None:
    resp = analyst.goto(path)
    assert resp.status == 200, path
    assert "script-src 'self'" in resp.headers["content-security-policy"]
    assert analyst.page.locator("header.topbar nav a.active").count() == 1
    analyst.page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
    _no_csp_violations(analyst)
    assert not analyst.errors, analyst.errors


def test_charts_and_graph_render(analyst: Session, artifacts: Path) -> None:
    analyst.goto("/narratives")
    canvases = analyst.page.locator("canvas.timeline-chart")
    assert canvases.count() >= 1
    analyst.page.wait_for_function(
        "() => typeof Chart !== 'undefined' && Chart.instances && Object.keys(Chart.instances).length > 0"
    )
    assert canvases.first.evaluate(CANVAS_PAINTED) > 100
    analyst.goto("/trace?narrative_id=n-nuclear-threat")
    analyst.page.wait_for_selector("#trace-graph[data-rendered]")
    assert int(analyst.page.get_attribute("#trace-graph", "data-rendered") or 0) >= 20
    assert analyst.page.locator("#trace-timeline").evaluate(CANVAS_PAINTED) > 100
    graph_canvas = analyst.page.locator("#trace-graph canvas")
    assert graph_canvas.count() >= 1
    painted = max(graph_canvas.nth(i).evaluate(CANVAS_PAINTED) for i in range(graph_canvas.count()))
    assert painted > 100
    exports = analyst.page.locator("a[href^='/api/v1/trace/export']")
    assert exports.count() == 6
    # The export links work with the session cookie.
    href = exports.first.get_attribute("href")
    r = analyst.context.request.get(analyst.base + str(href))
    assert r.status == 200 and "document_id" in r.text()
    _no_csp_violations(analyst)


def test_acknowledge_an_alert(analyst: Session, world: World, artifacts: Path) -> None:
    analyst.goto("/alerts?unacked=1")
    rows = analyst.page.locator("#alerts-table tbody tr.open")
    before = rows.count()
    assert before >= 2
    alert_id = rows.first.get_attribute("data-alert-id")
    rows.first.locator("button", has_text="Acknowledge").click()
    analyst.page.wait_for_load_state("load")
    row = analyst.page.locator(f"tr[data-alert-id='{alert_id}']")
    assert "acknowledged" in row.locator("td.status").inner_text()
    analyst.goto("/alerts?unacked=1")
    assert analyst.page.locator("#alerts-table tbody tr.open").count() == before - 1
    stored = {a["id"]: a for a in (a.as_dict() for a in list_alerts(world.app))}
    assert stored[str(alert_id)]["acked_by"] == "alice"
    analyst.goto(f"/alerts/{alert_id}")
    assert "acknowledged" in analyst.page.locator("#ack-state").inner_text()


def test_read_role_sees_no_ack_button_and_cannot_post(browser: Any, base_url: str, world: World) -> None:
    s = Session(browser, base_url, world.tokens["read"])
    try:
        s.goto("/alerts")
        assert s.page.locator("button", has_text="Acknowledge").count() == 0
        # A forged form post without the session's CSRF token is refused.
        r = s.context.request.post(base_url + f"/alerts/{world.alert_ids[0]}/ack", form={"csrf": "forged"})
        assert r.status == 403
    finally:
        s.close()


def test_login_rejects_bad_and_revoked_tokens(browser: Any, base_url: str, world: World) -> None:
    for token in ("nw_wrong", world.tokens["revoked"]):
        ctx = browser.new_context()
        page = ctx.new_page()
        page.goto(base_url + "/search")
        page.fill("#token", token)
        page.click("button[type=submit]")
        page.wait_for_load_state("load")
        assert "/login" in page.url and "unknown or revoked" in page.inner_text("main")
        cookies = {c["name"]: c for c in ctx.cookies()}
        assert "nw_session" not in cookies
        ctx.close()


HOSTILE_PAGES = [
    "/search?q=%D0%92%D1%8B%D0%B1%D0%BE%D1%80%D1%8B&mode=keyword",
    f"/documents/{quote(HOSTILE_ID)}",
    "/narratives",
    "/narratives/n-nuclear-threat",
    "/trace?narrative_id=n-nuclear-threat",
    "/sources",
]

INJECTED = """() => ({
  inlineScripts: [...document.querySelectorAll('script:not([src])')].filter(s => s.type !== 'application/json').length,
  imgX: document.querySelectorAll('img').length,
  iframes: document.querySelectorAll('iframe').length,
  svgOnload: document.querySelectorAll('svg[onload], [onerror], [onload]').length,
  jsLinks: [...document.querySelectorAll('a[href]')]
    .filter(a => !/^(https?:|\\/)/i.test(a.getAttribute('href'))).length,
  pwned: document.body.dataset.pwned || null,
  bold: document.querySelectorAll('main b:not(ol.bars b)').length,
})"""


@pytest.mark.parametrize("path", HOSTILE_PAGES)
def test_hostile_content_does_not_execute(analyst: Session, world: World, path: str) -> None:
    resp = analyst.goto(path)
    assert resp.status == 200
    assert "script-src 'self'" in resp.headers["content-security-policy"]
    assert resp.headers["x-content-type-options"] == "nosniff"
    found = analyst.page.evaluate(INJECTED)
    assert found == {
        "inlineScripts": 0,
        "imgX": 0,
        "iframes": 0,
        "svgOnload": 0,
        "jsLinks": 0,
        "pwned": None,
        "bold": found["bold"],
    }, found
    assert analyst.page.locator("main a", has_text="evil").count() == 0 or all(
        (analyst.page.locator("main a", has_text="evil").nth(i).get_attribute("href") or "").startswith(("/", "http"))
        for i in range(analyst.page.locator("main a", has_text="evil").count())
    )
    analyst.page.wait_for_timeout(300)
    assert analyst.dialogs == []
    _no_csp_violations(analyst)


def test_hostile_alert_page_shows_text_not_markup(analyst: Session, world: World, artifacts: Path) -> None:
    evil = next(a for a in (a.as_dict() for a in list_alerts(world.app)) if "onerror" in a["title"])
    analyst.goto(f"/alerts/{evil['id']}")
    text = analyst.page.inner_text("main")
    assert "<img src=x onerror=alert(1)>" in text and "<script>alert(1)</script>" in text
    assert analyst.page.evaluate(INJECTED)["imgX"] == 0
    assert analyst.page.locator("main a[href^='javascript']").count() == 0
    assert analyst.page.locator("span.nolink").count() >= 1  # the javascript: URL is shown as text
    analyst.page.screenshot(path=str(artifacts / "hostile-alert.png"), full_page=True)
    assert analyst.dialogs == []
