"""The pages that read well (issue 14), in Chromium on the API test world plus real posts:

* the alert page shows the matched passage beside the closest exemplar with scores, verdict
  buttons, the outlet's labels from ``config.sources`` (actor, country), title and summary once;
* narrative charts have a real time axis: every day of the window, zero-filled;
* the trace graph of 179 real posts about "Орешник" from 10 channels (tests/data/trace_graph/,
  from ../shared/data/telegram_ru_posts.jsonl) stays readable: lanes per outlet, copies grouped
  into one node with a count, zoom and pan;
* the document page shows its matches (narrative, score, verdict), reach, copies, sightings;
* hostile titles and text stay inert on each of these pages.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from core.matches import Match
from crawlers.normalize import make_document
from narrawatch.read import themes
from narrawatch.read.alerts import show_alert
from narrawatch.read.documents import reach_of
from narrawatch.read.narratives import MatchSummary, filled_timeline
from narrawatch.read.trace import grouped_graph
from narrawatch.server import ApiServer
from tests.api.world import HOSTILE_ID, NOW, World, build_world
from tests.support.posts import telegram_documents
from tests.web.conftest import Session

ORESHNIK = Path(__file__).resolve().parents[1] / "data" / "trace_graph" / "oreshnik_posts.jsonl"
STATE_SOURCE_ACTOR = "state_media"
ORESHNIK_NARRATIVE = "n-oreshnik-strike"


def _oreshnik_documents() -> list[Any]:
    return list(telegram_documents(ORESHNIK, NOW))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with build_world(tmp_path_factory.mktemp("views-world")) as w:
        assert w.app.pipeline is not None
        docs = _oreshnik_documents()
        w.app.pipeline.index_documents(docs)
        # What the matcher stores for a narrative about the strike: one match a post (its first passage).
        w.app.matches.add(
            Match(
                document_id=d.id,
                narrative_id=ORESHNIK_NARRATIVE,
                score=0.6,
                tier="suggest",
                passage_index=0,
                passage_text=d.passages[0].text,
                exemplar="Россия применила баллистическую ракету «Орешник».",
                exemplar_language="ru",
                model="hashing",
                source_id=d.source_id,
                outlet=d.outlet,
                language=d.language,
                published=d.published,
                url=d.url,
                title=d.title,
                similarity=0.6,
                fingerprint=d.fingerprint,
            )
            for d in docs
            if d.passages
        )
        # Label every configured channel as analysts would (state media, RU); the evil site independent.
        labelled = tuple(
            s.model_copy(update={"actor": "independent", "country": "GB", "owner": "<b>Evil</b> Ltd"})
            if s.id == "evil-site"
            else s.model_copy(update={"actor": STATE_SOURCE_ACTOR, "country": "RU"})
            for s in w.app.config.sources
        )
        w.app.config = dataclasses.replace(w.app.config, sources=labelled)
        yield w


@pytest.fixture(scope="module")
def base_url(world: World) -> Iterator[str]:
    server = ApiServer(world.app.config, world.app, port=0).start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


def _alert_with_evidence(world: World) -> dict[str, Any]:
    for alert_id in world.alert_ids:
        shown = show_alert(world.app, alert_id).as_dict()
        if not shown["digest"] and any(e["evidence"] for e in shown["events"]):
            return shown
    raise AssertionError("the world has an alert with evidence")


def _inert(s: Session) -> None:
    found = s.page.evaluate(
        """() => ({
          inline: [...document.querySelectorAll('script:not([src])')].filter(x => x.type !== 'application/json').length,
          img: document.querySelectorAll('main img').length,
          handlers: document.querySelectorAll('[onerror], [onload]').length,
          pwned: document.body.dataset.pwned || null,
        })"""
    )
    assert found == {"inline": 0, "img": 0, "handlers": 0, "pwned": None}, found
    assert s.dialogs == []
    bad = [e for e in s.errors if "Content Security Policy" in e or "Refused" in e]
    assert not bad, bad


# -- read model (no browser) ---------------------------------------------------------------------


def test_timeline_is_zero_filled_between_the_ends() -> None:
    from collections import Counter

    bucket, tl = filled_timeline(Counter({"2024-11-19": 2, "2024-11-23": 1}), date(2024, 11, 18), date(2024, 11, 24))
    assert bucket == "day"
    assert [d for d, _ in tl] == [f"2024-11-{d}" for d in range(18, 25)]
    assert [n for _, n in tl] == [0, 2, 0, 0, 0, 1, 0]
    bucket, tl = filled_timeline(Counter({"2010-01-04": 1, "2024-11-19": 1}), date(2010, 1, 4), date(2024, 11, 19))
    assert bucket == "week" and tl[0] == ("2010-01-04", 1) and sum(n for _, n in tl) == 2


def test_narrative_summary_spans_every_day_of_its_matches(world: World) -> None:
    ms = world.app.matches.matches("n-nuclear-threat")
    s = MatchSummary.of(ms)
    days = [date.fromisoformat(d) for d, _ in s.timeline]
    assert days[0] == ms[0].published.date() and days[-1] == ms[-1].published.date()
    assert all((b - a).days == 1 for a, b in itertools.pairwise(days))
    assert sum(n for _, n in s.timeline) == len(ms)


def test_theme_window_passes_over_stragglers() -> None:
    days = {f"2024-11-{d:02d}": 100 for d in range(1, 31)} | {"2026-09-24": 4}
    assert themes.newest_day(days) == "2024-11-30"  # 4 mis-dated items of 3,004 do not move the window
    live = {f"2024-11-{d:02d}": 100 for d in range(1, 31)} | {"2024-12-20": 400}
    assert themes.newest_day(live) == "2024-12-20"  # a real burst after a gap is data


def test_reach_reads_views_forwards_and_reactions() -> None:
    doc = make_document(
        source_id="tg1",
        kind="telegram",
        url="https://t.me/c1/2",
        title="",
        text="Текст",
        published=NOW,
        fetched=NOW,
        views=12_400,
        extra={"reactions": {"👍": 120, "🔥": 30, "paid": 2}, "forwards": 17},
    )
    assert reach_of(doc) == {
        "views": 12_400,
        "forwards": 17,
        "reactions": 152,
        "by_reaction": {"👍": 120, "🔥": 30, "paid": 2},
    }
    assert reach_of(dataclasses.replace(doc, views=None, extra={})) == {}


def test_grouped_graph_merges_copies_and_their_edges() -> None:
    nodes = [
        {"id": i, "label": f"o{i}", "published": f"2024-11-2{n}T00:00:00+00:00", "first": i == "a"}
        for n, i in enumerate("abcd")
    ]
    edges = [
        {"source": "a", "target": "b", "kind": "forward", "inferred": False},
        {"source": "a", "target": "c", "kind": "similar", "inferred": True},
        {"source": "b", "target": "d", "kind": "similar", "inferred": True},
        {"source": "c", "target": "d", "kind": "similar", "inferred": True},
    ]
    g = grouped_graph(nodes, edges, [{"original": "b", "copies": ["c"]}])
    by = {n["id"]: n for n in g["nodes"]}
    assert set(by) == {"a", "b", "d"} and by["b"]["count"] == 2 and by["b"]["members"] == ["b", "c"]
    merged = {(e["source"], e["target"]): e for e in g["edges"]}
    assert merged[("a", "b")]["weight"] == 2 and merged[("a", "b")]["inferred"] is False
    assert merged[("b", "d")]["weight"] == 2


# -- pages ---------------------------------------------------------------------------------------


@pytest.mark.browser
def test_alert_page_explains_the_match(analyst: Session, world: World, artifacts: Path) -> None:
    alert = _alert_with_evidence(world)
    analyst.goto(f"/alerts/{alert['id']}")
    main = analyst.page.locator("main")
    text = main.inner_text()
    # Title and summary once (a single-event alert's are its event's).
    assert text.count(alert["summary"].split("\n")[0][:60]) == 1, alert["summary"]
    assert analyst.page.locator("main h1").count() == 1 and analyst.page.locator("section.event h2").count() == 0
    card = analyst.page.locator("article.evidence").first
    passage = card.locator("figure.matched blockquote").inner_text()
    exemplar = card.locator("figure.exemplar blockquote").inner_text()
    ev = alert["events"][0]["evidence"][0]
    assert exemplar == ev["exemplar"] and passage.strip()
    scores = card.locator(".scores").inner_text()
    assert f"score {ev['score']:.2f}" in scores and f"similarity {ev['similarity']:.2f}" in scores
    assert card.locator("button", has_text="Confirm").count() == 1
    assert card.locator("button", has_text="Reject").count() == 1
    assert card.locator(".badge.actor").inner_text() == "state media"
    assert card.locator(".badge.country").inner_text() == "RU"
    analyst.page.screenshot(path=str(artifacts / "pages-alert.png"), full_page=True)
    _inert(analyst)


@pytest.mark.browser
def test_hostile_alert_labels_stay_text(analyst: Session, world: World) -> None:
    evil = next(a for a in (show_alert(world.app, i).as_dict() for i in world.alert_ids) if "onerror" in a["title"])
    analyst.goto(f"/alerts/{evil['id']}")
    assert "<script>alert(1)</script>" in analyst.page.inner_text("main h1")
    owner = analyst.page.locator("article.evidence .owner").first.inner_text()
    assert owner == "<b>Evil</b> Ltd"
    assert analyst.page.locator("article.evidence .badge.actor").first.inner_text() == "independent"
    _inert(analyst)


@pytest.mark.browser
def test_narrative_charts_have_a_day_for_every_day(analyst: Session, world: World) -> None:
    ms = world.app.matches.matches("n-nuclear-threat")
    span = (ms[-1].published.date() - ms[0].published.date()).days + 1
    analyst.goto("/narratives/n-nuclear-threat")
    canvas = analyst.page.locator("canvas.timeline-chart")
    analyst.page.wait_for_selector("canvas.timeline-chart[data-days]")
    assert int(canvas.get_attribute("data-days") or 0) == span
    assert canvas.get_attribute("data-first") == ms[0].published.date().isoformat()
    analyst.goto("/narratives")
    analyst.page.wait_for_selector("canvas.timeline-chart[data-days]")
    spans = {c.get_attribute("data-first") for c in analyst.page.locator("canvas.timeline-chart").all()}
    assert len(spans) == 1  # one time axis for every card on the dashboard
    _inert(analyst)


@pytest.mark.browser
def test_trace_graph_of_60_plus_real_posts_stays_readable(analyst: Session, artifacts: Path) -> None:
    analyst.goto(f"/trace?narrative_id={ORESHNIK_NARRATIVE}&limit=500")
    analyst.page.wait_for_selector("#trace-graph[data-rendered]", timeout=30_000)
    box = analyst.page.locator("#trace-graph")
    items = int(box.get_attribute("data-rendered") or 0)
    grouped = int(box.get_attribute("data-grouped") or 0)
    assert items >= 60, items
    assert 0 < grouped < items  # real reposts collapse into nodes with a count
    assert int(box.get_attribute("data-lanes") or 0) >= 5
    assert box.get_attribute("data-mode") == "grouped"
    counts = analyst.page.evaluate(
        "() => window.narrawatchGraph().nodes().filter(n => /^\\u00d7\\d+$/.test(n.data('label'))).length"
    )
    assert counts >= 1
    # Nodes of one lane are ordered by time left to right (x proportional to publication time).
    ordered = analyst.page.evaluate(
        """() => {
          const cy = window.narrawatchGraph();
          const g = JSON.parse(document.getElementById('trace-data').textContent).graph.grouped;
          const xs = g.nodes.slice().sort((a, b) => Date.parse(a.published) - Date.parse(b.published))
            .map(n => cy.getElementById(n.id).position('x'));
          return xs.every((x, i) => i === 0 || x >= xs[i - 1] - 0.01);
        }"""
    )
    assert ordered
    before = analyst.page.evaluate("() => window.narrawatchGraph().zoom()")
    analyst.page.click("#graph-zoom-in")
    after = analyst.page.evaluate("() => window.narrawatchGraph().zoom()")
    assert after > before
    analyst.page.click("#graph-fit")
    analyst.page.uncheck("#graph-group")
    assert box.get_attribute("data-mode") == "items" and int(box.get_attribute("data-drawn") or 0) == items
    analyst.page.check("#graph-group")
    analyst.page.screenshot(path=str(artifacts / "pages-trace.png"), full_page=True)
    _inert(analyst)


@pytest.mark.browser
def test_document_page_shows_matches_copies_and_versions(analyst: Session, world: World, artifacts: Path) -> None:
    m = world.app.matches.matches("n-nuclear-threat")[-1]
    analyst.goto(f"/documents/{quote(m.document_id, safe='')}")
    row = analyst.page.locator(f"#doc-matches tr#match-{m.id}")
    assert row.count() == 1
    assert "Nuclear threat" in row.inner_text() and f"{m.score:.2f}" in row.inner_text()
    assert row.locator("button", has_text="Confirm").count() == 1
    assert analyst.page.locator("#doc-copies").count() == 1 and analyst.page.locator("#doc-sightings").count() == 1
    assert analyst.page.locator("#doc-versions").count() == 1
    assert analyst.page.locator(".doc-meta .badge.actor").inner_text() == "state media"
    analyst.page.screenshot(path=str(artifacts / "pages-document.png"), full_page=True)
    _inert(analyst)


@pytest.mark.browser
def test_document_page_of_a_reposted_post_lists_its_copies(analyst: Session, world: World) -> None:
    from narrawatch.read.documents import document_context

    docs = _oreshnik_documents()
    with_copies = None
    for d in docs:
        ctx = document_context(world.app, d.id)
        if len(ctx.copies) > 1:
            with_copies = (d, ctx)
            break
    assert with_copies is not None, "real reposts among the Орешник posts"
    d, ctx = with_copies
    analyst.goto(f"/documents/{quote(d.id, safe='')}")
    items = analyst.page.locator("#doc-copies li")
    assert items.count() == len(ctx.copies)
    assert analyst.page.locator("#doc-copies li.this").count() == 1
    _inert(analyst)


@pytest.mark.browser
def test_hostile_document_page_stays_inert(analyst: Session) -> None:
    analyst.goto(f"/documents/{quote(HOSTILE_ID, safe='')}")
    assert "<script>alert(1)</script>" in analyst.page.inner_text("main h1")
    assert analyst.page.locator("#doc-matches tr").count() >= 2  # header + the hostile match
    _inert(analyst)
