"""The ``query`` detector (saved searches) on stored real posts: new items only, scope, dry run.

The world (tests/api/world.py) holds 241 real Russian Telegram posts in an embedded index; the
feed of "new items" is written the way the monitoring hook writes it (``record_indexed``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from alerts.rules import AlertEngine, rule_scope, run_rules
from core.documents import SearchFilters
from core.errors import ConflictError, InvalidRequestError
from monitors.query_detector import QueryDetector, query_words
from narrawatch.read.rules import create_rule, delete_rule, dry_run_rule, list_rules, update_rule
from narrawatch.rules_store import RuleViews, effective_alerts
from tests.api.world import NOW, World, build_world

WORD = re.compile(r"орешник", re.IGNORECASE)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with build_world(tmp_path_factory.mktemp("rules-query")) as w:
        yield w


def texts(w: World) -> dict[str, str]:
    return {d.id: d.title + " " + d.text for d in w.app.index.iter_documents(SearchFilters())}


def one_pass(w: World, rule_id: str) -> list[object]:
    cfg = effective_alerts(w.app)
    views = RuleViews(w.app.matches, w.app)
    events = [e for e in run_rules(cfg, views, [], NOW, {}, sources=w.config.sources) if e.rule == rule_id]
    views.commit(NOW)
    return events


def test_query_words_drop_operators_fields_and_exclusions() -> None:
    assert query_words('"ядерный удар" OR Орешник -учения source:tg1 NOT фейк') == ["ядерный", "удар", "орешник"]


def test_new_items_only_never_the_back_catalogue(world: World) -> None:
    app = world.app
    by_id = texts(world)
    expected_all = {i for i, t in by_id.items() if WORD.search(t)}
    assert len(expected_all) >= 10  # the timeline's Oreshnik posts

    create_rule(app, {"id": "watch-oreshnik", "detector": "query", "options": {"query": "Орешник"}}, by="test")
    assert one_pass(world, "watch-oreshnik") == []  # everything was indexed before the rule existed

    fresh = sorted(by_id)[:120] + sorted(expected_all)[:4]  # a batch the index just acknowledged
    app.rules.record_indexed(fresh)
    events = one_pass(world, "watch-oreshnik")
    got = {e.evidence[0].document_id for e in events}  # type: ignore[attr-defined]
    assert got == {i for i in fresh if WORD.search(by_id[i])}
    assert len(got) >= 4
    for e in events:
        m = e.evidence[0]  # type: ignore[attr-defined]
        assert m.exemplar == "Орешник" and m.score > 0 and m.keywords
        assert any(k.startswith("орешник") for k in m.keywords)
        assert m.passage_text and e.key == f"query|{m.document_id}"  # type: ignore[attr-defined]
    assert one_pass(world, "watch-oreshnik") == []  # the cursor moved past them

    # re-alert and "never twice": the engine enqueues each item once
    cfg = effective_alerts(app)
    engine = AlertEngine(cfg, app.outbox, sources=world.config.sources)
    made = engine.process(events, NOW)  # type: ignore[arg-type]
    assert len(made) == len(events)
    assert engine.process(events, NOW) == []  # type: ignore[arg-type]
    delete_rule(app, "watch-oreshnik", by="test")


def test_yaml_style_rule_starts_at_the_feed_end(world: World) -> None:
    app = world.app
    app.rules.record_indexed(sorted(texts(world)))  # old items in the feed before the rule ran
    create_rule(app, {"id": "late", "detector": "query", "options": {"query": "Орешник"}}, by="t")
    assert one_pass(world, "late") == []
    delete_rule(app, "late", by="t")


def test_min_score_and_scope_by_actor(world: World) -> None:
    app = world.app
    by_id = texts(world)
    hits = [i for i, t in by_id.items() if WORD.search(t)]
    docs = {d.id: d for d in app.index.iter_documents(SearchFilters(document_ids=tuple(hits)))}
    state_source = sorted({d.source_id for d in docs.values()})[0]
    sources = tuple(
        s.model_copy(update={"actor": "state_media", "country": "RU"}) if s.id == state_source else s
        for s in world.config.sources
    )
    create_rule(
        app,
        {"id": "state-only", "detector": "query", "options": {"query": "Орешник"}, "actors": ["state_media"]},
        by="t",
    )
    app.rules.record_indexed(hits)
    cfg = effective_alerts(app)
    rule = next(r for r in cfg.rules if r.id == "state-only")
    assert rule_scope(rule, sources) == frozenset({state_source})
    assert rule_scope(rule, None) == frozenset()  # no metadata: the scope fails closed
    views = RuleViews(app.matches, app)
    events = [e for e in run_rules(cfg, views, [], NOW, {}, sources=sources) if e.rule == "state-only"]
    assert events and {e.source_id for e in events} == {state_source}
    assert len(events) == sum(1 for d in docs.values() if d.source_id == state_source)

    high = update_rule(
        app,
        "state-only",
        {"detector": "query", "options": {"query": "Орешник", "min_score": 999}, "actors": ["state_media"]},
        by="t",
    )
    assert high.as_dict()["options"]["min_score"] == 999
    dry = dry_run_rule(app, "state-only", NOW.replace(year=2020), now=NOW)
    assert dry.events == ()  # nothing reaches a keyword score of 999
    delete_rule(app, "state-only", by="t")


def test_dry_run_over_stored_documents_raises_nothing(world: World) -> None:
    app = world.app
    before = app.outbox.counts()
    rule = create_rule(
        app, {"id": "dry", "detector": "query", "options": {"query": "Орешник", "group": "pass"}}, by="t"
    ).stored.rule
    result = dry_run_rule(app, rule, NOW.replace(year=2020), now=NOW).as_dict()
    expected = {i for i, t in texts(world).items() if WORD.search(t)}
    assert len(result["events"]) == 1 and len(result["alerts"]) == 1
    event = result["events"][0]
    assert {e["document_id"] for e in event["evidence"]} <= expected
    assert len(event["evidence"]) == 10  # max_evidence
    assert event["evidence"][0]["query"] == "Орешник" and event["evidence"][0]["passage"]
    assert app.outbox.counts() == before  # a dry run enqueues nothing
    assert app.rules.cursor("dry") is not None and app.rules.cursor("dry") == app.rules.last_seq()
    delete_rule(app, "dry", by="t")


def test_validation_and_read_only_yaml_rules(world: World) -> None:
    app = world.app
    with pytest.raises(InvalidRequestError, match=r"options\.query"):
        create_rule(app, {"id": "bad", "detector": "query", "options": {}}, by="t")
    with pytest.raises(InvalidRequestError, match=r"detector: unknown detector"):
        create_rule(app, {"id": "bad", "detector": "nope"}, by="t")
    with pytest.raises(InvalidRequestError, match=r"channels\[0\]: unknown channel"):
        create_rule(app, {"id": "bad", "detector": "query", "options": {"query": "x"}, "channels": ["pager"]}, by="t")
    with pytest.raises(InvalidRequestError, match="actors"):
        create_rule(app, {"id": "bad", "detector": "query", "options": {"query": "x"}, "actors": ["spies"]}, by="t")
    with pytest.raises(ConflictError, match="YAML"):
        create_rule(app, {"id": "spike", "detector": "query", "options": {"query": "x"}}, by="t")
    with pytest.raises(ConflictError):
        delete_rule(app, "spike", by="t")
    origins = {r.stored.rule.id: r.stored.origin for r in list_rules(app)}
    assert origins["spike"] == "yaml"


def test_detector_is_registered_with_its_options() -> None:
    from core.events import DETECTORS

    kind = DETECTORS.get("query")
    assert kind.build is QueryDetector
    assert "query" in kind.options.model_json_schema()["required"]
