"""Embedded index specifics: config/registry wiring, locking, self-healing, reader while writer."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

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
    cls = INDEX_BACKENDS.get("embedded")
    config = Config(root=tmp_path, service=ServiceSettings(data_dir="state"), sources=())
    index = cls.open(config, EMB.space)
    try:
        assert isinstance(index, DocumentIndex)
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
