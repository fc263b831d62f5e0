"""Embedded index at scale: ingest rate, search latency (keyword/semantic/hybrid, with and
without filters), size on disk, memory, recall of vector search.

Documents recombine real paragraphs of ../shared/data/telegram_ru_posts.jsonl (3 paragraphs
each, no random words); passages are embedded with HashingEmbedder (or random unit vectors with
``--random-vectors``, faster). Prints one JSON object per line.

    .venv/bin/python bench/index_scale.py --passages 100000 [--dim 512] [--dir /tmp/nwbench]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import resource
import shutil
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.documents import Document, IndexedDocument, Passage, SearchFilters, SearchQuery  # noqa: E402
from index.embed import HashingEmbedder  # noqa: E402
from index.local import EmbeddedIndex  # noqa: E402

POSTS = ROOT.parent / "shared" / "data" / "telegram_ru_posts.jsonl"


def emit(**kv: object) -> None:
    """One JSON line on stdout."""
    print(json.dumps(kv, ensure_ascii=False), flush=True)


def rss_mb() -> float:
    """Current resident set size in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def paragraphs() -> list[tuple[str, str]]:
    """(channel, paragraph) pairs from the real posts."""
    out = []
    for line in POSTS.read_text("utf-8").splitlines():
        r = json.loads(line)
        for p in r["text"].split("\n\n"):
            p = p.strip()
            if len(p) >= 40:
                out.append((f"tg_c{abs(r['channel_id'])}", p))
    return out


def make_docs(pool: list[tuple[str, str]], n_passages: int, rng: random.Random) -> list[Document]:
    """Documents of 1-5 recombined real paragraphs until ``n_passages`` passages exist."""
    docs: list[Document] = []
    start = datetime(2024, 1, 1, tzinfo=UTC)
    total = 0
    while total < n_passages:
        k = min(rng.randint(1, 5), n_passages - total)
        parts = [pool[rng.randrange(len(pool))] for _ in range(k)]
        text = "\n\n".join(p for _, p in parts)
        passages, off = [], 0
        for i, (_, p) in enumerate(parts):
            passages.append(Passage(i, p, off))
            off += len(p) + 2
        source = parts[0][0]
        published = start + timedelta(seconds=rng.randrange(330 * 86400))
        digest = hashlib.sha256(text.encode()).hexdigest()
        docs.append(
            Document(
                id=f"bench:{len(docs)}",
                source_id=source,
                kind="telegram",
                url=f"https://t.me/{source}/{len(docs)}",
                title=parts[0][1][:80],
                text=text,
                language="ru" if rng.random() < 0.9 else "uk",
                published=published,
                fetched=published,
                passages=tuple(passages),
                content_hash=digest,
            )
        )
        total += k
    return docs


def pct(values: list[float]) -> dict[str, float]:
    """p50/p95/p99 in milliseconds."""
    q = statistics.quantiles(values, n=100)
    return {"p50_ms": round(q[49], 2), "p95_ms": round(q[94], 2), "p99_ms": round(q[98], 2)}


def main() -> None:
    """Run the benchmark."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--passages", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--random-vectors", action="store_true")
    ap.add_argument("--dir", default="/tmp/narrawatch-index-bench")
    args = ap.parse_args()
    rng = random.Random(1)
    path = Path(args.dir)
    shutil.rmtree(path, ignore_errors=True)
    emb = HashingEmbedder(args.dim)
    pool = paragraphs()
    docs = make_docs(pool, args.passages, rng)
    emit(stage="corpus", documents=len(docs), passages=args.passages, paragraph_pool=len(pool), dim=args.dim)

    t0 = time.perf_counter()
    batches = []
    nprng = np.random.default_rng(1)
    for i in range(0, len(docs), args.batch):
        part = []
        for d in docs[i : i + args.batch]:
            if args.random_vectors:
                v = nprng.standard_normal((len(d.passages), args.dim)).astype(np.float32)
                v /= np.linalg.norm(v, axis=1, keepdims=True)
            else:
                v = emb.embed_documents([p.text for p in d.passages])
            part.append(IndexedDocument(d, v))
        batches.append(part)
    emit(stage="embed", seconds=round(time.perf_counter() - t0, 1))

    index = EmbeddedIndex(path, emb.space)
    t0 = time.perf_counter()
    for part in batches:
        index.upsert(part)
    ingest = time.perf_counter() - t0
    del batches
    emit(
        stage="ingest",
        seconds=round(ingest, 1),
        docs_per_s=round(len(docs) / ingest),
        passages_per_s=round(args.passages / ingest),
        batch=args.batch,
    )
    index.close()
    t0 = time.perf_counter()
    index = EmbeddedIndex(path, emb.space)
    emit(stage="reopen", seconds=round(time.perf_counter() - t0, 2), rss_mb=round(rss_mb()))

    sources = sorted({d.source_id for d in docs})
    filters = SearchFilters(
        sources=tuple(sources[:3]),
        languages=("ru",),
        since=datetime(2024, 6, 1, tzinfo=UTC),
        until=datetime(2024, 9, 1, tzinfo=UTC),
    )
    qrng = random.Random(2)
    queries = []
    for _ in range(args.queries):
        text = pool[qrng.randrange(len(pool))][1]
        words = [w for w in text.split() if len(w) > 4]
        queries.append((" ".join(qrng.sample(words, min(3, len(words)))), emb.embed_query(text)))
    for mode in ("keyword", "semantic", "hybrid"):
        for label, f in (("none", SearchFilters()), ("source+lang+3months", filters)):
            times, n = [], 0
            for text, vec in queries:
                t = time.perf_counter()
                hits = index.search(SearchQuery(text=text, vector=vec, mode=mode, k=10, filters=f))
                times.append((time.perf_counter() - t) * 1000)
                n += len(hits)
            emit(stage="search", mode=mode, filters=label, mean_hits=round(n / len(queries), 1), **pct(times))

    # recall@10 of the vector search vs brute force over every passage (exact search: 1.0)
    pv = index.passage_vectors()
    recalls = []
    for _, vec in queries[:50]:
        # recombined paragraphs repeat, so compare scores (ties are equally correct answers)
        tenth = float(np.sort(pv.vectors @ vec)[-10])
        hits = index.search(SearchQuery(vector=vec, mode="semantic", k=10, group_by_document=False))
        recalls.append(sum(1 for h in hits if (h.semantic_score or 0.0) >= tenth - 1e-5) / 10)
    del pv
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    parts = {
        "sqlite_mb": round(sum(p.stat().st_size for p in path.glob("documents.sqlite3*")) / 2**20, 1),
        "tantivy_mb": round(sum(p.stat().st_size for p in (path / "fulltext").rglob("*")) / 2**20, 1),
    }
    emit(
        stage="footprint",
        recall_at_10=round(float(np.mean(recalls)), 4),
        size_mb=round(size / 2**20, 1),
        **parts,
        rss_mb=round(rss_mb()),
        max_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    )
    t0 = time.perf_counter()
    counts = index.count("day")
    emit(stage="count_by_day", ms=round((time.perf_counter() - t0) * 1000, 1), days=len(counts))
    index.close()


if __name__ == "__main__":
    main()
