"""``narratives learn`` and ``narratives eval`` end to end through the CLI (hashing embedder, real texts)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from narrawatch.cli import main

ROOT = Path(__file__).resolve().parents[2]
TRAIN = ROOT / "tests" / "data" / "gold" / "train.jsonl"
IDS = ("us-biolabs", "sanctions-hurt-europe-more")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    cfg = tmp_path / "config"
    (cfg / "narratives").mkdir(parents=True)
    for nid in IDS:
        shutil.copy(ROOT / "config" / "narratives" / f"{nid}.yaml", cfg / "narratives")
    (cfg / "service.yaml").write_text("data_dir: ../data\nembedding: {model: hashing}\n", encoding="utf-8")
    lines = [x for x in TRAIN.read_text(encoding="utf-8").splitlines() if any(i in x for i in IDS)]
    (tmp_path / "train.jsonl").write_text("\n".join(lines[0::2]) + "\n", encoding="utf-8")
    (tmp_path / "test.jsonl").write_text("\n".join(lines[1::2]) + "\n", encoding="utf-8")
    return cfg


def _run(cfg: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--config", str(cfg), "--log-level", "WARNING", "narratives", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_learn_writes_state_that_eval_uses(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train, test = config.parent / "train.jsonl", config.parent / "test.jsonl"
    code, out, _ = _run(config, capsys, "learn", "--gold", str(train), "--json")
    assert code == 0
    result = json.loads(out)
    assert sorted(result["learned"]) == sorted(IDS) and result["skipped"] == {}
    assert result["sources"][0].startswith("train.jsonl sha256:")
    assert (config / "learned" / "narratives.json").is_file() and (config / "learned" / "narratives.npz").is_file()

    code, out, _ = _run(config, capsys, "eval", "--gold", str(test), "--tier", "suggest", "--json")
    learned = json.loads(out)["overall"]
    code2, out2, _ = _run(config, capsys, "eval", "--gold", str(test), "--tier", "suggest", "--baseline", "--json")
    baseline = json.loads(out2)["overall"]
    assert code == code2 == 0
    assert learned["decision"] == "learned" and sorted(learned["learned"]) == sorted(IDS)
    assert baseline["decision"] == "threshold" and baseline["learned"] == []
    assert learned["f1"] > baseline["f1"]

    # The human-readable form names every narrative with its thresholds.
    code, out, _ = _run(config, capsys, "learn", "--gold", str(train), "--dry-run")
    assert code == 0 and all(f"  {i}" in out for i in IDS) and "written:" not in out


def test_learn_bad_input_is_a_clear_error(config: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = _run(config, capsys, "learn", "--gold", str(tmp_path / "missing.jsonl"))
    assert code == 2 and "cannot read gold file" in err
    code, _, err = _run(config, capsys, "learn", "--no-verdicts")
    assert code == 2 and "nothing to learn from" in err
    assert not (config / "learned").exists()
