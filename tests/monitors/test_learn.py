"""The learned decision stage on real labelled texts (tests/data/gold/train.jsonl), hashing embedder.

Fast and deterministic: the hashing embedder has no semantics beyond shared words, so these
tests check the mechanics (fitting, thresholds, binding, verdict vetoes, evaluation rules) and
that learning beats cosine thresholds even in a crude space. Quality with the real model is in
test_learned_quality.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.errors import ConfigError
from index.embed import HashingEmbedder
from monitors.catalogue import Catalogue, load_catalogue
from monitors.decision import load_learned, save_learned
from monitors.evaluate import GoldItem, evaluate, gold_document, load_gold
from monitors.learn import LearnOptions, learn
from monitors.narratives import NarrativeMatcher

ROOT = Path(__file__).resolve().parents[2]
TRAIN = ROOT / "tests" / "data" / "gold" / "train.jsonl"
IDS = ("us-biolabs", "sanctions-hurt-europe-more", "central-asian-migrants-terror-threat")


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    cat = load_catalogue(ROOT / "config")
    return Catalogue(narratives=tuple(cat.get(i) for i in IDS), files={})


@pytest.fixture(scope="module")
def items() -> list[GoldItem]:
    """Every train line about the three narratives' topics: their assertions and hard negatives."""
    out = []
    for line in TRAIN.read_text(encoding="utf-8").splitlines():
        obj = json.loads(line)
        topic = obj["origin"].split(":")[1] if obj["origin"].startswith("own-train:") else ""
        if set(obj["narratives"]) & set(IDS) or topic in IDS:
            out.append(GoldItem(obj["text"], obj["language"], tuple(n for n in obj["narratives"] if n in IDS)))
    return out


def _split(items: list[GoldItem]) -> tuple[list[GoldItem], list[GoldItem]]:
    return items[0::2], items[1::2]


def test_learning_beats_cosine_thresholds_on_held_out_half(catalogue: Catalogue, items: list[GoldItem]) -> None:
    emb = HashingEmbedder()
    train, test = _split(items)
    assert sum(bool(g.narratives) for g in test) >= 20 and sum(not g.narratives for g in test) >= 20
    base = NarrativeMatcher(catalogue, emb, use_learned=False)
    state = learn(base, train)
    assert sorted(state.models) == sorted(IDS)
    learned = NarrativeMatcher(catalogue, emb, state)
    assert learned.learned_ids == tuple(n.id for n in catalogue.narratives)
    b = evaluate(base, test, "suggest").overall
    m = evaluate(learned, test, "suggest").overall
    assert m.f1 > b.f1 + 0.1, (b.as_dict(), m.as_dict())
    for model in state.models.values():
        assert 0 < model.suggest < model.alert <= 1.0
        assert model.alert >= LearnOptions().alert_min_probability


def test_state_round_trip_and_binding(tmp_path: Path, catalogue: Catalogue, items: list[GoldItem]) -> None:
    emb = HashingEmbedder()
    state = learn(NarrativeMatcher(catalogue, emb, use_learned=False), items, sources=["train.jsonl sha256:x"])
    save_learned(tmp_path, state)
    loaded = load_learned(tmp_path)
    assert loaded is not None and loaded.space_key == emb.space.key and loaded.sources == ("train.jsonl sha256:x",)
    for nid, m in state.models.items():
        got = loaded.models[nid]
        assert got.fingerprint == m.fingerprint and got.suggest == m.suggest
        np.testing.assert_allclose(got.w_passage, m.w_passage, rtol=1e-6)
        assert got.examples is not None and len(got.examples) == len(m.examples or ())

    docs = [gold_document(g, i) for i, g in enumerate(items[:20])]
    pairs = [(d, emb.embed_documents([p.text for p in d.passages])) for d in docs]
    a = NarrativeMatcher(catalogue, emb, state).match_many(pairs)
    b = NarrativeMatcher(catalogue, emb, loaded).match_many(pairs)
    assert [(x.document_id, x.narrative_id, x.tier) for x in a] == [(x.document_id, x.narrative_id, x.tier) for x in b]
    assert a and all(x.decision == "learned" and x.probability is not None and x.reasons for x in a)

    # Another embedding space: refused, every narrative falls back to thresholds, with a warning.
    other = NarrativeMatcher(catalogue, HashingEmbedder(dim=128), loaded)
    assert other.learned_ids == ()
    assert any("learned for embedding space" in w for w in other.warnings)
    # An edited narrative (new exemplar) loses its model; the others keep theirs.
    first = catalogue.narratives[0]
    edited = first.model_copy(update={"exemplars": {**first.exemplars, "en": (*first.exemplars["en"], "A new one.")}})
    cat2 = Catalogue(narratives=(edited, *catalogue.narratives[1:]), files={})
    m2 = NarrativeMatcher(cat2, emb, loaded)
    assert first.id not in m2.learned_ids and len(m2.learned_ids) == len(IDS) - 1
    assert any("changed since it was learned" in w for w in m2.warnings)


def test_damaged_state_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "learned").mkdir()
    (tmp_path / "learned" / "narratives.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_learned(tmp_path)
    assert str(exc.value).startswith("learned/narratives.json: unreadable learned state")


def test_rejected_verdict_stops_that_kind_of_match(catalogue: Catalogue, items: list[GoldItem]) -> None:
    """A neutral report the model raises, rejected by an analyst, is not raised after the next learn,
    nor is a near copy of it; the narrative's other matches survive."""
    emb = HashingEmbedder()
    base = NarrativeMatcher(catalogue, emb, use_learned=False)
    train, test = _split(items)
    state = learn(base, train)
    matcher = NarrativeMatcher(catalogue, emb, state)
    docs = [gold_document(g, i) for i, g in enumerate(test)]
    pairs = [(d, emb.embed_documents([p.text for p in d.passages])) for d in docs]
    wrong = [
        m for m in matcher.match_many(pairs) if m.narrative_id not in test[int(m.document_id.split(":")[1])].narratives
    ]
    assert wrong, "precondition: the model makes at least one false match on the held-out half"
    victim = wrong[0]
    text = test[int(victim.document_id.split(":")[1])].text
    verdict = GoldItem(text, "ru", (), f"verdict:{victim.id}", judged=(victim.narrative_id,))
    relearned = NarrativeMatcher(catalogue, emb, learn(base, [*train, verdict]))
    copy = GoldItem(text.replace(".", ";", 1) + " Подписывайтесь.", "ru", ())
    for g in (GoldItem(text, "ru", ()), copy):
        d = gold_document(g, 0)
        hits = relearned.match(d, emb.embed_documents([p.text for p in d.passages]))
        assert victim.narrative_id not in [h.narrative_id for h in hits]
    right = [m for m in relearned.match_many(pairs) if m.narrative_id == victim.narrative_id]
    assert right, "the narrative still matches other documents"


def test_judged_lines_speak_only_for_their_narratives(catalogue: Catalogue) -> None:
    g = GoldItem("x", "ru", (), judged=("us-biolabs",))
    assert g.labels("us-biolabs") is False and g.labels("sanctions-hurt-europe-more") is None
    assert GoldItem("x", "ru", ("us-biolabs",)).labels("sanctions-hurt-europe-more") is False
    emb = HashingEmbedder()
    m = NarrativeMatcher(catalogue, emb, use_learned=False)
    rep = evaluate(m, [g], "suggest")
    assert rep.per_narrative["us-biolabs"].tp + rep.per_narrative["us-biolabs"].fp <= 1
    assert rep.per_narrative["sanctions-hurt-europe-more"].as_dict()["support"] == 0
    assert rep.samples == 0  # a partial label says nothing about the whole label set


def test_background_false_positives_are_counted_per_thousand(catalogue: Catalogue) -> None:
    emb = HashingEmbedder()
    m = NarrativeMatcher(catalogue, emb, use_learned=False)
    bg = [GoldItem(n.exemplars["ru"][0], "ru", (), kind="background") for n in catalogue.narratives]
    bg += [GoldItem("Погода в Москве: завтра до минус пяти, снег.", "ru", (), kind="background")]
    d = evaluate(m, [], "suggest", bg).as_dict()["background"]
    assert d["items"] == 4
    assert d["false_positives"]["suggest"] == 3  # every exemplar is its own narrative's match
    assert d["fp_per_1000"]["suggest"] == 750.0


def test_gold_file_errors_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read gold file"):
        load_gold(tmp_path / "missing.jsonl")
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes('{"text": "caf\xe9", "language": "fr", "narratives": []}\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="cannot read gold file"):
        load_gold(bad)
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text('{"text": "a", "language": "ru", "narratives": "x"}\n[1]\n', encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_gold(wrong)
    assert [i.path for i in exc.value.issues] == ["line 1", "line 2"]
