"""Embedded index: kill -9 during ingest loses no acknowledged write and self-heals tantivy."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.documents import SearchFilters, SearchQuery
from index.embed import HashingEmbedder
from index.local import EmbeddedIndex

ROOT = Path(__file__).resolve().parents[2]

WRITER = textwrap.dedent(
    """
    import json, os, signal, sys
    from pathlib import Path
    import index.local as local
    from index.embed import HashingEmbedder
    from tests.contract import embed, load_corpus, make_document

    path, rnd, crash_at = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    emb = HashingEmbedder(256)
    docs = load_corpus()
    index = local.EmbeddedIndex(path, emb.space)
    batches = 0
    if crash_at >= 0:
        def crash():
            if batches == crash_at:
                os.kill(os.getpid(), signal.SIGKILL)
        local._after_sqlite_commit = crash
    for b in range(1000):
        batch = []
        for i in range(6):
            d = docs[(b * 6 + i) % len(docs)]
            mark = f"mk{rnd}x{b}x{i}"
            batch.append(make_document(doc_id=f"{d.id}#{mark}", source_id=d.source_id, kind=d.kind, url=d.url,
                                       title=d.title, text=d.text + "\\n\\n" + mark, language=d.language,
                                       published=d.published))
        index.upsert(embed(batch, emb))
        batches += 1
        print(json.dumps([d.id for d in batch]), flush=True)
    """
)


def _run_and_kill(path: Path, rnd: int, rng: random.Random, crash_at: int) -> list[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(rnd), str(crash_at)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    acked: list[str] = []
    stop_after = rng.randint(2, 12)
    try:
        for line in proc.stdout:
            acked.extend(json.loads(line))
            if crash_at < 0 and len(acked) >= stop_after * 6:
                # land the kill at a random moment inside the next batch
                import time

                time.sleep(rng.uniform(0, 0.08))
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.wait(timeout=60)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL, "writer should have been killed"
    return acked


@pytest.mark.timeout(300)
def test_kill_minus_nine_loses_no_acknowledged_document(tmp_path: Path) -> None:
    rng = random.Random(20241130)
    emb = HashingEmbedder(256)
    path = tmp_path / "idx"
    acked: list[str] = []
    # rounds with crash_at >= 0 die between the SQLite and the tantivy commit of that batch
    for rnd, crash_at in enumerate([-1, 3, -1, 0, -1]):
        got = _run_and_kill(path, rnd, rng, crash_at)
        if crash_at >= 0:
            assert len(got) == crash_at * 6
        acked.extend(got)
        with EmbeddedIndex(path, emb.space) as index:
            check = index.consistency()
            assert check["passages"] == check["fulltext_passages"] == check["vector_rows"], check
            assert check["fulltext_seq"] == check["seq"], check
            for doc_id in acked:
                doc = index.get(doc_id)
                assert doc is not None, doc_id
                assert index.fulltext_count(doc_id) == len(doc.passages), doc_id
            for doc_id in rng.sample(acked, min(15, len(acked))):
                mark = doc_id.rsplit("#", 1)[1]
                hits = index.search(SearchQuery(text=mark, mode="keyword", k=5, group_by_document=False))
                assert [h.document_id for h in hits] == [doc_id]
                doc = index.get(doc_id)
                assert doc is not None
                vector = emb.embed_query(doc.passages[-1].text)
                only = SearchFilters(document_ids=(doc_id,))
                hit = index.search(SearchQuery(vector=vector, mode="semantic", k=1, filters=only))
                assert hit and hit[0].semantic_score == pytest.approx(1.0, abs=1e-4)
            assert len(index.passage_vectors(SearchFilters(document_ids=tuple(acked)))) == sum(
                len(d.passages) for d in map(index.get, acked) if d is not None
            )
    assert len(acked) > 30
