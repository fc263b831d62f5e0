"""The pages at a phone's width (390 x 844, Chromium): every nav link visible and inside the
viewport, nothing wider than the screen (issue 14)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.world import World
from tests.web.conftest import Session

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 390, 844

PAGES = [
    "/alerts",
    "/narratives",
    "/narratives/n-nuclear-threat",
    "/search?q=%D0%B2%D1%8B%D0%B1%D0%BE%D1%80%D1%8B&mode=keyword",
    "/trace?narrative_id=n-nuclear-threat",
    "/themes",
    "/sources",
]

LAYOUT = """() => {
  const vw = window.innerWidth;
  const links = [...document.querySelectorAll('header.topbar nav a')].map(a => {
    const r = a.getBoundingClientRect(); const s = getComputedStyle(a);
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    return {text: a.textContent.trim(), left: r.left, right: r.right, top: r.top, bottom: r.bottom,
            width: r.width, height: r.height, visible: s.visibility !== 'hidden' && s.display !== 'none'
            && parseFloat(s.opacity) > 0, onTop: !!hit && (hit === a || a.contains(hit))};
  });
  const wide = [...document.querySelectorAll('body *')].filter(e => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.right > vw + 1 && getComputedStyle(e).position !== 'fixed';
  }).filter(e => !e.closest('table.grid, .graph, canvas')).slice(0, 5).map(e => e.tagName + '.' + e.className);
  return {vw, scrollWidth: document.documentElement.scrollWidth, bodyWidth: document.body.scrollWidth, links, wide};
}"""


@pytest.fixture()
def phone(browser: Any, base_url: str, world: World) -> Iterator[Session]:
    s = Session(browser, base_url, world.tokens["analyst"])
    s.page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    yield s
    s.close()


@pytest.mark.parametrize("path", PAGES)
def test_nav_links_visible_and_no_horizontal_overflow_at_390px(phone: Session, artifacts: Path, path: str) -> None:
    resp = phone.goto(path)
    assert resp.status == 200
    found = phone.page.evaluate(LAYOUT)
    phone.page.screenshot(path=str(artifacts / f"mobile{path.split('?')[0].replace('/', '-')}.png"), full_page=False)
    assert found["vw"] == WIDTH
    names = [link["text"] for link in found["links"]]
    assert names == ["Alerts", "Narratives", "Search", "Trace", "Themes", "Sources", "Rules"]
    for link in found["links"]:
        assert link["visible"] and link["width"] > 0 and link["height"] > 0, link
        assert link["left"] >= 0 and link["right"] <= WIDTH, link
        assert link["top"] >= 0 and link["bottom"] <= HEIGHT, link
        assert link["onTop"], link  # not covered by anything (e.g. the sign-out form)
    assert found["scrollWidth"] <= WIDTH, found
    assert found["bodyWidth"] <= WIDTH, found
    assert not found["wide"], found["wide"]


def test_the_sign_out_button_stays_reachable_at_390px(phone: Session) -> None:
    phone.goto("/alerts")
    button = phone.page.locator("header.topbar form.who button")
    box = button.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= WIDTH
