"""Quality gate of the learned decision stage (real default model; evaluation sets never fitted on).

* The shipped learned state (config/learned, fitted on tests/data/gold/train.jsonl) must apply
  to every enabled narrative and must not be worse than cosine thresholds on the dev set and the
  held-out paraphrase set (the thresholds were even calibrated on dev itself), and its false
  alert-tier rate on later real Telegram news is capped.
* ``learn`` must generalise for another catalogue: fitted on EUvsDisinfo 2015-16 cases, scored on
  2017 cases, it must beat thresholds calibrated on the same training split.

Floors live in tests/data/gold/pinned_learned.json (measured minus a margin); MINIMUM below
repeats them, so lowering the gate takes two visible edits.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOLD = ROOT / "tests" / "data" / "gold"
PINNED = GOLD / "pinned_learned.json"

MINIMUM: dict[str, float] = {
    "dev_f1": 0.76,
    "heldout_f1": 0.75,
    "heldout_recall_clear_paraphrases": 0.85,
    "euvsdisinfo_f1": 0.45,
    "euvsdisinfo_margin_over_calibrated": 0.15,
}
MAXIMUM: dict[str, float] = {"background_alert_fp_per_1000": 4.0}


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def _pinned() -> dict[str, float]:
    return dict(json.loads(PINNED.read_text(encoding="utf-8"))["gate"])


def test_pinned_gate_was_not_loosened() -> None:
    pinned = _pinned()
    for key, floor in MINIMUM.items():
        assert pinned[key] >= floor, f"{key} lowered below {floor}"
    for key, ceiling in MAXIMUM.items():
        assert pinned[key] <= ceiling, f"{key} raised above {ceiling}"


def test_training_set_shares_nothing_with_the_evaluation_sets() -> None:
    train = [x for f in sorted(GOLD.glob("train*.jsonl")) for x in _lines(f)]
    held = [
        x for name in ("dev", "heldout") if (GOLD / f"{name}.jsonl").exists() for x in _lines(GOLD / f"{name}.jsonl")
    ]
    texts = {" ".join(x["text"].split()).lower() for x in held}
    origins = {x["origin"] for x in held if x["origin"].startswith("telegram_ru_posts:")}
    assert not [x["origin"] for x in train if " ".join(x["text"].split()).lower() in texts]
    assert not [x["origin"] for x in train if x["origin"] in origins]
    # Real posts in train are from before the evaluation background period.
    assert all(x["origin"].split(":")[0] in ("own-train", "telegram_ru_posts", "euvsdisinfo_2015_2017") for x in train)


def _background(n: int) -> list[Any]:
    from bench.narrative_evalsets import build_all, shared_data_dir
    from monitors.evaluate import gold_item

    if not (shared_data_dir() / "telegram_ru_posts.jsonl").is_file():
        pytest.skip("../shared/data not present")
    return [gold_item(x, background=True) for x in build_all(limit_background=n)["telegram-background-test"]]


@pytest.fixture(scope="module")
def embedder() -> Any:
    from core.settings import EmbeddingSettings
    from index.embed import make_embedder

    return make_embedder(EmbeddingSettings())


@pytest.mark.slow
def test_shipped_learned_state_beats_thresholds(embedder: Any) -> None:
    from monitors.catalogue import load_catalogue
    from monitors.evaluate import evaluate, load_gold
    from monitors.narratives import NarrativeMatcher

    cat = load_catalogue(ROOT / "config")
    learned = NarrativeMatcher(cat, embedder)
    assert set(learned.learned_ids) == {n.id for n in cat.enabled}, learned.warnings
    baseline = NarrativeMatcher(cat, embedder, use_learned=False)
    pinned = _pinned()
    for name in ("dev", "heldout"):
        if not (GOLD / f"{name}.jsonl").exists():
            continue
        gold = load_gold(GOLD / f"{name}.jsonl")
        got = evaluate(learned, gold, "suggest").overall
        base = evaluate(baseline, gold, "suggest").overall
        assert got.f1 >= base.f1, f"{name}: learned F1 {got.f1:.3f} < thresholds {base.f1:.3f}"
        assert got.f1 >= pinned[f"{name}_f1"], f"{name}: F1 {got.f1:.3f} < floor {pinned[name + '_f1']}"
    if (GOLD / "heldout.jsonl").exists():
        clear = [g for g in load_gold(GOLD / "heldout.jsonl") if g.kind == "clear-paraphrase"]
        rec = evaluate(learned, clear, "suggest").overall.recall
        assert rec >= pinned["heldout_recall_clear_paraphrases"], rec
    bg = evaluate(learned, [], "alert", _background(1500)).as_dict()["background"]
    assert bg["fp_per_1000"]["alert"] <= pinned["background_alert_fp_per_1000"], bg


@pytest.mark.slow
def test_learning_generalises_to_another_catalogue_across_time(embedder: Any) -> None:
    from bench.narrative_evalsets import build_all
    from monitors.catalogue import load_catalogue
    from monitors.evaluate import calibrated_catalogue, evaluate, gold_item
    from monitors.learn import learn
    from monitors.narratives import NarrativeMatcher

    _background(10)  # skips without the shared data
    sets = build_all(limit_background=400)
    train = [gold_item(x) for x in sets["euvsdisinfo-train"]][::2]
    test = [gold_item(x) for x in sets["euvsdisinfo-test"]][::2]
    bg = [gold_item(x, background=True) for x in sets["telegram-background-train"]]
    cat = load_catalogue(ROOT / "bench" / "eval_catalogues" / "euvsdisinfo")
    base = NarrativeMatcher(cat, embedder, use_learned=False)
    calibrated = calibrated_catalogue(base, cat, train)
    cal_f1 = evaluate(NarrativeMatcher(calibrated, embedder, use_learned=False), test, "suggest").overall.f1
    default_f1 = evaluate(base, test, "suggest").overall.f1
    state = learn(base, train, bg)
    got = evaluate(NarrativeMatcher(cat, embedder, state), test, "suggest").overall
    pinned = _pinned()
    assert got.f1 >= pinned["euvsdisinfo_f1"], got.as_dict()
    assert got.f1 - max(cal_f1, default_f1) >= pinned["euvsdisinfo_margin_over_calibrated"], (
        got.f1,
        cal_f1,
        default_f1,
    )
