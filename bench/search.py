"""Search on the embedded index at 10k / 100k / 1M passages: latency, recall, disk, memory.

Corpus: documents of 1-5 recombined real paragraphs of telegram_ru_posts.jsonl
(``bench.index_scale.make_docs``; no random words), 90% ``ru`` / 10% ``uk``, published over 11
months. Vectors: ``HashingEmbedder`` at 512-d (the default model's dimension; exact kNN cost
does not depend on what the vectors mean, and embedding 1M passages with the real model takes
hours on two cores). Built once per size under ``--dir`` (reused when complete).

Search runs in a **separate searcher process** (``read_only=True``, like ``narrawatch search`` or
the API), so its resident memory is the searcher's alone: RSS after open, after the timed
queries, and peak. Modes: keyword, semantic, hybrid; each without filters and with
``sources(3 of 24) + language ru + 3 months`` (the filters are applied before ranking).
recall@10 vs exact: semantic search is exact kNN (a full matrix product), so recall is 1.0 by
construction; it is still measured against a separate brute force (ties at the 10th score count
as correct), without and with filters. Keyword (tantivy BM25 top-k) and hybrid (RRF of the two
exact lists) are exact as well.

    .venv/bin/python -m bench.search --sizes 10000,100000 [--queries 200] [--dir /tmp/nw-bench-search]
        [--precision float16|float32]

``--precision`` is the searcher's ``index.vector_precision`` (the in-memory matrix dtype; the
index on disk is the same). Recall is always against exact float32 brute force
(``passage_vectors`` returns SQLite's float32 vectors at either precision).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import ROOT, Stopwatch, append_table, emit, loadavg, pct, rss_mib

__all__ = ["build", "main", "run", "search_in_process"]

DIM = 512
MODES = ("keyword", "semantic", "hybrid")


def _dir_mib(path: Path, pattern: str = "*") -> float:
    return round(sum(p.stat().st_size for p in path.rglob(pattern) if p.is_file()) / 2**20, 1)


def build(path: Path, n_passages: int, *, batch: int = 500, seed: int = 1) -> dict[str, Any]:
    """Build (or reuse) an index of ``n_passages`` recombined real passages at ``path``."""
    from bench.index_scale import make_docs, paragraphs
    from core.documents import IndexedDocument
    from index.embed import HashingEmbedder
    from index.local import EmbeddedIndex

    marker = path / "bench.json"
    if marker.exists():
        info: dict[str, Any] = json.loads(marker.read_text())
        if info.get("passages") == n_passages:
            info["reused"] = True
            return info
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    emb = HashingEmbedder(DIM)
    rng = random.Random(seed)
    docs = make_docs(paragraphs(), n_passages, rng)
    index = EmbeddedIndex(path / "index", emb.space)
    embed_sw, upsert_sw = Stopwatch(), Stopwatch()
    for i in range(0, len(docs), batch):
        part = docs[i : i + batch]
        with embed_sw:
            items = [IndexedDocument(d, emb.embed_documents([p.text for p in d.passages])) for d in part]
        with upsert_sw:
            index.upsert(items)
    index.close()
    info = {
        "passages": n_passages,
        "documents": len(docs),
        "upsert_s": round(upsert_sw.wall, 1),
        "upsert_passages_per_s": round(n_passages / upsert_sw.wall),
        "hash_embed_s": round(embed_sw.wall, 1),
        "disk_mib": _dir_mib(path / "index"),
        "sqlite_mib": _dir_mib(path / "index", "documents.sqlite3*"),
        "tantivy_mib": _dir_mib(path / "index" / "fulltext"),
        "builder_peak_rss_mib": rss_mib(peak=True),
        "reused": False,
    }
    marker.write_text(json.dumps(info))
    return info


def _queries(n: int, seed: int = 2) -> list[tuple[str, Any]]:
    from bench.index_scale import paragraphs
    from index.embed import HashingEmbedder

    emb = HashingEmbedder(DIM)
    pool = paragraphs()
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        text = pool[rng.randrange(len(pool))][1]
        words = [w for w in text.split() if len(w) > 4] or text.split()
        out.append((" ".join(rng.sample(words, min(3, len(words)))), emb.embed_query(text)))
    return out


def search_in_process(
    index_dir: Path, n_queries: int, recall_queries: int = 50, precision: str = "float16"
) -> list[dict[str, Any]]:
    """The searcher side: open read-only, time every mode x filter, recall, RSS. Returns records."""
    from core.documents import SearchFilters, SearchQuery
    from index.embed import HashingEmbedder
    from index.local import EmbeddedIndex

    out: list[dict[str, Any]] = []
    queries = _queries(n_queries)
    rss0 = rss_mib()
    t0 = time.perf_counter()
    index = EmbeddedIndex(index_dir, HashingEmbedder(DIM).space, read_only=True, vector_precision=precision)  # type: ignore[arg-type]
    open_s = time.perf_counter() - t0
    out.append({"stage": "open", "open_s": round(open_s, 2), "rss_before_open_mib": rss0, "rss_mib": rss_mib()})
    sources = sorted(index.count("source"))
    filters = SearchFilters(
        sources=tuple(sources[:3]),
        languages=("ru",),
        since=datetime(2024, 6, 1, tzinfo=UTC),
        until=datetime(2024, 9, 1, tzinfo=UTC),
    )
    variants = (("none", SearchFilters()), ("3 sources+ru+3 months", filters))
    for text, vec in queries[:5]:  # warm-up: tantivy searcher, BLAS threads
        index.search(SearchQuery(text=text, vector=vec, mode="hybrid", k=10))
    for mode in MODES:
        for label, f in variants:
            times, hits = [], 0
            for text, vec in queries:
                t = time.perf_counter()
                res = index.search(SearchQuery(text=text, vector=vec, mode=mode, k=10, filters=f))  # type: ignore[arg-type]
                times.append((time.perf_counter() - t) * 1000)
                hits += len(res)
            p = pct(times)
            out.append(
                {
                    "stage": "search",
                    "mode": mode,
                    "filters": label,
                    "queries": len(queries),
                    "p50_ms": p["p50"],
                    "p95_ms": p["p95"],
                    "p99_ms": p["p99"],
                    "mean_hits": round(hits / len(queries), 1),
                    "load": loadavg(),
                }
            )
    rss_search = rss_mib()
    for label, f in variants:
        pv = index.passage_vectors(f)
        recalls = []
        for _, vec in queries[:recall_queries]:
            scores = np.sort(pv.vectors @ vec)
            if len(scores) == 0:
                continue
            tenth = float(scores[-min(10, len(scores))])
            res = index.search(SearchQuery(vector=vec, mode="semantic", k=10, filters=f, group_by_document=False))
            want = min(10, len(scores))
            recalls.append(sum(1 for h in res if (h.semantic_score or 0.0) >= tenth - 1e-5) / want)
        out.append(
            {
                "stage": "recall",
                "mode": "semantic",
                "filters": label,
                "queries": len(recalls),
                "recall_at_10": round(float(np.mean(recalls)) if recalls else float("nan"), 4),
                "filtered_passages": len(pv.vectors),
            }
        )
        del pv
    out.append(
        {
            "stage": "memory",
            "rss_after_open_mib": out[0]["rss_mib"],
            "rss_after_search_mib": rss_search,
            "peak_rss_mib": rss_mib(peak=True),
        }
    )
    index.close()
    return out


def run(
    sizes: tuple[int, ...] = (10_000,),
    *,
    queries: int = 200,
    base: Path = Path("/tmp/nw-bench-search"),
    write: bool = True,
    precision: str = "float16",
) -> list[dict[str, Any]]:
    """Build each size (reusing complete builds) and measure it in a searcher subprocess."""
    rows: list[dict[str, Any]] = []
    for n in sizes:
        info = emit("search", stage="build", **build(base / f"p{n}", n))
        child = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.search",
                "--searcher",
                str(base / f"p{n}" / "index"),
                "--queries",
                str(queries),
                "--precision",
                precision,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if child.returncode != 0:
            emit("search", stage="error", passages=n, stderr=child.stderr[-2000:])
            continue
        recs = [json.loads(line) for line in child.stdout.splitlines() if line.startswith("{")]
        mem = next(r for r in recs if r["stage"] == "memory")
        opened = next(r for r in recs if r["stage"] == "open")
        recall = {r["filters"]: r["recall_at_10"] for r in recs if r["stage"] == "recall"}
        for r in recs:
            if r["stage"] == "search":
                rows.append(
                    emit(
                        "search",
                        passages=n,
                        documents=info["documents"],
                        precision=precision,
                        **r,
                        recall_at_10=recall.get(r["filters"], "") if r["mode"] == "semantic" else "exact",
                    )
                )
        rows.append(
            emit(
                "search",
                stage="footprint",
                passages=n,
                precision=precision,
                documents=info["documents"],
                disk_mib=info["disk_mib"],
                sqlite_mib=info["sqlite_mib"],
                tantivy_mib=info["tantivy_mib"],
                open_s=opened["open_s"],
                searcher_rss_after_open_mib=mem["rss_after_open_mib"],
                searcher_rss_after_search_mib=mem["rss_after_search_mib"],
                searcher_peak_rss_mib=mem["peak_rss_mib"],
                upsert_passages_per_s=info["upsert_passages_per_s"],
                upsert_s=info["upsert_s"],
                builder_peak_rss_mib=info["builder_peak_rss_mib"],
                reused_build=info["reused"],
            )
        )
        if write:
            params = {
                "passages": n,
                "documents": info["documents"],
                "queries": queries,
                "dim": DIM,
                "vectors": "HashingEmbedder (512-d)",
                "k": 10,
                "vector_precision": precision,
            }
            append_table(
                f"Search latency, embedded index, {n:,} passages",
                [r for r in rows if r.get("passages") == n and r["stage"] == "search"],
                params=params,
                columns=["mode", "filters", "p50_ms", "p95_ms", "p99_ms", "mean_hits", "recall_at_10", "load"],
                notes="searcher = separate read-only process; semantic = exact kNN (recall 1.0 by "
                "construction, measured against brute force); keyword/hybrid exact top-k",
            )
            append_table(
                f"Index footprint, {n:,} passages",
                [r for r in rows if r.get("passages") == n and r["stage"] == "footprint"],
                params=params,
                columns=[
                    "passages",
                    "documents",
                    "disk_mib",
                    "sqlite_mib",
                    "tantivy_mib",
                    "open_s",
                    "searcher_rss_after_open_mib",
                    "searcher_rss_after_search_mib",
                    "searcher_peak_rss_mib",
                    "upsert_passages_per_s",
                    "upsert_s",
                    "builder_peak_rss_mib",
                    "reused_build",
                ],
            )
    return rows


def main(argv: list[str] | None = None) -> None:
    """Command line (``--searcher DIR`` is the child side)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--dir", default="/tmp/nw-bench-search")
    ap.add_argument("--searcher", help=argparse.SUPPRESS)
    ap.add_argument("--no-write", action="store_true", help="do not append to bench/RESULTS.md")
    ap.add_argument("--precision", choices=("float32", "float16"), default="float16", help="index.vector_precision")
    a = ap.parse_args(argv)
    if a.searcher:
        for rec in search_in_process(Path(a.searcher), a.queries, precision=a.precision):
            print(json.dumps(rec), flush=True)
        return
    sizes = tuple(int(x) for x in a.sizes.split(",") if x)
    run(sizes, queries=a.queries, base=Path(a.dir), write=not a.no_write, precision=a.precision)


if __name__ == "__main__":
    main()
