"""Pinned quality gate for the cosine-threshold matcher (real default model, dev gold set).

This is the fallback every narrative without a usable learned model runs on (and the baseline
the learned stage is compared with in test_learned_quality.py), so it is evaluated with the
learned state switched off.

Floors live in tests/data/gold/pinned_scores.json (measured on the dev set minus a 0.05 margin).
:data:`MINIMUM_FLOORS` below repeats them: the test fails if the JSON floors drop below these
constants, so lowering the gate takes two deliberate edits (JSON *and* this file), both visible
in review. Raise both when the matcher measurably improves.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOLD = ROOT / "tests" / "data" / "gold"

MINIMUM_FLOORS: dict[str, dict[str, dict[str, float]]] = {
    "overall": {"all": {"precision": 0.76, "recall": 0.49, "f1": 0.60}},
    "per_language": {
        "en": {"precision": 0.69, "recall": 0.47, "f1": 0.56},
        "ru": {"precision": 0.90, "recall": 0.52, "f1": 0.66},
    },
    "per_narrative": {
        "human-rights-groups-foreign-interests": {"precision": 0.95, "recall": 0.03, "f1": 0.10},
        "sanctions-hurt-europe-more": {"precision": 0.53, "recall": 0.48, "f1": 0.51},
        "us-biolabs": {"precision": 0.80, "recall": 0.54, "f1": 0.65},
        "west-colour-revolutions": {"precision": 0.95, "recall": 0.22, "f1": 0.38},
        "west-opens-second-front-caucasus": {"precision": 0.61, "recall": 0.45, "f1": 0.52},
        "west-preparing-war-on-russia": {"precision": 0.75, "recall": 0.89, "f1": 0.81},
    },
}


def _pinned() -> dict[str, dict[str, dict[str, float]]]:
    data = json.loads((GOLD / "pinned_scores.json").read_text(encoding="utf-8"))
    floors = data["floors"]
    return {
        "overall": {"all": floors["overall"]},
        "per_language": floors["per_language"],
        "per_narrative": floors["per_narrative"],
    }


def test_pinned_floors_were_not_lowered() -> None:
    pinned = _pinned()
    for group, entries in MINIMUM_FLOORS.items():
        for name, metrics in entries.items():
            assert name in pinned[group], f"{group}/{name} removed from pinned_scores.json"
            for metric, minimum in metrics.items():
                assert pinned[group][name][metric] >= minimum, f"{group}/{name}/{metric} lowered below {minimum}"


@pytest.mark.slow
def test_quality_gate_on_dev_gold_set() -> None:
    from core.settings import load_config
    from monitors.evaluate import eval_command

    config = load_config(ROOT / "config", require_sources=False)
    report = eval_command(config, GOLD / "dev.jsonl", "suggest", baseline=True)
    assert report["overall"]["warnings"] == []  # thresholds were calibrated for the running model
    measured = {
        "overall": {"all": report["overall"]},
        "per_language": report["per_language"],
        "per_narrative": report["per_narrative"],
    }
    failures = [
        f"{group}/{name}/{metric}: {measured[group][name][metric]:.3f} < floor {floor:.2f}"
        for group, entries in _pinned().items()
        for name, metrics in entries.items()
        for metric, floor in metrics.items()
        if measured[group][name][metric] < floor
    ]
    assert failures == []
    assert len(report["items"]) >= 150 and [i["index"] for i in report["items"]] == list(range(len(report["items"])))
