"""core.sqlite opens every store's file the one way; core.timefmt converts times once for all of them."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from alerts.outbox import Outbox
from core.sqlite import Database, Where, add_columns, connect, table_columns
from core.timefmt import from_iso, from_us, iso, iso_utc, to_us
from crawlers.sightings import SightingStore
from crawlers.state import CrawlStateStore
from index.local_store import SqliteStore
from monitors.store import MatchStore
from narrawatch.http.tokens import TokenStore

# A Telegram post time as the preview pages give it (Moscow offset), with microseconds.
POSTED = datetime(2024, 11, 21, 21, 3, 27, 123456, tzinfo=timezone(timedelta(hours=3)))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- opening ------------------------------------------------------------------------------------


def test_a_database_is_private_wal_and_waits_for_locks(tmp_path: Path) -> None:
    db = Database(tmp_path / "new" / "store.sqlite", synchronous="NORMAL")
    try:
        assert _mode(tmp_path / "new") == 0o700
        assert _mode(db.path) == 0o600
        assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert db.conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000
        assert db.conn.isolation_level is None  # autocommit: transactions are explicit
        db.script("CREATE TABLE t (x INTEGER)")
        with db.transaction() as c:
            c.execute("INSERT INTO t VALUES (1)")
        for sidecar in ("-wal", "-shm"):
            assert _mode(db.path.with_name(db.path.name + sidecar)) == 0o600
    finally:
        db.close()


def test_an_unknown_synchronous_level_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous"):
        connect(tmp_path / "x.sqlite", synchronous="FULL; DROP TABLE t")  # type: ignore[arg-type]


def test_read_only_creates_nothing_and_refuses_writes(tmp_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError):
        connect(tmp_path / "missing.sqlite", read_only=True)
    assert not (tmp_path / "missing.sqlite").exists()
    writer = connect(tmp_path / "w.sqlite")
    writer.execute("CREATE TABLE t (x INTEGER)")
    reader = connect(tmp_path / "w.sqlite", read_only=True)
    try:
        assert reader.execute("SELECT count(*) FROM t").fetchone()[0] == 0
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.execute("INSERT INTO t VALUES (1)")
    finally:
        reader.close()
        writer.close()


def test_read_only_index_opens_under_a_directory_with_uri_characters(tmp_path: Path) -> None:
    # Before: the path went into a "file:...?mode=ro" URI unescaped, so '#' cut it short
    # ("unable to open database file") and the server could not read the index.
    where = tmp_path / "data #2 ?old" / "index"
    SqliteStore(where).close()
    store = SqliteStore(where, read_only=True)
    try:
        assert store.seq() == 0
    finally:
        store.close()


STORES: dict[str, tuple[Callable[[Path], object], str, int]] = {
    # name: (open it at a path, its file name, synchronous level: 1 NORMAL, 2 FULL)
    "crawl state": (CrawlStateStore, "state.db", 2),
    "sightings": (SightingStore, "sightings.sqlite", 2),
    "matches": (MatchStore, "matches.sqlite", 1),
    "outbox": (Outbox, "outbox.sqlite", 2),
    "tokens": (TokenStore, "tokens.sqlite", 2),
}


@pytest.mark.parametrize("name", sorted(STORES))
def test_every_store_opens_the_one_way(tmp_path: Path, name: str) -> None:
    open_store, file_name, synchronous = STORES[name]
    path = tmp_path / "data" / file_name
    path.parent.mkdir()
    path.touch()
    os.chmod(path, 0o644)  # as an earlier version (or a copy with cp) left it
    store = open_store(path)
    try:
        conn = store._db.conn  # type: ignore[attr-defined]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == synchronous
        # before: the match store waited 5 s for another process's lock, the others 30 s
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000
        # before: the sightings store left an existing world-readable file as it was
        assert _mode(path) == 0o600
        assert store.path == path  # type: ignore[attr-defined]
    finally:
        store.close()  # type: ignore[attr-defined]


# -- transactions -------------------------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    db = Database(tmp_path / "t.sqlite")
    db.script("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
    yield db
    db.close()


def _committed(db: Database) -> list[int]:
    other = sqlite3.connect(db.path)  # another connection: sees only what was committed
    try:
        return [r[0] for r in other.execute("SELECT x FROM t ORDER BY x")]
    finally:
        other.close()


def test_a_transaction_commits_or_rolls_back_as_a_whole(db: Database) -> None:
    with db.transaction() as c:
        c.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)])
    with pytest.raises(RuntimeError), db.transaction() as c:
        c.execute("INSERT INTO t VALUES (3)")
        raise RuntimeError("crash mid-write")
    assert not db.conn.in_transaction
    assert _committed(db) == [1, 2]


def test_a_nested_transaction_joins_the_outer_one(db: Database) -> None:
    with db.transaction() as outer:
        outer.execute("INSERT INTO t VALUES (1)")
        with db.transaction() as inner:
            inner.execute("INSERT INTO t VALUES (2)")
        assert _committed(db) == []  # the inner block did not commit on its own
    assert _committed(db) == [1, 2]
    with pytest.raises(RuntimeError), db.transaction() as outer:
        outer.execute("INSERT INTO t VALUES (3)")
        with db.transaction() as inner:
            inner.execute("INSERT INTO t VALUES (4)")
            raise RuntimeError("inner failure")
    assert _committed(db) == [1, 2]  # both rolled back with the outer transaction
    with db.transaction() as c:  # and the next transaction starts cleanly
        c.execute("INSERT INTO t VALUES (5)")
    assert _committed(db) == [1, 2, 5]


# -- migrations ---------------------------------------------------------------------------------


def test_a_column_added_after_the_first_release_is_added_once(tmp_path: Path) -> None:
    conn = connect(tmp_path / "old.sqlite")
    try:
        later = (("lease_owner", "TEXT"), ("ack_note", "TEXT NOT NULL DEFAULT ''"))
        assert add_columns(conn, "deliveries", later) == ()  # no table yet: CREATE TABLE makes it whole
        assert table_columns(conn, "deliveries") == set()
        conn.execute("CREATE TABLE deliveries (alert_id TEXT NOT NULL, status TEXT NOT NULL)")
        conn.execute("INSERT INTO deliveries VALUES ('a1', 'pending')")
        assert add_columns(conn, "deliveries", later) == ("lease_owner", "ack_note")
        assert table_columns(conn, "deliveries") == {"alert_id", "status", "lease_owner", "ack_note"}
        assert add_columns(conn, "deliveries", later) == ()  # the second open adds nothing
        assert conn.execute("SELECT lease_owner, ack_note FROM deliveries").fetchall() == [(None, "")]
    finally:
        conn.close()


def test_where_builds_the_filtered_read_with_its_parameters_in_order() -> None:
    since = datetime(2024, 11, 21, tzinfo=UTC)
    where = Where("NOT hidden").one_of("narrative_id", ["ru-biolabs", "ua-grain"]).between("published", since, None)
    where.equal("outlet", None).equal("language", "ru").one_of("source_id", None)
    sql, args = where.select("SELECT id FROM matches", "published, id", limit=50, offset=100)
    assert sql == (
        "SELECT id FROM matches WHERE NOT hidden AND narrative_id IN (?, ?) AND published >= ? AND language = ?"
        " ORDER BY published, id LIMIT ? OFFSET ?"
    )
    assert args == ["ru-biolabs", "ua-grain", to_us(since), "ru", 50, 100]
    assert Where().select("SELECT id FROM t", "id") == ("SELECT id FROM t ORDER BY id", [])


# -- time conversions ---------------------------------------------------------------------------


def test_epoch_microseconds_are_exact_and_read_back_in_utc() -> None:
    us = to_us(POSTED)
    assert us == 1_732_212_207_123_456
    back = from_us(us)
    assert back == POSTED and back.tzinfo == UTC and back.microsecond == 123456
    assert back.isoformat() == "2024-11-21T18:03:27.123456+00:00"
    # a float of seconds would not survive this: 1 µs apart stays 1 apart
    assert to_us(POSTED + timedelta(microseconds=1)) - us == 1
    old = datetime(1969, 7, 20, 20, 17, 40, 1, tzinfo=UTC)
    assert from_us(to_us(old)) == old
    assert from_us(None) is None


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        to_us(datetime(2024, 11, 21, 18, 3, 27))


def test_iso_text_round_trips_with_microseconds() -> None:
    assert iso_utc(POSTED) == "2024-11-21T18:03:27.123456+00:00"
    assert iso(POSTED) == "2024-11-21T21:03:27.123456+03:00"
    for text in (iso_utc(POSTED), iso(POSTED)):
        back = from_iso(text)
        assert back == POSTED and back is not None and back.microsecond == 123456
    assert from_iso(iso_utc(POSTED)).tzinfo == UTC  # type: ignore[union-attr]
    assert iso(None) is None and iso_utc(None) is None
    assert from_iso(None) is None and from_iso("") is None
