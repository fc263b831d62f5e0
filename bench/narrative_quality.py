"""Narrative detection quality on evaluation sets never used for fitting: baseline vs learned.

Two benchmarks, both split by time (``bench/narrative_evalsets.py`` builds the sets from
``../shared/data``; docs/evalsets.md):

* ``euvsdisinfo``: a catalogue written from EUvsDisinfo's tags (``bench/eval_catalogues``),
  learned with :func:`monitors.learn.learn` on 2015-2016 cases (summaries = assertions,
  disproofs = debunks quoting the claim) plus Telegram background before 2024-11-15, scored on
  2017 cases and on background from 2024-11-15 on. Baselines: cosine thresholds at their
  defaults, and calibrated on the same training split (``narratives calibrate``).
* ``shipped``: the shipped catalogue with its shipped learned state (``config/learned``,
  fitted on tests/data/gold/train.jsonl) against thresholds only, on the dev gold set, the
  held-out paraphrase set and the later Telegram background.

Prints JSON lines and appends Markdown tables to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import append_table, emit

ROOT = Path(__file__).resolve().parents[1]
GOLD = ROOT / "tests" / "data" / "gold"
EVAL_CATALOGUE = ROOT / "bench" / "eval_catalogues" / "euvsdisinfo"

COLUMNS = (
    "matcher",
    "tier",
    "precision",
    "recall",
    "f1",
    "samples_f1",
    "support",
    "bg_fp_per_1000_suggest",
    "bg_fp_per_1000_alert",
)
"""The Markdown table columns of both benchmarks (the shipped one adds ``set`` first)."""

__all__ = ["euvsdisinfo_benchmark", "main", "shipped_benchmark"]


def _row(bench: str, name: str, report: dict[str, Any], tier: str, **extra: Any) -> dict[str, Any]:
    o, bg = report["overall"], report["background"]
    return emit(
        bench,
        matcher=name,
        tier=tier,
        precision=o["precision"],
        recall=o["recall"],
        f1=o["f1"],
        samples_f1=o["samples_f1"],
        support=o["support"],
        background=bg["items"],
        bg_fp_per_1000_suggest=bg["fp_per_1000"]["suggest"],
        bg_fp_per_1000_alert=bg["fp_per_1000"]["alert"],
        **extra,
    )


def _every(items: Sequence[Any], n: int | None) -> list[Any]:
    if n is None or n >= len(items):
        return list(items)
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def euvsdisinfo_benchmark(
    *, train_limit: int | None = None, test_limit: int | None = None, background: int = 3000
) -> list[dict[str, Any]]:
    """Learn on the 2015-2016 split, score on 2017 (see the module docstring)."""
    from bench.narrative_evalsets import build_all
    from core.settings import EmbeddingSettings
    from index.embed import make_embedder
    from monitors.catalogue import load_catalogue
    from monitors.evaluate import calibrated_catalogue, evaluate, gold_item
    from monitors.learn import learn
    from monitors.narratives import NarrativeMatcher

    sets = build_all(limit_background=background)
    train = _every([gold_item(x) for x in sets["euvsdisinfo-train"]], train_limit)
    test = _every([gold_item(x) for x in sets["euvsdisinfo-test"]], test_limit)
    bg_train = [gold_item(x, background=True) for x in sets["telegram-background-train"]]
    bg_test = [gold_item(x, background=True) for x in sets["telegram-background-test"]]
    emb = make_embedder(EmbeddingSettings())
    cat = load_catalogue(EVAL_CATALOGUE)
    base = NarrativeMatcher(cat, emb, use_learned=False)
    rows = []
    for tier in ("suggest", "alert"):
        rows.append(
            _row("narratives_euvsdisinfo", "thresholds (defaults)", evaluate(base, test, tier, bg_test).as_dict(), tier)
        )
    calibrated = calibrated_catalogue(base, cat, train)
    cal = NarrativeMatcher(calibrated, emb, use_learned=False)
    for tier in ("suggest", "alert"):
        rows.append(
            _row(
                "narratives_euvsdisinfo",
                "thresholds (calibrated on train)",
                evaluate(cal, test, tier, bg_test).as_dict(),
                tier,
            )
        )
    t0 = time.perf_counter()
    state = learn(base, train, bg_train)
    seconds = round(time.perf_counter() - t0, 1)
    learned = NarrativeMatcher(cat, emb, state)
    for tier in ("suggest", "alert"):
        rows.append(
            _row(
                "narratives_euvsdisinfo",
                "learned",
                evaluate(learned, test, tier, bg_test).as_dict(),
                tier,
                learn_seconds=seconds,
            )
        )
    append_table(
        "Narrative detection, EUvsDisinfo time split (bench/narrative_quality.py): learn 2015-16, score 2017",
        rows,
        params={"train": len(train), "test": len(test), "bg_train": len(bg_train), "bg_test": len(bg_test)},
        columns=list(COLUMNS),
    )
    return rows


def shipped_benchmark(*, background: int = 6000) -> list[dict[str, Any]]:
    """The shipped catalogue and learned state vs thresholds only, on dev, held-out and later background."""
    from bench.narrative_evalsets import build_all
    from core.settings import EmbeddingSettings
    from index.embed import make_embedder
    from monitors.catalogue import load_catalogue
    from monitors.evaluate import evaluate, gold_item, load_gold
    from monitors.narratives import NarrativeMatcher

    sets = build_all(limit_background=background)
    bg_test = [gold_item(x, background=True) for x in sets["telegram-background-test"]]
    emb = make_embedder(EmbeddingSettings())
    cat = load_catalogue(ROOT / "config")
    matchers = {"thresholds": NarrativeMatcher(cat, emb, use_learned=False), "learned": NarrativeMatcher(cat, emb)}
    rows = []
    for set_name in ("dev", "heldout"):
        path = GOLD / f"{set_name}.jsonl"
        if not path.exists():
            continue
        gold = load_gold(path)
        for name, m in matchers.items():
            for tier in ("suggest", "alert"):
                rows.append(
                    _row("narratives_shipped", name, evaluate(m, gold, tier, bg_test).as_dict(), tier, set=set_name)
                )
    append_table(
        "Narrative detection, shipped catalogue (bench/narrative_quality.py): dev and held-out sets, later background",
        rows,
        params={"bg_test": len(bg_test)},
        columns=["set", *COLUMNS],
    )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.narrative_quality [--only euvsdisinfo|shipped] [--quick]``."""
    ap = argparse.ArgumentParser(prog="python -m bench.narrative_quality")
    ap.add_argument("--only", choices=["euvsdisinfo", "shipped"])
    ap.add_argument("--quick", action="store_true", help="subsample (about a third of the items)")
    args = ap.parse_args(argv)
    if args.only in (None, "euvsdisinfo"):
        if args.quick:
            euvsdisinfo_benchmark(train_limit=1200, test_limit=600, background=1000)
        else:
            euvsdisinfo_benchmark()
    if args.only in (None, "shipped"):
        shipped_benchmark(background=2000 if args.quick else 6000)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
