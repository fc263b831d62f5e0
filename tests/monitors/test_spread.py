"""Spread tracing on a fixture world of real Telegram text with known truth (tests/data/trace/ORIGIN.md).

Fast tests use HashingEmbedder and synthetic items; the slow ones index the world with the real
default model (use-multilingual-v3) into a real EmbeddedIndex.
"""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from core.documents import Document
from core.errors import UnknownNameError
from core.matches import Match
from index.embed import Embedder, HashingEmbedder
from index.local import EmbeddedIndex
from monitors.spread import (
    TraceItem,
    TraceQuery,
    TraceResult,
    export_graph,
    export_items_csv,
    export_items_jsonl,
    render_timeline,
    trace,
    url_document_ids,
)
from monitors.spread_graph import analyse
from monitors.store import MatchStore

from .spread_world import build_index, load_world

TRUE_ROLES = {"original", "copy", "forward", "link", "translation", "paraphrase"}


@pytest.fixture(scope="module")
def world() -> list[tuple[str, Document]]:
    return load_world()


def ids_by_role(world: list[tuple[str, Document]]) -> dict[str, str]:
    return {role: d.id for role, d in world if role in TRUE_ROLES}


def roles_of(result: TraceResult, world: list[tuple[str, Document]]) -> list[str]:
    role = {d.id: r for r, d in world}
    return [role[i.document_id] for i in result.items]


# -- fast: synthetic items through the graph logic ---------------------------------------------------

T0 = datetime(2024, 11, 20, 6, 0, tzinfo=UTC)


def item(doc_id: str, outlet: str, hours: float, language: str = "ru", **kw: object) -> TraceItem:
    return TraceItem(
        document_id=doc_id,
        url=f"https://t.me/{outlet}/{len(doc_id)}",
        title=doc_id,
        source_id=outlet,
        outlet=f"t.me/{outlet}",
        platform="telegram",
        kind="telegram",
        language=language,
        published=T0 + timedelta(hours=hours),
        similarity=0.9,
        passage_index=0,
        passage_text=doc_id,
        **kw,  # type: ignore[arg-type]
    )


def test_inferred_edges_skip_same_outlet_and_respect_the_window() -> None:
    items = [item("a", "chan_a", 0), item("a2", "chan_a", 1), item("b", "chan_b", 2), item("late", "chan_c", 100)]
    sims = np.full((4, 4), 0.9, np.float32)
    res = analyse(
        items,
        threshold=0.6,
        translation_threshold=0.7,
        copy_threshold=0.8,
        window=timedelta(hours=72),
        pair_similarity=sims,
    )
    edges = {(e.source, e.target): e for e in res.edges}
    assert set(edges) == {("a", "b")}  # a2: same outlet as a; late: outside 72 h of everything
    assert edges[("a", "b")].inferred and edges[("a", "b")].kind == "inferred"
    assert edges[("a", "b")].lag_seconds == 2 * 3600
    assert res.timeline.bucket == "day"  # 100 h span >= 3 days
    assert res.timeline.total == (3, 0, 0, 0, 1)


def test_explicit_edges_win_and_forward_resolves_by_channel_name() -> None:
    items = [
        item("orig", "chan_a", 0),
        item("fwd", "chan_b", 1, forwarded_from="@chan_a"),
        item("site", "news", 2, links=("https://t.me/s/chan_a/4/",)),
    ]
    items[2] = replace(items[2], platform="site", kind="site", url="https://news.example/x", outlet="news.example")
    sims = np.full((3, 3), 0.95, np.float32)
    res = analyse(
        items,
        threshold=0.6,
        translation_threshold=0.7,
        copy_threshold=0.8,
        window=timedelta(hours=72),
        pair_similarity=sims,
    )
    kinds = {(e.source, e.target): (e.kind, e.inferred) for e in res.edges}
    assert kinds == {("orig", "fwd"): ("forward", False), ("orig", "site"): ("link", False)}
    assert res.copy_groups[0].members == ("orig", "fwd")  # a forward is a copy
    assert res.first.by_platform == {"telegram": "orig", "site": "site"}


def test_translation_needs_the_closest_earlier_item_in_another_language() -> None:
    items = [item("ru1", "a", 0), item("en1", "b", 1, language="en"), item("ru2", "c", 2)]
    sims = np.array([[1, 0.8, 0.75], [0.8, 1, 0.72], [0.75, 0.72, 1]], np.float32)
    res = analyse(
        items,
        threshold=0.6,
        translation_threshold=0.7,
        copy_threshold=0.8,
        window=timedelta(hours=72),
        pair_similarity=sims,
    )
    assert [g.as_dict() for g in res.translation_groups] == [
        {
            "original": "ru1",
            "language": "ru",
            "translations": [{"document_id": "en1", "language": "en", "similarity": 0.8}],
        }
    ]


def test_query_validation_and_url_ids() -> None:
    with pytest.raises(ValueError):
        TraceQuery()
    with pytest.raises(ValueError):
        TraceQuery(claim="x", url="https://t.me/a/1")
    assert url_document_ids("https://t.me/s/Moskva_Tretiy_Rim/26934?single")[0] == "tg:moskva_tretiy_rim/26934"


# -- fast: the fixture world with HashingEmbedder ------------------------------------------------------


@pytest.fixture(scope="module")
def hashing_index(tmp_path_factory: pytest.TempPathFactory, world: list[tuple[str, Document]]) -> EmbeddedIndex:
    index = build_index(tmp_path_factory.mktemp("trace-hash") / "ix", HashingEmbedder(), [d for _, d in world])
    yield index  # type: ignore[misc]
    index.close()


def test_hashing_trace_of_a_document(hashing_index: EmbeddedIndex, world: list[tuple[str, Document]]) -> None:
    ids = ids_by_role(world)
    res = trace(hashing_index, HashingEmbedder(), TraceQuery(document_id=ids["original"]))
    roles = roles_of(res, world)
    assert {"original", "copy", "forward"} <= set(roles) <= TRUE_ROLES
    assert res.first.overall == ids["original"] and res.seed_document_id == ids["original"]
    edges = {(e.target, e.kind, e.inferred) for e in res.edges}
    assert (ids["forward"], "forward", False) in edges
    assert (ids["copy"], "inferred", True) in edges
    json.dumps(res.as_dict(), ensure_ascii=False)


def test_unknown_document_is_reported(hashing_index: EmbeddedIndex) -> None:
    with pytest.raises(UnknownNameError):
        trace(hashing_index, HashingEmbedder(), TraceQuery(url="https://t.me/nobody/1"))


def test_narrative_trace_uses_the_match_store(
    hashing_index: EmbeddedIndex, world: list[tuple[str, Document]], tmp_path: Path
) -> None:
    docs = {d.id: d for _, d in world}
    ids = ids_by_role(world)
    with MatchStore(tmp_path / "m.sqlite") as store:
        store.add(
            Match(
                document_id=d.id,
                narrative_id="sms-ban",
                score=0.7,
                tier="alert",
                passage_index=0,
                passage_text=d.passages[0].text,
                exemplar="x",
                exemplar_language="ru",
                model="hashing",
                source_id=d.source_id,
                outlet=d.outlet,
                language=d.language,
                published=d.published,
                url=d.url,
                title=d.title,
                similarity=0.7,
            )
            for d in (docs[ids["original"]], docs[ids["paraphrase"]])
        )
        res = trace(hashing_index, HashingEmbedder(), TraceQuery(narrative_id="sms-ban"), matches=store)
    roles = set(roles_of(res, world))
    assert {"original", "paraphrase", "copy", "forward"} <= roles <= TRUE_ROLES


# -- slow: the real default model --------------------------------------------------------------------


@pytest.fixture(scope="module")
def real() -> Embedder:
    from core.settings import EmbeddingSettings
    from index.embed import make_embedder

    return make_embedder(EmbeddingSettings(model="use-multilingual-v3"))


@pytest.fixture(scope="module")
def real_index(
    tmp_path_factory: pytest.TempPathFactory, world: list[tuple[str, Document]], real: Embedder
) -> EmbeddedIndex:
    index = build_index(tmp_path_factory.mktemp("trace-real") / "ix", real, [d for _, d in world])
    yield index  # type: ignore[misc]
    index.close()


@pytest.mark.slow
def test_real_trace_of_the_original_post(
    real_index: EmbeddedIndex, real: Embedder, world: list[tuple[str, Document]], tmp_path: Path
) -> None:
    ids = ids_by_role(world)
    res = trace(real_index, real, TraceQuery(url="https://t.me/s/moskva_tretiy_rim/26934"))
    # Exactly the six versions of the story, in time order; no noise, no same-topic fraud posts.
    assert roles_of(res, world) == ["original", "copy", "forward", "link", "translation", "paraphrase"]
    assert res.first.overall == ids["original"]
    assert res.first.by_language == {"ru": ids["original"], "en": ids["translation"]}
    assert res.first.by_platform == {"telegram": ids["original"], "site": ids["link"]}
    assert res.first.by_outlet["t.me/ranshe_vseh"] == ids["paraphrase"]
    assert [g.members for g in res.copy_groups] == [(ids["original"], ids["copy"], ids["forward"])]
    assert [(g.original, [t[0] for t in g.translations]) for g in res.translation_groups] == [
        (ids["original"], [ids["translation"]])
    ]
    edges = {(e.source, e.target): (e.kind, e.inferred) for e in res.edges}
    assert edges == {
        (ids["original"], ids["copy"]): ("inferred", True),
        (ids["original"], ids["forward"]): ("forward", False),
        (ids["original"], ids["link"]): ("link", False),
        (ids["original"], ids["translation"]): ("inferred", True),
        (ids["original"], ids["paraphrase"]): ("inferred", True),
    }
    inferred = [e for e in res.edges if e.inferred]
    assert all(e.similarity >= res.edge_threshold and e.lag_seconds > 0 and e.evidence for e in inferred)
    tl = res.timeline
    assert tl.bucket == "hour" and tl.labels[0] == "2024-11-20T05:00Z"
    assert tl.total == (1, 1, 1, 1, 0, 1, 0, 0, 1)
    assert tl.by_language["en"] == (0, 0, 0, 0, 0, 1, 0, 0, 0)
    assert sum(sum(v) for v in tl.by_outlet.values()) == 6

    # Exports open again.
    rows = list(csv.DictReader(export_items_csv(res, tmp_path / "items.csv").open(encoding="utf-8")))
    assert [r["document_id"] for r in rows] == [i.document_id for i in res.items]
    assert rows[1]["copy_of"] == ids["original"] and "overall" in rows[0]["first_in"]
    lines = export_items_jsonl(res, tmp_path / "items.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[4])["translation_of"] == ids["original"]
    for fmt, reader in (("gexf", nx.read_gexf), ("graphml", nx.read_graphml)):
        g = reader(export_graph(res, tmp_path / f"g.{fmt}", format=fmt))  # type: ignore[arg-type]
        assert g.number_of_nodes() == 6 and g.number_of_edges() == 5
        assert str(g.edges[ids["original"], ids["copy"]]["inferred"]).lower() == "true"
    assert render_timeline(res, tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    root = ET.parse(render_timeline(res, tmp_path / "t.svg", format="svg")).getroot()
    assert root.tag.endswith("svg")


@pytest.mark.slow
def test_real_claim_trace_finds_the_story_not_the_noise(
    real_index: EmbeddedIndex, real: Embedder, world: list[tuple[str, Document]]
) -> None:
    claim = "Минцифры хочет запретить СМС во время телефонных звонков ради борьбы с мошенниками"
    res = trace(real_index, real, TraceQuery(claim=claim))
    roles = roles_of(res, world)
    assert set(roles) <= TRUE_ROLES
    assert len({"original", "copy", "forward", "link", "paraphrase"} & set(roles)) >= 4
    # Filters apply: English only finds the translation when the threshold allows it.
    en = trace(real_index, real, TraceQuery(claim=claim, languages=("en",), threshold=0.35))
    assert roles_of(en, world) == ["translation"]
