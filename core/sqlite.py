"""SQLite opened the one way for every store: a private file, WAL, a busy timeout, one lock.

The crawl state, the sightings, the match store (and the verdicts in its file), the alert outbox,
the API tokens and the embedded index's database all open their file here:

* a writable file is created 0600 in a 0700 directory, or an existing one tightened
  (:func:`core.files.private_file`; SQLite gives its ``-wal``/``-shm`` sidecars the database
  file's mode); ``read_only`` opens an existing file with ``mode=ro`` and creates nothing;
* autocommit mode (``isolation_level=None``): every write transaction is opened explicitly with
  ``BEGIN IMMEDIATE`` (:meth:`Database.transaction`), so a writer holds the write lock before it
  reads what it changes and two writers queue instead of failing on a lock upgrade;
* journal ``WAL`` (readers, also in other processes, see a consistent snapshot while one writer
  writes) and the store's ``synchronous`` level: ``FULL`` by default (a commit is fsynced before
  it returns, so it survives power loss), ``NORMAL`` where a store chose it (the match store);
* a 30 s busy timeout: a second process waits for the write lock instead of failing at once;
* one connection per store, shared by the threads of a process under one re-entrant lock.

Schema: each store keeps its ``CREATE ... IF NOT EXISTS`` script; :func:`add_columns` migrates a
table an earlier release created (each listed column that is missing is added, once). Filtered
reads build their ``WHERE`` with :class:`Where`.

:class:`Database` is the SQLite side of the SQL seam (:mod:`core.sql`); the same stores run on
PostgreSQL through :class:`core.pgsql.PgDatabase`. A store is given a path (it opens and owns a
:class:`Database`) or an opened :class:`~core.sql.SqlDatabase` shared with other stores
(:func:`open_database`; the opener closes a shared one).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Literal, Self
from urllib.parse import quote

from core.files import private_file
from core.sql import SQLITE, Dialect, SqlDatabase
from core.timefmt import to_us

__all__ = [
    "BUSY_TIMEOUT",
    "Database",
    "Store",
    "Synchronous",
    "Where",
    "add_columns",
    "connect",
    "open_database",
    "table_columns",
]

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]

BUSY_TIMEOUT = 30.0
"""Seconds a connection waits for another connection's lock before ``database is locked``."""

_MEMORY = ":memory:"


def connect(
    path: Path | str,
    *,
    synchronous: Synchronous = "FULL",
    read_only: bool = False,
    timeout: float = BUSY_TIMEOUT,
) -> sqlite3.Connection:
    """Open a store's database file (see the module docstring); ``":memory:"`` for a private one.

    Writable: the file and its directory are created private, the journal is WAL with the given
    ``synchronous`` level. ``read_only``: the file must exist (``sqlite3.OperationalError``
    otherwise) and is opened ``mode=ro``, its journal mode left as the writer set it.
    """
    if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):  # interpolated into a PRAGMA below
        raise ValueError(f"unknown synchronous level {synchronous!r}")
    name = str(path)
    if read_only:
        # Percent-encode the path: a '?' or '#' in a directory name would end the URI's path.
        uri = f"file:{quote(name)}?mode=ro"
        return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=timeout)
    if name != _MEMORY:
        private_file(path)  # 0600, directory 0700 (core.files)
    conn = sqlite3.connect(name, isolation_level=None, check_same_thread=False, timeout=timeout)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    return conn


def table_columns(conn: sqlite3.Connection, table: str) -> set[str]:
    """The column names of ``table`` (empty when it does not exist yet)."""
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def add_columns(conn: sqlite3.Connection, table: str, columns: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    """Add each ``(name, declaration)`` column that an existing ``table`` lacks; returns the names added.

    A table that does not exist yet is left to the store's ``CREATE TABLE`` (which has every
    column): nothing is added and ``()`` returned. Call it before the schema script when that
    script indexes a column added later.
    """
    have = table_columns(conn, table)
    if not have:
        return ()
    added: list[str] = []
    for name, decl in columns:
        if name not in have:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")
            have.add(name)
            added.append(name)
    return tuple(added)


class Database:
    """One store's SQLite connection (:func:`connect`), shared by threads under one re-entrant lock."""

    dialect: Dialect = SQLITE
    integrity_error: type[Exception] = sqlite3.IntegrityError

    def __init__(self, path: Path | str, *, synchronous: Synchronous = "FULL", timeout: float = BUSY_TIMEOUT) -> None:
        self.path = Path(path)
        self.lock = threading.RLock()
        self.conn = connect(path, synchronous=synchronous, timeout=timeout)
        self._depth = 0

    def current(self) -> sqlite3.Connection:
        """The connection (one per database; the caller holds :meth:`transaction`)."""
        return self.conn

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """The connection, held under the lock for the block (reads, single autocommit writes)."""
        with self.lock:
            yield self.conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``): committed when the block ends, rolled back when
        it raises. Re-entrant: a transaction opened inside another (same thread) joins the outer one."""
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.conn
                finally:
                    self._depth -= 1
                return
            self.conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self.conn
                self.conn.execute("COMMIT")
            except BaseException:
                if self.conn.in_transaction:  # a failed COMMIT may have rolled back already
                    self.conn.execute("ROLLBACK")
                raise
            finally:
                self._depth = 0

    def script(self, sql: str) -> None:
        """Run a schema script (``CREATE ... IF NOT EXISTS`` statements) outside any transaction."""
        with self.lock:
            self.conn.executescript(sql)

    def close(self) -> None:
        """Close the connection."""
        with self.lock:
            self.conn.close()


def open_database(target: Path | str | SqlDatabase, *, synchronous: Synchronous = "FULL") -> tuple[SqlDatabase, bool]:
    """The database a store runs on and whether the store owns it: a path opens a SQLite
    :class:`Database` the store closes; an opened :class:`~core.sql.SqlDatabase` is shared."""
    if isinstance(target, (str, Path)):
        return Database(target, synchronous=synchronous), True
    return target, False


class Store:
    """Base of a store kept in one database (``self._db``): ``close()``; ``with store:`` closes it.

    A store that opened its database (given a path) closes it; one given a shared database
    (``_owns_db`` False) leaves it to whoever opened it.
    """

    _db: SqlDatabase
    _owns_db: bool = True

    @property
    def path(self) -> Path:
        """The database file (PostgreSQL: a ``postgresql/<schema>`` label)."""
        return self._db.path

    @property
    def dialect(self) -> Dialect:
        """The engine the store runs on."""
        return self._db.dialect

    def close(self) -> None:
        """Close the database (when this store opened it)."""
        if self._owns_db:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Where:
    """SQL conditions joined by AND, with their parameters in order; a filter given None adds nothing."""

    def __init__(self, *conditions: str) -> None:
        self.conditions: list[str] = list(conditions)
        self.args: list[object] = []

    def add(self, condition: str, *args: object) -> Where:
        """Add a condition with its ``?`` parameters."""
        self.conditions.append(condition)
        self.args.extend(args)
        return self

    def equal(self, column: str, value: object | None) -> Where:
        """``column = value`` unless ``value`` is None."""
        return self if value is None else self.add(f"{column} = ?", value)

    def one_of(self, column: str, values: Sequence[object] | None) -> Where:
        """``column IN (values)`` unless ``values`` is None (an empty sequence matches nothing)."""
        if values is None:
            return self
        if not values:  # ``IN ()`` is SQLite-only
            return self.add("1 = 0")
        return self.add(f"{column} IN ({', '.join('?' * len(values))})", *values)

    def between(self, column: str, since: datetime | None, until: datetime | None) -> Where:
        """``since <= column < until`` on a column of epoch microseconds (a bound given None is left out)."""
        if since is not None:
            self.add(f"{column} >= ?", to_us(since))
        if until is not None:
            self.add(f"{column} < ?", to_us(until))
        return self

    def select(
        self, base: str, order_by: str, *, limit: int | None = None, offset: int | None = None
    ) -> tuple[str, list[object]]:
        """``base`` + ``WHERE`` + ``ORDER BY`` (+ ``LIMIT ?`` / ``OFFSET ?``) and its parameters."""
        sql = base + (" WHERE " + " AND ".join(self.conditions) if self.conditions else "") + " ORDER BY " + order_by
        args = list(self.args)
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        if offset is not None:
            sql += " OFFSET ?"
            args.append(offset)
        return sql, args
