"""The state stores' contract suites run on both engines: ``sqlite`` (a file in ``tmp_path``) and
``postgresql`` (the live server of the session's ``pg_url`` fixture, one schema per test)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.sql import SqlDatabase

Target = Path | SqlDatabase
"""What a store opens: a SQLite file path or a shared PostgreSQL database."""


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> str:
    """The engine under test."""
    return str(request.param)


@pytest.fixture
def target(engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[str], Target]]:
    """``target(name)``: where a store opens; every call on PostgreSQL shares one fresh schema
    (so two stores of one test see the same rows, as two workers of a deployment do)."""
    opened: list[SqlDatabase] = []
    schema = f"t_{uuid.uuid4().hex[:12]}"

    def make(name: str) -> Target:
        if engine == "sqlite":
            return tmp_path / name
        from core.pgsql import PgDatabase

        url = request.getfixturevalue("pg_url")
        db = PgDatabase(url, schema=schema, pool_size=4)
        opened.append(db)
        return db

    yield make
    for db in opened:
        db.close()
