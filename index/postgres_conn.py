"""Connections to the PostgreSQL index: the URL from the environment, pools, the active table set."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from core.errors import IndexUnavailable

if TYPE_CHECKING:
    from core.settings import Config

__all__ = ["connect_pool", "read_active", "settings_url"]


def settings_url(config: Config) -> str:
    """The PostgreSQL URL from the environment variable ``index.postgresql.url_env`` names."""
    name = config.service.index.postgresql.url_env
    url = os.environ.get(name, "").strip()
    if not url:
        raise IndexUnavailable(f"index.backend is postgresql but ${name} is not set (the URL comes only from it)")
    return url


def connect_pool(
    url: str, *, size: int = 4, statement_timeout: timedelta = timedelta(seconds=30), read_only: bool = False
) -> ConnectionPool:
    """A connection pool: UTC session time zone, the statement timeout, read-only if asked."""
    options = f"-c TimeZone=UTC -c statement_timeout={int(statement_timeout.total_seconds() * 1000)}"
    if read_only:
        options += " -c default_transaction_read_only=on"
    pool = ConnectionPool(url, min_size=1, max_size=max(1, size), kwargs={"options": options}, open=True, timeout=30)
    try:
        pool.wait(timeout=15)  # fail now, not on the first query, when the server is unreachable
    except (psycopg.Error, PoolTimeout) as err:
        pool.close()
        raise IndexUnavailable(f"cannot connect to PostgreSQL: {err}") from err
    return pool


def read_active(conn: psycopg.Connection[Any], prefix: str) -> dict[str, Any] | None:
    """The ``active`` meta record of ``prefix`` (set name, space, generation), or None; creates nothing."""
    row = conn.execute("SELECT to_regclass(%s)", (f"{prefix}_meta",)).fetchone()
    if row is None or row[0] is None:
        return None
    got = conn.execute(f"SELECT value FROM {prefix}_meta WHERE key = 'active'").fetchone()
    return dict(got[0]) if got else None
