"""Cross-lingual probe: EN<->RU (and EN<->UK) retrieval of the same claim, per embedding model.

Reads tests/data/probe/pairs.jsonl. For each direction, every source claim is embedded with
``embed_query`` and the target-language claims with ``embed_documents``; we report acc@1 and
MRR of the true translation among all targets, and the mean cosine of true pairs vs. random
(non-matching) pairs, which shows each model's similarity scale.

Usage: .venv/bin/python bench/embed_probe.py [--models use-multilingual-v3,multilingual-e5-small,...]
Prints a JSON line per model and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from core.settings import EmbeddingSettings  # noqa: E402
from index.embed import Embedder, make_embedder  # noqa: E402

PAIRS = ROOT / "tests" / "data" / "probe" / "pairs.jsonl"
DEFAULT_MODELS = "use-multilingual-v3,multilingual-e5-small,all-minilm-l6-v2,hashing"


def load_pairs(path: Path = PAIRS) -> list[dict[str, str]]:
    """The probe rows (id, en, ru, optional uk)."""
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def retrieval(emb: Embedder, sources: list[str], targets: list[str], truth: list[int]) -> dict[str, float]:
    """acc@1 and MRR of ``targets[truth[i]]`` for query ``sources[i]``; true vs random cosine."""
    q = np.stack([emb.embed_query(s) for s in sources])
    d = emb.embed_documents(targets)
    sims = q @ d.T
    true = sims[np.arange(len(sources)), truth]
    ranks = 1 + (sims > true[:, None]).sum(axis=1)
    mask = np.ones_like(sims, dtype=bool)
    mask[np.arange(len(sources)), truth] = False
    return {
        "acc1": float((ranks == 1).mean()),
        "mrr": float((1.0 / ranks).mean()),
        "cos_true": float(true.mean()),
        "cos_random": float(sims[mask].mean()),
    }


def probe(name: str, pairs: list[dict[str, str]], threads: int = 2) -> dict[str, object]:
    """All directions for one model."""
    t0 = time.perf_counter()
    emb = make_embedder(EmbeddingSettings(model=name, threads=threads))
    en = [p["en"] for p in pairs]
    ru = [p["ru"] for p in pairs]
    uk_idx = [i for i, p in enumerate(pairs) if "uk" in p]
    uk = [pairs[i]["uk"] for i in uk_idx]
    ident = list(range(len(pairs)))
    out: dict[str, object] = {"model": name, "space": emb.space.key, "n": len(pairs), "n_uk": len(uk)}
    out["en_ru"] = retrieval(emb, en, ru, ident)
    out["ru_en"] = retrieval(emb, ru, en, ident)
    out["uk_en"] = retrieval(emb, uk, en, uk_idx)  # UK query against all 65 EN claims
    out["ru_uk"] = retrieval(emb, [ru[i] for i in uk_idx], uk, list(range(len(uk))))
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out


def main() -> None:
    """Run the probe for the requested models and print JSON lines + a Markdown table."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", default=DEFAULT_MODELS)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    pairs = load_pairs()
    results = [probe(m, pairs, args.threads) for m in args.models.split(",") if m]
    for r in results:
        print(json.dumps(r))
    print()
    print(
        "| model | EN→RU acc@1 | EN→RU MRR | RU→EN acc@1 | RU→EN MRR | UK→EN acc@1 | RU→UK acc@1 "
        "| cos true | cos random |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        er, re_, ue, ru_uk = (r[k] for k in ("en_ru", "ru_en", "uk_en", "ru_uk"))
        assert isinstance(er, dict) and isinstance(re_, dict) and isinstance(ue, dict) and isinstance(ru_uk, dict)
        cos_t = (er["cos_true"] + re_["cos_true"]) / 2
        cos_r = (er["cos_random"] + re_["cos_random"]) / 2
        print(
            f"| {r['model']} | {er['acc1']:.2f} | {er['mrr']:.3f} | {re_['acc1']:.2f} | {re_['mrr']:.3f} "
            f"| {ue['acc1']:.2f} | {ru_uk['acc1']:.2f} | {cos_t:.3f} | {cos_r:.3f} |"
        )


if __name__ == "__main__":
    main()
