# ruff: noqa: E501  -- realistic example texts and the verbatim YAML example are kept on one line
"""Narrative matcher: deterministic unit tests on HashingEmbedder, plus two real-model checks (slow)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pytest

from core.documents import Document, EmbeddingSpace, Passage, SearchFilters
from core.errors import EmbeddingSpaceMismatch
from index.base import PassageVectors
from index.embed import Embedder, HashingEmbedder
from monitors.catalogue import Narrative, Thresholds
from monitors.narratives import NarrativeMatcher

T0 = datetime(2024, 11, 20, tzinfo=UTC)

BIOLABS = Narrative(
    id="us-biolabs",
    title="US biolabs",
    exemplars={
        "en": ("The US runs secret biological weapons laboratories in Georgia aimed at Russia.",),
        "ru": ("США держат секретные биолаборатории в Грузии, где разрабатывают биологическое оружие против России.",),
    },
    counter_exemplars={
        "en": ("Fact check: the claim that the US runs secret biological weapons laboratories in Georgia is false.",)
    },
    keywords=("laborator", "биолаборатор"),
    thresholds=Thresholds(suggest=0.5, alert=0.7),
)
SANCTIONS = Narrative(
    id="sanctions",
    title="Sanctions hurt Europe",
    exemplars={
        "en": ("Sanctions against Russia hurt Europe more than Russia.",),
        "ru": ("Санкции бьют по Европе сильнее, чем по России.",),
    },
    keywords=("sanction", "санкци"),
    thresholds=Thresholds(suggest=0.5, alert=0.9),
)


def doc(text: str, *, doc_id: str = "d1", language: str = "en", title: str = "") -> Document:
    paras = [p for p in text.split("\n\n") if p.strip()]
    return Document(
        id=doc_id,
        source_id="src",
        kind="feed",
        url=f"https://example.org/{doc_id}",
        title=title,
        text=text,
        language=language,
        published=T0,
        fetched=T0,
        passages=tuple(Passage(index=i, text=p) for i, p in enumerate(paras)),
        content_hash=doc_id,
        outlet="example.org",
    )


def vecs(embedder: Embedder, d: Document) -> np.ndarray:
    return embedder.embed_documents([p.text for p in d.passages])


@pytest.fixture
def hashing() -> HashingEmbedder:
    return HashingEmbedder()


def test_match_finds_best_passage_and_fills_the_record(hashing: HashingEmbedder) -> None:
    m = NarrativeMatcher([BIOLABS, SANCTIONS], hashing)
    d = doc(
        "The weather in Tbilisi was sunny today.\n\nThe US runs secret biological weapons laboratories in Georgia aimed at Russia, a channel said."
    )
    [match] = m.match(d, vecs(hashing, d))
    assert match.narrative_id == "us-biolabs" and match.passage_index == 1
    assert match.exemplar_language == "en" and match.exemplar.startswith("The US runs")
    assert match.tier == "alert" and match.score >= 0.7
    assert match.keywords == ("laborator",)
    assert match.score == pytest.approx(match.similarity + BIOLABS.keyword_bonus, abs=1e-5)
    assert match.model == hashing.space.key and match.url == d.url and match.published == T0
    assert match.counter_similarity is not None and match.counter_similarity < match.similarity


def test_unrelated_text_does_not_match(hashing: HashingEmbedder) -> None:
    m = NarrativeMatcher([BIOLABS, SANCTIONS], hashing)
    d = doc("Moscow zoo welcomed a new crane chick; its parents are doing well.")
    assert m.match(d, vecs(hashing, d)) == []


def test_debunk_quoting_the_claim_is_not_a_match(hashing: HashingEmbedder) -> None:
    m = NarrativeMatcher([BIOLABS], hashing)
    d = doc(
        "Fact check: the claim that the US runs secret biological weapons laboratories in Georgia is false, researchers say."
    )
    [score] = m.score_many([(d, vecs(hashing, d))])[0]
    assert score.similarity >= BIOLABS.effective_thresholds().suggest  # it does quote the claim ...
    assert not score.eligible and "counter-exemplar" in score.reason  # ... but reads as a debunk
    assert m.match(d, vecs(hashing, d)) == []


def test_keyword_gate_and_boost(hashing: HashingEmbedder) -> None:
    claim = "Sanctions against Russia hurt Europe more than Russia."
    paraphrase = "Measures against Russia hurt Europe more than Russia."
    gated = SANCTIONS.model_copy(update={"keyword_mode": "gate"})
    off = SANCTIONS.model_copy(update={"keyword_mode": "off"})
    d_kw, d_no = doc(claim, doc_id="a"), doc(paraphrase, doc_id="b")
    pairs = [(d_kw, vecs(hashing, d_kw)), (d_no, vecs(hashing, d_no))]
    g = NarrativeMatcher([gated], hashing).score_many(pairs)
    assert g[0][0].eligible and not g[1][0].eligible and g[1][0].reason == "keyword gate: no keyword"
    b = NarrativeMatcher([SANCTIONS], hashing).score_many(pairs)
    o = NarrativeMatcher([off], hashing).score_many(pairs)
    assert b[0][0].score == pytest.approx(o[0][0].score + SANCTIONS.keyword_bonus)
    assert b[1][0].score == pytest.approx(o[1][0].score)  # no keyword: no bonus
    assert o[0][0].keywords == ()


def test_language_filter_and_disabled_narratives(hashing: HashingEmbedder) -> None:
    ru_only = SANCTIONS.model_copy(update={"languages": ("ru",)})
    disabled = BIOLABS.model_copy(update={"enabled": False})
    m = NarrativeMatcher([ru_only, disabled], hashing)
    assert [n.id for n in m.narratives] == ["sanctions"]
    d = doc("Sanctions against Russia hurt Europe more than Russia.")
    assert m.match(d, vecs(hashing, d)) == []
    d_ru = doc("Санкции бьют по Европе сильнее, чем по России, пишут эксперты.", language="ru")
    assert [x.narrative_id for x in m.match(d_ru, vecs(hashing, d_ru))] == ["sanctions"]


def test_match_many_equals_one_by_one(hashing: HashingEmbedder) -> None:
    m = NarrativeMatcher([BIOLABS, SANCTIONS], hashing)
    texts = [
        "Sanctions against Russia hurt Europe more than Russia, the minister said.",
        "The US runs secret biological weapons laboratories in Georgia aimed at Russia.\n\nSanctions hurt Europe.",
        "A bus caught fire in Perm.",
        "США держат секретные биолаборатории в Грузии, где разрабатывают биологическое оружие против России.",
    ]
    docs = [doc(t, doc_id=f"d{i}") for i, t in enumerate(texts)]
    pairs = [(d, vecs(hashing, d)) for d in docs]
    now = datetime(2025, 1, 1, tzinfo=UTC)
    together = m.match_many(pairs, now=now)
    one_by_one = [x for d, v in pairs for x in m.match_many([(d, v)], now=now)]
    assert together == one_by_one
    assert {(x.document_id, x.narrative_id) for x in together} >= {
        ("d0", "sanctions"),
        ("d1", "us-biolabs"),
        ("d3", "us-biolabs"),
    }


def test_wrong_vector_count_is_refused(hashing: HashingEmbedder) -> None:
    m = NarrativeMatcher([BIOLABS], hashing)
    d = doc("One.\n\nTwo.")
    with pytest.raises(ValueError, match="1 vectors for 2 passages"):
        m.match(d, vecs(hashing, d)[:1])


def test_thresholds_for_another_model_warn(hashing: HashingEmbedder) -> None:
    other = BIOLABS.model_copy(
        update={"thresholds": Thresholds(suggest=0.5, alert=0.6, calibrated_for="some-other-model")}
    )
    same = SANCTIONS.model_copy(update={"thresholds": Thresholds(suggest=0.5, alert=0.6, calibrated_for="hashing")})
    m = NarrativeMatcher([other, same], hashing)
    assert len([w for w in m.warnings if "calibrated for" in w]) == 1 and "us-biolabs" in m.warnings[0]


class _FakeIndex:
    """Just enough of DocumentIndex for match_backfill."""

    def __init__(self, space: EmbeddingSpace, items: list[tuple[Document, np.ndarray]]) -> None:
        self.embedding_space = space
        self.items = items
        self.vector_calls: list[tuple[str, ...]] = []

    def iter_documents(self, filters: SearchFilters | None = None, *, batch: int = 500) -> Iterator[Document]:
        for d, _ in self.items:
            if filters is None or filters.since is None or d.published >= filters.since:
                yield d

    def passage_vectors(self, filters: SearchFilters | None = None) -> PassageVectors:
        assert filters is not None
        self.vector_calls.append(filters.document_ids)
        ids: list[str] = []
        idx: list[int] = []
        rows: list[np.ndarray] = []
        for d, v in reversed(self.items):  # any order: the matcher must realign rows
            if d.id in filters.document_ids:
                for p in reversed(d.passages):
                    ids.append(d.id)
                    idx.append(p.index)
                    rows.append(v[p.index])
        return PassageVectors(tuple(ids), tuple(idx), np.stack(rows) if rows else np.zeros((0, 256), np.float32))


def test_match_backfill_reads_vectors_from_the_index_in_batches(hashing: HashingEmbedder) -> None:
    texts = [
        "A bus caught fire.\n\nSanctions against Russia hurt Europe more than Russia.",
        "Nothing here.",
        "Sanctions against Russia hurt Europe more than Russia.",
    ]
    items = [(doc(t, doc_id=f"d{i}"), vecs(hashing, doc(t, doc_id=f"d{i}"))) for i, t in enumerate(texts)]
    index = _FakeIndex(hashing.space, items)
    m = NarrativeMatcher([SANCTIONS], hashing)
    got = list(m.match_backfill(index, since=T0, batch=2))  # type: ignore[arg-type]
    assert [(x.document_id, x.passage_index) for x in got] == [("d0", 1), ("d2", 0)]
    assert index.vector_calls == [("d0", "d1"), ("d2",)]
    wrong = _FakeIndex(EmbeddingSpace(model="other", dim=256), items)
    with pytest.raises(EmbeddingSpaceMismatch):
        list(m.match_backfill(wrong))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def real_embedder() -> Embedder:
    from core.settings import EmbeddingSettings
    from index.embed import make_embedder

    return make_embedder(EmbeddingSettings(model="use-multilingual-v3"))


def _english_only(n: Narrative) -> Narrative:
    return n.model_copy(
        update={
            "exemplars": {"en": n.exemplars["en"]},
            "counter_exemplars": {k: v for k, v in n.counter_exemplars.items() if k == "en"},
            "keyword_mode": "off",
        }
    )


@pytest.mark.slow
def test_cross_lingual_russian_post_matches_english_only_narrative(real_embedder: Embedder) -> None:
    en_bio = _english_only(BIOLABS).model_copy(update={"thresholds": Thresholds(suggest=0.45, alert=0.6)})
    en_sanc = _english_only(SANCTIONS).model_copy(update={"thresholds": Thresholds(suggest=0.45, alert=0.6)})
    m = NarrativeMatcher([en_bio, en_sanc], real_embedder)
    ru = doc(
        "Американские военные биологи годами ставят опыты в грузинской лаборатории, и это оружие направлено против России.",
        language="ru",
    )
    neutral = doc("В Перми автобус съехал с путепровода и загорелся, пострадавших нет.", doc_id="d2", language="ru")
    got = m.match_many([(ru, vecs(real_embedder, ru)), (neutral, vecs(real_embedder, neutral))])
    assert [(x.document_id, x.narrative_id) for x in got] == [("d1", "us-biolabs")]
    assert got[0].exemplar_language == "en"
    # and the reverse: an English text against a Russian-only narrative
    ru_only = BIOLABS.model_copy(
        update={
            "exemplars": {"ru": BIOLABS.exemplars["ru"]},
            "counter_exemplars": {},
            "keyword_mode": "off",
            "thresholds": Thresholds(suggest=0.45, alert=0.6),
        }
    )
    en = doc("Pentagon scientists run a biological weapons lab in Georgia aimed at Russians.", doc_id="d3")
    assert [x.narrative_id for x in NarrativeMatcher([ru_only], real_embedder).match(en, vecs(real_embedder, en))] == [
        "us-biolabs"
    ]


@pytest.mark.slow
def test_real_debunk_does_not_match_default_catalogue(real_embedder: Embedder) -> None:
    from pathlib import Path

    from monitors.catalogue import load_catalogue

    cat = load_catalogue(Path(__file__).resolve().parents[2] / "config", [])
    m = NarrativeMatcher(cat, real_embedder)
    claim = doc(
        "Американские биолаборатории в Грузии и Армении создают биологическое оружие против России.", language="ru"
    )
    debunk = doc(
        "Фактчек: заявления о том, что в Грузии работают американские лаборатории биологического оружия, ложны. "
        "Центр Лугара — гражданская лаборатория здравоохранения, принадлежащая Грузии.",
        doc_id="d2",
        language="ru",
    )
    got = m.match_many([(claim, vecs(real_embedder, claim)), (debunk, vecs(real_embedder, debunk))])
    assert ("d1", "us-biolabs") in {(x.document_id, x.narrative_id) for x in got}
    assert [x for x in got if x.document_id == "d2"] == []
