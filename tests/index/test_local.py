"""Embedded index specifics: config/registry wiring, locking, self-healing, reader while writer."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.documents import SearchQuery
from core.errors import IndexBackendError, IndexUnavailable
from core.settings import Config, ServiceSettings
from index.base import INDEX_BACKENDS, DocumentIndex
from index.embed import HashingEmbedder
from index.local import EmbeddedIndex
from tests.contract import embed, load_corpus

ROOT = Path(__file__).resolve().parents[2]
EMB = HashingEmbedder(256)
DOCS = load_corpus()


def test_registered_and_opened_from_config(tmp_path: Path) -> None:
    cls: Any = INDEX_BACKENDS.get("embedded")
    config = Config(root=tmp_path, service=ServiceSettings(data_dir="state"), sources=())
    index = cls.open(config, EMB.space)
    try:
        assert isinstance(index, DocumentIndex) and isinstance(index, EmbeddedIndex)
        assert index.path == tmp_path / "state" / "index"
        index.upsert(embed(DOCS[:3], EMB))
    finally:
        index.close()
    assert (tmp_path / "state" / "index" / "documents.sqlite3").is_file()


def test_one_writer_readers_read_only(tmp_path: Path) -> None:
    with pytest.raises(IndexUnavailable):
        EmbeddedIndex(tmp_path / "none", EMB.space, read_only=True)
    with EmbeddedIndex(tmp_path / "idx", EMB.space) as writer:
        writer.upsert(embed(DOCS[:10], EMB))
        with pytest.raises(IndexBackendError, match="another process"):
            EmbeddedIndex(tmp_path / "idx", EMB.space)
        with EmbeddedIndex(tmp_path / "idx", EMB.space, read_only=True) as reader:
            assert reader.stats().documents == 10
            with pytest.raises(IndexBackendError):
                reader.upsert(embed(DOCS[10:11], EMB))
            writer.upsert(embed(DOCS[10:20], EMB))
            p = DOCS[15].passages[0].text
            hit = reader.search(SearchQuery(text=p, vector=EMB.embed_query(p), k=1))
            assert hit[0].document_id == DOCS[15].id


@pytest.mark.parametrize("damage", ["delete_dir", "corrupt_meta", "stale_state"])
def test_fulltext_is_rebuilt_or_caught_up_from_sqlite(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "idx"
    with EmbeddedIndex(path, EMB.space) as index:
        index.upsert(embed(DOCS[:40], EMB))
        state = (path / "fulltext.json").read_text()
        index.upsert(embed(DOCS[40:80], EMB))
    if damage == "delete_dir":
        shutil.rmtree(path / "fulltext")
    elif damage == "corrupt_meta":
        (path / "fulltext" / "meta.json").write_text("{not json")
    else:  # tantivy committed batch 2 but its side file still says batch 1: re-applied idempotently
        (path / "fulltext.json").write_text(state)
    with EmbeddedIndex(path, EMB.space) as index:
        check = index.consistency()
        assert check["fulltext_passages"] == check["passages"] == sum(len(d.passages) for d in DOCS[:80])
        assert all(index.fulltext_count(d.id) == len(d.passages) for d in DOCS[:80])
        word = "козленком"
        assert index.search(SearchQuery(text=word, mode="keyword", k=1))


READER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from core.documents import SearchQuery
    from index.embed import HashingEmbedder
    from index.local import EmbeddedIndex

    emb = HashingEmbedder(256)
    index = EmbeddedIndex(Path(sys.argv[1]), emb.space, read_only=True)
    for line in sys.stdin:
        req = json.loads(line)
        if req is None:
            break
        out = []
        for doc_id, passage in req:
            kw = index.search(SearchQuery(text=passage, mode="keyword", k=3))
            sem = index.search(SearchQuery(vector=emb.embed_query(passage), mode="semantic", k=1))
            out.append([doc_id in [h.document_id for h in kw], sem[0].document_id == doc_id if sem else False])
        print(json.dumps({"found": out, "documents": index.stats().documents}), flush=True)
    """
)


def test_reader_process_sees_each_commit_while_writer_writes(tmp_path: Path) -> None:
    path = tmp_path / "idx"
    writer = EmbeddedIndex(path, EMB.space)
    try:
        writer.upsert(embed(DOCS[:5], EMB))
        reader = subprocess.Popen(
            [sys.executable, "-c", READER, str(path)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert reader.stdin is not None and reader.stdout is not None
        try:
            seen = []
            for start in range(5, 125, 20):
                batch = DOCS[start : start + 20]
                writer.upsert(embed(batch, EMB))  # acknowledged: the other process must see it now
                probe = [[d.id, max((p.text for p in d.passages), key=len)] for d in batch[::5]]
                reader.stdin.write(json.dumps(probe) + "\n")
                reader.stdin.flush()
                answer = json.loads(reader.stdout.readline())
                assert all(kw and sem for kw, sem in answer["found"]), answer
                seen.append(answer["documents"])
            assert seen == list(range(25, 125 + 5, 20))[: len(seen)]
            reader.stdin.write("null\n")
            reader.stdin.flush()
            assert reader.wait(timeout=60) == 0
        finally:
            if reader.poll() is None:
                reader.kill()
                reader.wait()
    finally:
        writer.close()


# -- index.vector_precision --------------------------------------------------------------------


def _vector_precision_index(tmp_path: Path) -> Path:
    with EmbeddedIndex(tmp_path / "idx", EMB.space) as writer:
        writer.upsert(embed(DOCS, EMB))
    return tmp_path / "idx"


def test_float16_from_config_halves_the_matrix(tmp_path: Path) -> None:
    from core.settings import IndexSettings

    assert IndexSettings().vector_precision == "float16"  # the measured default (docs/index.md)

    path = _vector_precision_index(tmp_path)
    service = ServiceSettings(index=IndexSettings(path=str(path), vector_precision="float16"))
    config = Config(root=tmp_path, service=service, sources=())
    with (
        EmbeddedIndex.open(config, EMB.space) as half,
        EmbeddedIndex(path, EMB.space, read_only=True, vector_precision="float32") as full,
    ):
        assert half._vectors.vectors.dtype == np.float16
        assert full._vectors.vectors.dtype == np.float32
        assert half._vectors.vectors.nbytes * 2 == full._vectors.vectors.nbytes
        assert half.consistency()["vector_rows"] == full.consistency()["vector_rows"]
    with pytest.raises(IndexBackendError, match="precision"):
        EmbeddedIndex(path, EMB.space, read_only=True, vector_precision="int8")  # type: ignore[arg-type]


@pytest.mark.parametrize("torch_kernel", [True, False], ids=["torch", "numpy-fallback"])
def test_float16_ranks_and_scores_like_float32(
    tmp_path: Path, torch_kernel: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same index directory, two precisions (no re-embed): same hits, same exact cosines."""
    from core.documents import SearchFilters
    from index import local_vectors

    if not torch_kernel:
        monkeypatch.setattr(local_vectors, "_torch", False)
    path = _vector_precision_index(tmp_path)
    ru_only = SearchFilters(languages=("ru",), sources=tuple(sorted({d.source_id for d in DOCS}))[:5])
    texts = [d.passages[0].text for d in DOCS[::9]] + ["Russia sanctions Ukraine war", "переговоры о перемирии"]
    with (
        EmbeddedIndex(path, EMB.space, read_only=True, vector_precision="float32") as full,
        EmbeddedIndex(path, EMB.space, read_only=True, vector_precision="float16") as half,
    ):
        for text in texts:
            for mode in ("semantic", "hybrid"):
                for f in (SearchFilters(), ru_only):
                    q = SearchQuery(text=text, vector=EMB.embed_query(text), mode=mode, k=10, filters=f)
                    a, b = full.search(q), half.search(q)
                    assert [(h.document_id, h.passage_index) for h in a] == [
                        (h.document_id, h.passage_index) for h in b
                    ]
                    assert [h.semantic_score for h in b] == pytest.approx([h.semantic_score for h in a], abs=1e-5)
        pa, pb = full.passage_vectors(ru_only), half.passage_vectors(ru_only)
        assert pb.vectors.dtype == np.float32 and pa.document_ids == pb.document_ids
        assert np.array_equal(pa.vectors, pb.vectors)  # SQLite's float32, not the float16 copy


def test_float16_rerank_beyond_quantisation_error() -> None:
    """Scores closer together than float16 resolves still come back in exact float32 order."""
    from index.local_store import StoreChanges
    from index.local_vectors import VectorMatrix

    rng = np.random.default_rng(7)
    dim, n = 64, 6000
    base = rng.standard_normal(dim).astype(np.float32)
    vecs = base + 0.3 * rng.standard_normal((n, dim)).astype(np.float32)  # cosines 0.9 +- 0.03
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    rows = [(i + 1, i // 3, i % 3, vecs[i].tobytes(), "s", "ru", "post", 0) for i in range(n)]
    exact = {i + 1: vecs[i] for i in range(n)}
    full = VectorMatrix(dim)
    half = VectorMatrix(
        dim,
        "float16",
        exact=lambda pids: np.stack([exact.get(p, np.full(dim, np.nan, np.float32)) for p in pids]),
    )
    for m in (full, half):
        m.apply(StoreChanges(seq=1, removed_pids=(), added=rows))
    swapped = 0
    for _ in range(10):
        q = base + 0.01 * rng.standard_normal(dim).astype(np.float32)
        q /= np.linalg.norm(q)
        mask = full.mask(None)
        a, b = full.rank(q, mask, 10), half.rank(q, mask, 10)
        approx = np.argsort(-(half.vectors[:n].astype(np.float32) @ q), kind="stable")[:10] + 1
        assert a.pids.tolist() == b.pids.tolist()
        swapped += a.pids.tolist() != approx.tolist()
        assert np.allclose(a.scores, b.scores, atol=1e-6)
    assert swapped  # float16 scores alone would have mis-ordered some of these top 10s
    # a passage deleted from SQLite after the last sync is dropped, not scored from stale data
    best = int(a.pids[0])
    del exact[best]
    again = half.rank(q, half.mask(None), 10)
    assert best not in again.pids.tolist() and len(again.pids) == 10
    assert half.cosine(q, [best, int(a.pids[1])]).keys() == {int(a.pids[1])}
