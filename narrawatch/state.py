"""Crawl state that survives restarts: conditional-GET validators, seen items, source health.

SQLite (WAL, synchronous=FULL). The pipeline marks an item seen only after the index
acknowledged its document, and stores a feed's new ETag/Last-Modified (and a Telegram
channel's newest message id) only after every document of that pass was indexed, so a crash
re-fetches instead of skipping.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from core.events import SourceHealth

__all__ = ["CrawlStateStore", "SourceState"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS source_state (
    source_id TEXT PRIMARY KEY,
    etag TEXT,
    last_modified TEXT,
    last_message_id INTEGER,
    last_success TEXT,
    last_attempt TEXT,
    last_error TEXT NOT NULL DEFAULT '',
    last_error_at TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS seen (
    source_id TEXT NOT NULL,
    item_key TEXT NOT NULL,
    document_id TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    PRIMARY KEY (source_id, item_key)
);
CREATE INDEX IF NOT EXISTS seen_by_time ON seen (source_id, seen_at);
"""


@dataclass(frozen=True)
class SourceState:
    """One source's persisted crawl state and health."""

    source_id: str
    etag: str | None = None
    last_modified: str | None = None
    last_message_id: int | None = None
    last_success: datetime | None = None
    last_attempt: datetime | None = None
    last_error: str = ""
    last_error_at: datetime | None = None
    consecutive_failures: int = 0


def _ts(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class CrawlStateStore:
    """Thread-safe access to ``<data_dir>/state.db``."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def get(self, source_id: str) -> SourceState:
        """The stored state of a source (defaults when never crawled)."""
        with self._lock:
            row = self._db.execute(
                "SELECT etag, last_modified, last_message_id, last_success, last_attempt, last_error,"
                " last_error_at, consecutive_failures FROM source_state WHERE source_id = ?",
                (source_id,),
            ).fetchone()
        if row is None:
            return SourceState(source_id)
        return SourceState(
            source_id,
            etag=row[0],
            last_modified=row[1],
            last_message_id=row[2],
            last_success=_dt(row[3]),
            last_attempt=_dt(row[4]),
            last_error=row[5],
            last_error_at=_dt(row[6]),
            consecutive_failures=row[7],
        )

    def seen_keys(self, source_id: str, limit: int = 20_000) -> list[str]:
        """The most recently seen item keys of a source (what the crawler may skip)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT item_key FROM seen WHERE source_id = ? ORDER BY seen_at DESC LIMIT ?", (source_id, limit)
            ).fetchall()
        return [r[0] for r in rows]

    def job_state(self, source_id: str) -> dict[str, Any]:
        """The state handed to the crawl subprocess for one source."""
        st = self.get(source_id)
        return {
            "etag": st.etag,
            "last_modified": st.last_modified,
            "last_message_id": st.last_message_id,
            "seen": self.seen_keys(source_id),
        }

    def mark_seen(self, source_id: str, items: Iterable[tuple[str, str]], now: datetime) -> None:
        """Record ``(item_key, document_id)`` pairs as indexed (call only after the index acknowledged)."""
        rows = [(source_id, key, doc_id, _ts(now)) for key, doc_id in items]
        if not rows:
            return
        with self._tx() as db:
            db.executemany(
                "INSERT INTO seen (source_id, item_key, document_id, seen_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (source_id, item_key) DO NOTHING",
                rows,
            )

    def record_result(
        self,
        source_id: str,
        *,
        ok: bool,
        now: datetime,
        error: str = "",
        validators: dict[str, Any] | None = None,
    ) -> None:
        """Record the end of a source's run: success (and new validators) or a failure."""
        with self._tx() as db:
            db.execute("INSERT INTO source_state (source_id) VALUES (?) ON CONFLICT DO NOTHING", (source_id,))
            if ok:
                db.execute(
                    "UPDATE source_state SET last_success = ?, last_attempt = ?, consecutive_failures = 0"
                    " WHERE source_id = ?",
                    (_ts(now), _ts(now), source_id),
                )
                if validators and ("etag" in validators or "last_modified" in validators):
                    db.execute(
                        "UPDATE source_state SET etag = ?, last_modified = ? WHERE source_id = ?",
                        (validators.get("etag"), validators.get("last_modified"), source_id),
                    )
                if validators and validators.get("last_message_id") is not None:
                    # Only a finished walk back advances the Telegram watermark; after a crash
                    # the next run pages back again and skips what is already seen.
                    db.execute(
                        "UPDATE source_state SET last_message_id ="
                        " max(coalesce(last_message_id, 0), ?) WHERE source_id = ?",
                        (int(validators["last_message_id"]), source_id),
                    )
            else:
                db.execute(
                    "UPDATE source_state SET last_attempt = ?, last_error = ?, last_error_at = ?,"
                    " consecutive_failures = consecutive_failures + 1 WHERE source_id = ?",
                    (_ts(now), error[:2000], _ts(now), source_id),
                )

    def items_since(self, source_id: str, since: datetime) -> int:
        """How many items of a source were indexed since ``since``."""
        with self._lock:
            row = self._db.execute(
                "SELECT count(*) FROM seen WHERE source_id = ? AND seen_at >= ?", (source_id, _ts(since))
            ).fetchone()
        return int(row[0])

    def last_item(self, source_id: str) -> datetime | None:
        """When the newest item of a source was indexed."""
        with self._lock:
            row = self._db.execute("SELECT max(seen_at) FROM seen WHERE source_id = ?", (source_id,)).fetchone()
        return _dt(row[0])

    def source_health(self, source_id: str, now: datetime, outlet: str = "") -> SourceHealth:
        """One source's health as the detectors and ``narrawatch sources`` see it."""
        st = self.get(source_id)
        return SourceHealth(
            source_id=source_id,
            last_success=st.last_success,
            last_error=st.last_error,
            last_error_at=st.last_error_at,
            consecutive_failures=st.consecutive_failures,
            items_24h=self.items_since(source_id, now - timedelta(hours=24)),
            last_item=self.last_item(source_id),
            outlet=outlet,
        )

    def health(self, source_id: str, now: datetime) -> dict[str, Any]:
        """JSON-ready health of one source (``narrawatch sources``, the API)."""
        h = self.source_health(source_id, now)
        return {
            "id": source_id,
            "last_success": _ts(h.last_success),
            "last_attempt": _ts(self.get(source_id).last_attempt),
            "last_error": h.last_error or None,
            "last_error_at": _ts(h.last_error_at),
            "consecutive_failures": h.consecutive_failures,
            "items_24h": h.items_24h,
            "last_item": _ts(h.last_item),
        }

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
