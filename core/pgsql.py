"""PostgreSQL side of the SQL seam (:mod:`core.sql`): the state stores on one shared schema.

Needs the ``postgresql`` extra (psycopg 3 + psycopg_pool); only ``state.backend: postgresql``
imports this module. One :class:`PgDatabase` is one pool on one schema (``search_path``), shared
by every store of a process; every worker of a deployment opens its own on the same schema.

* Connections are autocommit, like SQLite's: a statement outside :meth:`PgDatabase.transaction`
  commits on its own; a transaction is ``BEGIN`` ... ``COMMIT`` on one pooled connection, held by
  the thread for the block (nested blocks join it). Isolation is PostgreSQL's READ COMMITTED: the
  stores' writes are single upserts or compare-and-set ``UPDATE``s (re-checked on the row after a
  concurrent writer commits), claims lock rows with ``FOR UPDATE SKIP LOCKED``, so several
  processes writing at once lose no update.
* Durability: a commit returns once PostgreSQL has flushed its WAL (``synchronous_commit`` on, the
  server default), so an acknowledged write survives ``kill -9`` of the worker and of the server.
* The session runs in UTC with the configured ``statement_timeout``; TCP keepalives are short, so
  a worker whose machine vanished loses its session (and its advisory locks) within about 30 s.
* Schema scripts run under a transaction-scoped advisory lock, so workers starting together do
  not race on ``CREATE TABLE IF NOT EXISTS``.

:class:`AdvisoryLock` is the PostgreSQL "one at a time" lock (:mod:`core.locks`): a session-level
``pg_try_advisory_lock`` on a dedicated connection; the server frees it when the session ends,
also when the holder was killed.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql as pgsql
from psycopg_pool import ConnectionPool, PoolTimeout

from core.errors import StateUnavailable
from core.sql import POSTGRESQL, Dialect

__all__ = ["AdvisoryLock", "PgConnection", "PgDatabase", "lock_key"]

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_KEEPALIVE = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 4}


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a lock name."""
    return int.from_bytes(hashlib.sha256(f"narrawatch:{name}".encode()).digest()[:8], "big", signed=True)


class PgConnection:
    """A psycopg connection that takes the stores' ``?`` statements (:meth:`Dialect.query`)."""

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, sql: str, parameters: Any = None, /) -> psycopg.Cursor[Any]:
        """Run one statement (``?`` parameters)."""
        if parameters is None:
            return self.raw.execute(sql)
        return self.raw.execute(POSTGRESQL.query(sql), parameters)

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> psycopg.Cursor[Any]:
        """Run one statement per parameter row (pipelined by psycopg)."""
        cur = self.raw.cursor()
        cur.executemany(POSTGRESQL.query(sql), list(parameters))
        return cur

    def executemany_returning(self, sql: str, parameters: Iterable[Any]) -> list[Any]:
        """Run a statement with ``RETURNING`` once per row; the first returned row of each (None if none)."""
        cur = self.raw.cursor()
        rows = list(parameters)
        if not rows:
            return []
        cur.executemany(POSTGRESQL.query(sql), rows, returning=True)
        out: list[Any] = []
        while True:
            out.append(cur.fetchone())
            if not cur.nextset():
                break
        return out


class PgDatabase:
    """One pool of autocommit connections on one schema (see the module docstring)."""

    dialect: Dialect = POSTGRESQL
    integrity_error: type[Exception] = psycopg.IntegrityError

    def __init__(
        self,
        url: str,
        *,
        schema: str = "public",
        pool_size: int = 4,
        statement_timeout: timedelta = timedelta(seconds=30),
    ) -> None:
        if not _SCHEMA_NAME.match(schema):
            raise ValueError(f"bad PostgreSQL schema name {schema!r}")
        self.url = url
        self.schema = schema
        self.path = Path("postgresql") / schema
        timeout_ms = int(statement_timeout.total_seconds() * 1000)
        options = f"-c TimeZone=UTC -c statement_timeout={timeout_ms} -c search_path={schema}"
        self._kwargs: dict[str, Any] = {"options": options, "autocommit": True, **_KEEPALIVE}
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=15) as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key("schema"),))
                conn.execute(pgsql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(pgsql.Identifier(schema)))
        except psycopg.Error as err:
            raise StateUnavailable(f"cannot open the PostgreSQL state schema {schema!r}: {err}") from err
        self.pool = ConnectionPool(
            url, min_size=1, max_size=max(1, pool_size), kwargs=self._kwargs, open=True, timeout=30
        )
        try:
            self.pool.wait(timeout=15)
        except (psycopg.Error, PoolTimeout) as err:
            self.pool.close()
            raise StateUnavailable(f"cannot connect to PostgreSQL: {err}") from err
        self._local = threading.local()

    @contextmanager
    def connection(self) -> Iterator[PgConnection]:
        """A pooled connection for the block (the thread's open one if it has one)."""
        held: PgConnection | None = getattr(self._local, "conn", None)
        if held is not None:
            yield held
            return
        with self.pool.connection() as raw:
            conn = PgConnection(raw)
            self._local.conn = conn
            try:
                yield conn
            finally:
                self._local.conn = None

    @contextmanager
    def transaction(self) -> Iterator[PgConnection]:
        """``BEGIN`` ... ``COMMIT`` on one connection; rolled back when the block raises; nested: joins."""
        if getattr(self._local, "tx", False):
            yield self._local.conn
            return
        with self.connection() as conn, conn.raw.transaction():
            self._local.tx = True
            try:
                yield conn
            finally:
                self._local.tx = False

    def current(self) -> PgConnection:
        """The connection of this thread's open transaction."""
        conn: PgConnection | None = getattr(self._local, "conn", None)
        if conn is None or not getattr(self._local, "tx", False):
            raise RuntimeError("no transaction is open in this thread (use the store's transaction())")
        return conn

    def script(self, sql: str) -> None:
        """Run a schema script in PostgreSQL types, serialised across processes by an advisory lock."""
        with self.transaction() as conn:
            conn.raw.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(f"schema:{self.schema}"),))
            conn.raw.execute(POSTGRESQL.schema(sql))

    def lock(self, name: str) -> AdvisoryLock:
        """The deployment-wide "one at a time" lock ``name`` (:class:`AdvisoryLock`)."""
        return AdvisoryLock(self.url, name, self._kwargs)

    def close(self) -> None:
        """Close the pool."""
        self.pool.close()


class AdvisoryLock:
    """A session advisory lock on its own connection: held until :meth:`release` or the session ends."""

    def __init__(self, url: str, name: str, kwargs: dict[str, Any] | None = None) -> None:
        self.url = url
        self.name = name
        self.key = lock_key(name)
        self._kwargs = dict(kwargs or {"autocommit": True, **_KEEPALIVE})
        self._conn: psycopg.Connection[Any] | None = None
        self._mutex = threading.Lock()

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._conn is not None

    def acquire(self) -> bool:
        """Take the lock if nobody holds it (never waits); True when this object holds it now."""
        with self._mutex:
            if self._conn is not None:
                return True
            conn = psycopg.connect(self.url, **self._kwargs)
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
            if not row or not row[0]:
                conn.close()
                return False
            self._conn = conn
            return True

    def release(self) -> None:
        """Give the lock up (closing the session frees it even if the unlock fails)."""
        with self._mutex:
            conn, self._conn = self._conn, None
            if conn is None:
                return
            try:
                conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
            except psycopg.Error:
                pass
            finally:
                conn.close()

    def close(self) -> None:
        """Release the lock if held."""
        self.release()
