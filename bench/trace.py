"""Trace latency (``monitors.spread.trace``) over the search benchmark's corpora.

Uses the indexes ``bench.search`` builds (recombined real Telegram paragraphs, HashingEmbedder
512-d; built here when missing). Recombined paragraphs recur across documents, so tracing a
document finds real copies and partial copies, like reposts between channels. Two query kinds:
``document`` (a document id: its own passage vectors are the seeds) and ``claim`` (a real
paragraph's text, embedded with ``embed_query``). Timed end to end: seeds, candidate recall,
exact re-scoring, document fetches, copy/translation groups, first appearances, graph, timeline.

    .venv/bin/python -m bench.trace --sizes 10000,100000 [--queries 10]
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path
from typing import Any

from bench.common import Stopwatch, append_table, emit, loadavg, pct, rss_mib

__all__ = ["main", "run"]


def run(
    sizes: tuple[int, ...] = (10_000,),
    *,
    queries: int = 10,
    base: Path = Path("/tmp/nw-bench-search"),
    write: bool = True,
) -> list[dict[str, Any]]:
    """Trace ``queries`` documents and claims per corpus size; returns the JSON records."""
    from bench.index_scale import paragraphs
    from bench.search import DIM, build
    from index.embed import HashingEmbedder
    from index.local import EmbeddedIndex

    try:
        from monitors.spread import TraceQuery, trace
    except ImportError as exc:  # the module is being written by another helper
        return [emit("trace", stage="unavailable", error=str(exc))]
    rows: list[dict[str, Any]] = []
    emb = HashingEmbedder(DIM)
    pool = paragraphs()
    for n in sizes:
        info = build(base / f"p{n}", n)
        t0 = time.perf_counter()
        index = EmbeddedIndex(base / f"p{n}" / "index", emb.space, read_only=True)
        open_s = time.perf_counter() - t0
        rng = random.Random(5)
        doc_ids = [f"bench:{rng.randrange(info['documents'])}" for _ in range(queries)]
        claims = [pool[rng.randrange(len(pool))][1] for _ in range(queries)]
        kinds: list[tuple[str, list[Any]]] = [
            ("document", [TraceQuery(document_id=d) for d in doc_ids]),
            ("claim", [TraceQuery(claim=c) for c in claims]),
        ]
        trace(index, emb, kinds[0][1][0])  # warm-up
        for kind, qs in kinds:
            times, items, edges = [], 0, 0
            sw = Stopwatch()
            for q in qs:
                with sw:
                    t = time.perf_counter()
                    res = trace(index, emb, q)
                    times.append((time.perf_counter() - t) * 1000)
                items += len(res.items)
                edges += len(res.edges)
            p = pct(times, 1)
            rows.append(
                emit(
                    "trace",
                    stage="trace",
                    passages=n,
                    documents=info["documents"],
                    query=kind,
                    queries=len(qs),
                    p50_ms=p["p50"],
                    p95_ms=p["p95"],
                    max_ms=round(max(times), 1),
                    cpu_ms_per_trace=round(sw.cpu / len(qs) * 1000, 1),
                    mean_items=round(items / len(qs), 1),
                    mean_edges=round(edges / len(qs), 1),
                    open_s=round(open_s, 2),
                    rss_mib=rss_mib(),
                    load=loadavg(),
                )
            )
        index.close()
        if write:
            append_table(
                f"Trace latency, {n:,} passages",
                [r for r in rows if r["passages"] == n],
                params={
                    "passages": n,
                    "documents": info["documents"],
                    "queries": queries,
                    "dim": DIM,
                    "vectors": "HashingEmbedder (512-d)",
                },
                columns=[
                    "query",
                    "queries",
                    "p50_ms",
                    "p95_ms",
                    "max_ms",
                    "cpu_ms_per_trace",
                    "mean_items",
                    "mean_edges",
                    "open_s",
                    "rss_mib",
                    "load",
                ],
                notes="monitors.spread.trace end to end (seeds, recall, re-score, graph, timeline), "
                "default thresholds of the space; in-process read-only index",
            )
    return rows


def main(argv: list[str] | None = None) -> None:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000")
    ap.add_argument("--queries", type=int, default=10)
    ap.add_argument("--dir", default="/tmp/nw-bench-search")
    ap.add_argument("--no-write", action="store_true", help="do not append to bench/RESULTS.md")
    a = ap.parse_args(argv)
    run(tuple(int(x) for x in a.sizes.split(",") if x), queries=a.queries, base=Path(a.dir), write=not a.no_write)


if __name__ == "__main__":
    main()
