"""Data files are private: every store creates its files 0600 (and new directories 0700), whatever the umask.

Before core.files, ``tokens.sqlite``, ``state.db``, ``matches.sqlite``, the outbox, the embedded
index and the learned state were created 0644 (world-readable) under the usual umask 022.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts.outbox import Outbox
from core.files import private_file, secure_dir
from crawlers.state import CrawlStateStore
from index.embed import HashingEmbedder
from index.local import EmbeddedIndex
from index.local_store import DB_NAME
from monitors.decision import LearnedState, save_learned
from monitors.store import MatchStore
from narrawatch.http.tokens import TokenStore


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _all_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_every_store_creates_private_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    now = datetime(2024, 11, 21, 18, tzinfo=UTC)
    with TokenStore(data / "tokens.sqlite") as ts:
        ts.create("alice", "analyst")
        state = CrawlStateStore(data / "state.db")
        state.record_result("tg1", ok=True, now=now)
        with MatchStore(data / "matches.sqlite"), Outbox(data / "outbox.sqlite"):
            emb = HashingEmbedder()
            index = EmbeddedIndex(data / "index", emb.space)
            try:
                save_learned(data, LearnedState(space_key="k", model="hashing", created=now.isoformat(), models={}))
                files = _all_files(data)
                names = {p.name for p in files}
                # the live WAL sidecars are there too, and private like their databases
                assert {"tokens.sqlite", "tokens.sqlite-wal", "state.db", "matches.sqlite", "outbox.sqlite"} <= names
                assert {"narratives.json", "narratives.npz"} <= names
                # tantivy creates its own files: the index directory (0700, ours alone) protects them
                ours = [p for p in files if "index" not in p.relative_to(data).parts[:1] or p.name.startswith(DB_NAME)]
                leaky = {str(p.relative_to(data)): oct(_mode(p)) for p in ours if _mode(p) & 0o077}
                assert not leaky, leaky
                assert _mode(data) == 0o700 and _mode(data / "index") == 0o700
                assert _mode(data / "index" / DB_NAME) == 0o600
            finally:
                index.close()
        state.close()


def test_existing_world_readable_files_are_tightened(tmp_path: Path) -> None:
    db = tmp_path / "tokens.sqlite"
    with TokenStore(db) as ts:
        ts.create("alice", "read")
    for p in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        if p.exists():
            os.chmod(p, 0o644)  # as an earlier version left them
    with TokenStore(db):
        pass
    assert _mode(db) == 0o600
    for suffix in ("-wal", "-shm"):
        side = db.with_name(db.name + suffix)
        if side.exists():
            assert _mode(side) & 0o077 == 0


def test_an_existing_index_directory_is_tightened(tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    index_dir.mkdir()
    os.chmod(index_dir, 0o755)  # as an earlier version left it
    EmbeddedIndex(index_dir, HashingEmbedder().space).close()
    assert _mode(index_dir) == 0o700


def test_helpers_ignore_a_permissive_umask_and_leave_existing_dirs(tmp_path: Path) -> None:
    os.umask(0)
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    f = private_file(shared / "new" / "x.sqlite")
    assert _mode(f) == 0o600 and _mode(shared / "new") == 0o700
    assert _mode(shared) == 0o755  # chosen by the operator: not ours to change
    assert secure_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert _mode(tmp_path / "a") == 0o700 and _mode(tmp_path / "a" / "b") == 0o700
