"""Contract cases only a shared DocumentIndex needs (PostgreSQL): several writer processes, kill -9.

Real documents (the contract corpus, tests/data/index/posts.jsonl and en_items.jsonl), real
processes (:mod:`tests.contract.pg_writer`), a real PostgreSQL (:mod:`tests.support.pg`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import yaml

from core.documents import SearchQuery
from core.errors import ConfigError, IndexBackendError, IndexUnavailable
from core.settings import load_config
from index.embed import HashingEmbedder
from index.postgres import PostgresIndex
from index.postgres_conn import settings_url
from index.postgres_lifecycle import PostgresLifecycle
from tests.contract import embed, load_corpus, split_passages
from tests.contract.pg_writer import EMB, version
from tests.support.pg import ENV, unique_prefix

pytestmark = pytest.mark.postgresql

ROOT = Path(__file__).resolve().parents[2]
DOCS = load_corpus()
BY_ID = {d.id: d for d in DOCS}


@pytest.fixture
def prefix(pg_url: str) -> Iterator[str]:
    """A fresh table prefix, dropped afterwards."""
    name = unique_prefix()
    yield name
    with psycopg.connect(pg_url, autocommit=True) as conn:
        like = name.replace("_", r"\_") + r"\_%"
        for (table,) in conn.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE %s", (like,)).fetchall():
            conn.execute(f"DROP TABLE IF EXISTS {table} CASCADE")


def _writer(url: str, prefix: str, name: str, first: int, last: int, rounds: int, *more: int) -> subprocess.Popen[str]:
    args = [url, prefix, name, str(first), str(last), str(rounds), *(str(m) for m in more)]
    return subprocess.Popen(
        [sys.executable, "-m", "tests.contract.pg_writer", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _check_consistent(index: PostgresIndex) -> dict[str, str]:
    """Every document once, its passages exactly its text's paragraphs; returns {id: text}."""
    with index.connection() as conn:
        dup_docs = conn.execute(f"SELECT id FROM {index._d} GROUP BY id HAVING count(*) > 1").fetchall()
        dup_passages = conn.execute(
            f"SELECT doc_id, idx FROM {index._p} GROUP BY doc_id, idx HAVING count(*) > 1"
        ).fetchall()
    assert dup_docs == [] and dup_passages == []
    texts = {}
    for doc in index.iter_documents():
        assert [p.text for p in doc.passages] == [p.text for p in split_passages(doc.text)], doc.id
        texts[doc.id] = doc.text
    pv = index.passage_vectors()
    assert len(pv) == sum(len(split_passages(t)) for t in texts.values())
    return texts


@pytest.mark.timeout(300)
def test_two_processes_upsert_overlapping_batches(pg_url: str, prefix: str) -> None:
    rounds = 3
    a = _writer(pg_url, prefix, "A", 0, 150, rounds, 20, 1)
    b = _writer(pg_url, prefix, "B", 75, 225, rounds, 20, 2)
    assert a.wait(timeout=240) == 0 and b.wait(timeout=240) == 0
    with PostgresIndex(pg_url, EMB.space, table_prefix=prefix) as index:
        texts = _check_consistent(index)
        assert sorted(texts) == sorted(BY_ID)
        for i, doc in enumerate(DOCS):
            writers = ("A",) if i < 75 else ("B",) if i >= 150 else ("A", "B")
            # Each writer's rounds commit in order, so the last commit to a document is some
            # writer's last round: an older version landing last would be a lost update.
            assert texts[doc.id] in {version(doc, w, rounds - 1).text for w in writers}, doc.id
        hits = index.search(SearchQuery(text=f"Версия A-{rounds - 1}", mode="keyword", k=300))
        assert {h.document_id for h in hits} >= {d.id for d in DOCS[:75]}


@pytest.mark.timeout(300)
def test_writer_killed_mid_batch_leaves_each_document_old_or_new(pg_url: str, prefix: str) -> None:
    writer = _writer(pg_url, prefix, "K", 0, 225, 3, 225, 5, 1)  # round 0 commits, round 1 holds
    assert writer.stdout is not None
    lines = []
    for line in writer.stdout:
        lines.append(line.strip())
        if line.startswith("inside"):
            break
    assert lines == ["committed 0", "inside 1"]
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=60)
    with PostgresIndex(pg_url, EMB.space, table_prefix=prefix) as index:
        texts = _check_consistent(index)
        assert texts == {d.id: version(d, "K", 0).text for d in DOCS}
        # Nothing of the killed transaction is left holding a lock: the next writer gets through.
        again = index.upsert(embed([version(DOCS[0], "K", 1)], EMB))
        assert again.updated == (DOCS[0].id,)


@pytest.mark.timeout(300)
def test_lifecycle_create_status_reindex_switches_table_set(
    pg_url: str, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, pg_url)
    root = tmp_path / "cfg"
    root.mkdir()
    (root / "service.yaml").write_text(
        yaml.safe_dump(
            {
                "data_dir": str(tmp_path / "data"),
                "embedding": {"model": "hashing"},
                "index": {"backend": "postgresql", "postgresql": {"table_prefix": prefix}},
            }
        ),
        encoding="utf-8",
    )
    config = load_config(root, require_sources=False)
    life = PostgresLifecycle(config)
    assert life.status()["table_set"] is None  # status creates nothing
    with PostgresIndex(pg_url, EMB.space, table_prefix=prefix, read_only=False):
        pass
    assert life.status()["embedding_space"] == EMB.space.to_dict()
    with PostgresIndex.open(config, EMB.space) as index:
        index.upsert(embed(DOCS[:40], EMB))
    other = HashingEmbedder(128)
    summary = life.reindex(other)
    assert summary["documents"] == 40 and summary["table_set"] != summary["old_table_set_kept"]
    status = life.status()
    assert status["embedding_space"] == other.space.to_dict() and status["stats"]["documents"] == 40
    with PostgresIndex.open(config, other.space, read_only=True) as index:
        hit = index.search(SearchQuery(vector=other.embed_query(DOCS[3].passages[0].text), mode="semantic", k=1))
        assert hit[0].document_id == DOCS[3].id


def test_read_only_open_creates_nothing(pg_url: str, prefix: str) -> None:
    with pytest.raises(IndexUnavailable):
        PostgresIndex(pg_url, EMB.space, table_prefix=prefix, read_only=True)
    with psycopg.connect(pg_url) as conn:
        like = prefix.replace("_", r"\_") + r"\_%"
        assert conn.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE %s", (like,)).fetchall() == []
    with PostgresIndex(pg_url, EMB.space, table_prefix=prefix) as writer:
        writer.upsert(embed(DOCS[:3], EMB))
        with PostgresIndex(pg_url, EMB.space, table_prefix=prefix, read_only=True) as reader:
            assert reader.get(DOCS[1].id) == DOCS[1]
            with pytest.raises(IndexBackendError):
                reader.upsert(embed(DOCS[:1], EMB))


def test_settings_url_only_from_environment_and_unknown_keys_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "cfg"
    root.mkdir()
    service = root / "service.yaml"
    service.write_text(
        yaml.safe_dump({"index": {"backend": "postgresql", "postgresql": {"url": "postgresql://u:secret@h/db"}}}),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        load_config(root, require_sources=False)
    assert "url" in str(err.value)
    service.write_text(
        yaml.safe_dump({"index": {"backend": "postgresql", "postgresql": {"url_env": "NW_TEST_PG", "pool_size": 2}}}),
        encoding="utf-8",
    )
    config = load_config(root, require_sources=False)
    monkeypatch.delenv("NW_TEST_PG", raising=False)
    with pytest.raises(IndexUnavailable, match=r"\$NW_TEST_PG is not set"):
        settings_url(config)


def test_backend_is_registered_lazily() -> None:
    code = (
        "import sys; from narrawatch.builtins import register_builtins; register_builtins();"
        "from index.base import INDEX_BACKENDS; assert 'psycopg' not in sys.modules;"
        "cls = INDEX_BACKENDS.get('postgresql'); assert 'psycopg' in sys.modules; print(cls.__name__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "PostgresIndex"


def test_document_postgresql_cannot_hold_is_rejected_not_stored(pg_url: str, prefix: str) -> None:
    doc = DOCS[4]
    bad = version(doc, "NUL\x00", 0)
    with PostgresIndex(pg_url, EMB.space, table_prefix=prefix) as index:
        result = index.upsert(embed([bad, DOCS[5]], EMB))
        assert result.rejected == (doc.id,) and result.new == (DOCS[5].id,)
        assert index.get(doc.id) is None and index.get(DOCS[5].id) == DOCS[5]
