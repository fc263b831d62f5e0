"""Shared fixtures. Test data copied from ../shared/data lives in tests/data/ with its origin noted."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from narrawatch.builtins import register_builtins

ROOT = Path(__file__).resolve().parent.parent
TEST_DATA = Path(__file__).resolve().parent / "data"
SHARED_DATA = Path(os.environ.get("NARRAWATCH_SHARED_DATA", ROOT.parent / "shared" / "data"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# The composition root's step, once for the whole session: every built-in registered by name.
register_builtins()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data; tests that need more than tests/data skip with a reason if it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def test_data() -> Path:
    """tests/data (committed copies of real data, origin noted beside each piece)."""
    return TEST_DATA


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A live PostgreSQL URL (see :mod:`tests.support.pg`), or skip."""
    from tests.support.pg import pg_url as start
    from tests.support.pg import stop

    url = start()
    if not url:
        pytest.skip("NARRAWATCH_PG_URL not set and pgserver not installed")
    yield url
    stop()
