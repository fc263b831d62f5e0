"""PostgreSQL index vs the embedded index on one corpus: ingest passages/s, search p50/p95/p99
(keyword, semantic, hybrid; unfiltered and source+language+3 months), recall@10 of semantic
search against exact cosine, size. Prints one JSON object per line.

The corpus is :mod:`bench.index_scale`'s (recombined real Telegram paragraphs, HashingEmbedder
vectors). PostgreSQL: ``NARRAWATCH_PG_URL``, or a pgserver started in a temporary directory.

    .venv/bin/python bench/index_pg.py --passages 100000 [--dim 512] [--backends embedded,postgresql,postgresql-hnsw]
        [--probe-fractions 0.1,0.2]

``postgresql`` is the default configuration (IVFFlat trained as the set grows); ``postgresql-hnsw``
the ``ann: hnsw`` one. Recall is measured against exact cosine over the corpus held in memory,
unfiltered and with the source+language+3-month filter.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.index_scale import emit, make_docs, paragraphs, pct  # noqa: E402
from core.documents import IndexedDocument, SearchFilters, SearchQuery  # noqa: E402
from core.query import parse_query  # noqa: E402
from index.embed import HashingEmbedder  # noqa: E402


def _open(backend: str, space: Any, workdir: Path, prefix: str, probe_fraction: float = 0.1) -> Any:
    if backend == "embedded":
        from index.local import EmbeddedIndex

        shutil.rmtree(workdir / "embedded", ignore_errors=True)
        return EmbeddedIndex(workdir / "embedded", space)
    from index.postgres import EXACT_BELOW, PostgresIndex

    url = os.environ.get("NARRAWATCH_PG_URL")
    if not url:
        import pgserver  # type: ignore[import-untyped, unused-ignore]

        srv = pgserver.get_server(tempfile.mkdtemp(prefix="nwpgb", dir="/tmp"), cleanup_mode="delete")
        url = str(srv.get_uri())
        globals()["_server"] = srv  # keep it alive for the run
    ann = "hnsw" if backend == "postgresql-hnsw" else "ivfflat"
    return PostgresIndex(
        url, space, table_prefix=prefix, ann=ann, ann_min_rows=EXACT_BELOW, probe_fraction=probe_fraction
    )


def run(backend: str, args: argparse.Namespace, batches: list[list[IndexedDocument]], queries: list[Any]) -> None:
    """Ingest then search on one backend."""
    emb = HashingEmbedder(args.dim)
    prefix = f"nwbench_{uuid.uuid4().hex[:8]}"
    index = _open(backend, emb.space, Path(args.dir), prefix)
    try:
        t0 = time.perf_counter()
        for part in batches:
            index.upsert(part)
        ingest = time.perf_counter() - t0
        emit(backend=backend, stage="ingest", seconds=round(ingest, 1), passages_per_s=round(args.passages / ingest))
        docs = [i.document for b in batches for i in b]
        sources = sorted({d.source_id for d in docs})
        filters = SearchFilters(
            sources=tuple(sources[:3]),
            languages=("ru",),
            since=datetime(2024, 6, 1, tzinfo=UTC),
            until=datetime(2024, 9, 1, tzinfo=UTC),
        )
        fractions = args.probe_fractions if backend == "postgresql" else [None]
        for fraction in fractions:
            if fraction is not None:
                index.probe_fraction = fraction
            tag = {} if fraction is None else {"probe_fraction": fraction}
            for mode in ("keyword", "semantic", "hybrid"):
                for label, f in (("none", SearchFilters()), ("source+lang+3months", filters)):
                    times = []
                    for text, expr, vec in queries:
                        t = time.perf_counter()
                        index.search(SearchQuery(text=text, expr=expr, vector=vec, mode=mode, k=10, filters=f))
                        times.append((time.perf_counter() - t) * 1000)
                    emit(backend=backend, stage="search", mode=mode, filters=label, **tag, **pct(times))
            _recall(backend, index, batches, queries, filters, tag)
        emit(backend=backend, stage="footprint", size_mb=round(index.stats().size_bytes / 2**20, 1))
    finally:
        if backend.startswith("postgresql"):
            index.drop()
        index.close()


def _recall(
    backend: str,
    index: Any,
    batches: list[list[IndexedDocument]],
    queries: list[Any],
    filters: SearchFilters,
    tag: dict[str, Any],
) -> None:
    """Semantic recall@10 against exact cosine over the corpus in memory, unfiltered and filtered."""
    matrix = np.concatenate([i.vectors for b in batches for i in b])
    meta = [
        (i.document.source_id, i.document.language, i.document.published)
        for b in batches
        for i in b
        for _ in i.document.passages
    ]
    keep = np.array(
        [s in filters.sources and lang == "ru" and filters.since <= t < filters.until for s, lang, t in meta]  # type: ignore[operator]
    )
    for label, f, mask in (("none", SearchFilters(), None), ("source+lang+3months", filters, keep)):
        recalls = []
        for _, _, vec in queries[:50]:
            scores = matrix @ vec if mask is None else (matrix @ vec)[mask]
            tenth = float(np.sort(scores)[-10])
            hits = index.search(SearchQuery(vector=vec, mode="semantic", k=10, filters=f, group_by_document=False))
            recalls.append(sum(1 for h in hits if (h.semantic_score or 0.0) >= tenth - 1e-5) / 10)
        emit(
            backend=backend,
            stage="recall",
            **tag,
            filters=label,
            filtered_passages=int(len(matrix) if mask is None else mask.sum()),
            recall_at_10=round(float(np.mean(recalls)), 4),
        )


def main() -> None:
    """Run the comparison."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--passages", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--backends", default="embedded,postgresql")
    ap.add_argument("--dir", default="/tmp/narrawatch-pg-bench")
    ap.add_argument(
        "--probe-fractions",
        default="0.1",
        type=lambda v: [float(x) for x in v.split(",")],
        help="postgresql: repeat the searches at each ivfflat probe fraction (e.g. 0.05,0.1,0.2)",
    )
    args = ap.parse_args()
    Path(args.dir).mkdir(parents=True, exist_ok=True)
    rng = random.Random(1)
    emb = HashingEmbedder(args.dim)
    pool = paragraphs()
    docs = make_docs(pool, args.passages, rng)
    batches = [
        [IndexedDocument(d, emb.embed_documents([p.text for p in d.passages])) for d in docs[i : i + args.batch]]
        for i in range(0, len(docs), args.batch)
    ]
    emit(stage="corpus", documents=len(docs), passages=args.passages, dim=args.dim)
    qrng = random.Random(2)
    queries = []
    for _ in range(args.queries):
        text = pool[qrng.randrange(len(pool))][1]
        words = [w for w in re.findall(r"\w+", text) if len(w) > 4]  # plain words: no stray quotes
        typed = " ".join(qrng.sample(words, min(3, len(words))))
        # as the search page sends it: the query syntax's AST (every word required), and its vector
        queries.append((typed, parse_query(typed).text, emb.embed_query(text)))
    for backend in args.backends.split(","):
        run(backend, args, batches, queries)


if __name__ == "__main__":
    main()
