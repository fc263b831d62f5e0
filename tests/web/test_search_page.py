"""The search page in real headless Chromium (issue 14): total, facets that narrow, sort, pages
that end, copies grouped under their first appearance, errors that say what is wrong.

Its own small world: the planted documents of ``tests/contract/test_query_syntax.py`` (made-up
words, so every count is known) in an embedded index, served by a real uvicorn thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.settings import load_config
from index.local import EmbeddedIndex
from narrawatch.app import App
from narrawatch.builtins import register_builtins
from narrawatch.http.tokens import TokenStore
from narrawatch.server import ApiServer
from tests.contract import embed
from tests.contract.test_query_syntax import DOCS, EMB, PAGED
from tests.web.conftest import Session

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def search_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    register_builtins()
    cfg = tmp_path_factory.mktemp("search-world") / "config"
    cfg.mkdir()
    (cfg / "service.yaml").write_text("embedding: {model: hashing}\n", encoding="utf-8")
    (cfg / "sources.yaml").write_text(
        "sources:\n"
        + "".join(f'  - {{id: {s}, kind: feed, url: "http://127.0.0.1:9/{s}"}}\n' for s in ("src-a", "src-b", "src-c")),
        encoding="utf-8",
    )
    config = load_config(cfg)
    index = EmbeddedIndex(config.index_path, EMB.space)
    index.upsert(embed(DOCS, EMB))
    app = App(config, index=index, embedder=EMB)
    with TokenStore.for_config(config) as ts:
        token = ts.create("alice", "analyst")
    server = ApiServer(config, app, port=0).start()
    try:
        yield f"http://127.0.0.1:{server.port}", token
    finally:
        server.stop()
        app.close()


@pytest.fixture()
def session(browser: Any, search_world: tuple[str, str]) -> Iterator[Session]:
    base, token = search_world
    s = Session(browser, base, token)
    yield s
    s.close()


def _ids(page: Any) -> list[str]:
    return [str(x) for x in page.locator("li.result").evaluate_all("els => els.map(e => e.dataset.documentId)")]


def _total(page: Any) -> tuple[int, int]:
    el = page.locator("#search-total")
    return int(el.get_attribute("data-total")), int(el.get_attribute("data-documents"))


def test_search_page_total_facets_sort_pages_and_copies(session: Session, artifacts: Path) -> None:
    page = session.page
    session.goto("/search")
    page.fill("input[name=q]", "pagetok OR blorptide")
    page.select_option("select[name=mode]", "keyword")
    page.click("form.searchform button[type=submit]")
    page.wait_for_load_state("load")
    assert _total(page) == (PAGED + 1, PAGED + 3)  # the three copies of one story are one result
    assert f"{PAGED + 1} results ({PAGED + 3} documents with copies)" in page.locator("#search-total").inner_text()

    # copies: the first appearance is shown, its two copies folded under it
    session.goto("/search?q=blorptide&mode=keyword")
    assert _ids(page) == ["u:d7"]
    copies = page.locator("details.copies")
    assert copies.get_attribute("data-count") == "2" and "2 copies" in copies.inner_text()
    copies.locator("summary").click()
    assert copies.locator("li").count() == 2

    # a facet narrows the search to its count
    session.goto("/search?q=pagetok+OR+blorptide&mode=keyword")
    link = page.locator('.facet[data-facet="source"] a[data-value="src-c"]')
    expected = int(link.get_attribute("data-count"))
    link.click()
    page.wait_for_load_state("load")
    assert _total(page)[1] == expected == 1
    assert page.locator('.facet[data-facet="source"] a.active').inner_text() == "src-c"

    # sort by date: newest first, then oldest first
    session.goto("/search?q=pagetok&mode=keyword")
    page.select_option("select[name=sort]", "newest")
    page.click("form.searchform button[type=submit]")
    page.wait_for_load_state("load")
    assert _ids(page)[:3] == [f"u:p{i:02d}" for i in (PAGED - 1, PAGED - 2, PAGED - 3)]
    session.goto("/search?q=pagetok&mode=keyword&sort=oldest")
    assert _ids(page)[:2] == ["u:p00", "u:p01"]

    # pages end: 23 results at 20 a page are 2 pages; Next leads to the last one and stops there
    session.goto("/search?q=pagetok&mode=keyword")
    assert len(_ids(page)) == 20
    page.click("nav.pager a[rel=next]")
    page.wait_for_load_state("load")
    assert len(_ids(page)) == PAGED - 20 and page.locator("nav.pager a[rel=next]").count() == 0
    past = session.goto("/search?q=pagetok&mode=keyword&page=7")
    assert past.status == 200 and _ids(page) == [] and "the last page is 2" in page.inner_text("ol.results")
    session.goto("/search?q=pagetok+OR+blorptide&mode=keyword")
    page.screenshot(path=str(artifacts / "search-results.png"), full_page=True)
    assert not session.errors and not session.dialogs


def test_search_page_explains_unknown_values_and_syntax_errors(session: Session) -> None:
    page = session.page
    resp = session.goto("/search?q=zorb+source:nope")
    assert resp.status == 400
    assert "unknown source 'nope'; known: src-a, src-b, src-c" in page.inner_text("[role=alert]")
    resp = session.goto("/search?q=%22zorb")
    assert resp.status == 400 and "unclosed quote at position 1" in page.inner_text("[role=alert]")
