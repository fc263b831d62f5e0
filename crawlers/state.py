"""Crawl state that survives restarts: conditional-GET validators, seen items, source health.

SQLite (WAL, synchronous=FULL). The pipeline marks an item seen only after the index
acknowledged its document, and stores a feed's new ETag/Last-Modified (and a Telegram
channel's newest message id) only after every document of that pass was indexed, so a crash
re-fetches instead of skipping.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from core.events import SourceHealth
from core.sqlite import Database, Store
from core.timefmt import from_iso, iso_utc

__all__ = ["CrawlStateStore", "SourceState", "health_notes"]

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
CREATE TABLE IF NOT EXISTS rejected (
    source_id TEXT NOT NULL,
    document_id TEXT NOT NULL,
    item_key TEXT NOT NULL,
    rejected_at TEXT NOT NULL,
    PRIMARY KEY (source_id, document_id)
);
CREATE TABLE IF NOT EXISTS crawl_notes (
    source_id TEXT PRIMARY KEY,
    backfill TEXT NOT NULL DEFAULT '[]',
    id_gaps TEXT NOT NULL DEFAULT '[]',
    last_pass TEXT NOT NULL DEFAULT '{}'
);
"""

KEEP_ID_GAPS = 20
"""Most recent Telegram id gaps kept per source for health."""

KEEP_WARNING_SAMPLES = 5
"""Warning messages of the last pass kept per source for health."""


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


def health_notes(h: SourceHealth) -> str:
    """One line for people: the last pass's warnings, open Telegram backfill and id gaps ('' when none)."""
    parts = []
    if h.last_pass_warnings:
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(h.warning_reasons.items()))
        parts.append(f"last pass: {h.last_pass_warnings} warnings ({reasons})")
    if h.backfill_ranges:
        parts.append(f"backfill: {h.backfill_pending} ids in {len(h.backfill_ranges)} ranges left")
    if h.id_gaps:
        first, last = h.id_gaps[0]
        parts.append(f"id gaps: {len(h.id_gaps)} (latest {first}-{last})")
    return "; ".join(parts)


class CrawlStateStore(Store):
    """Thread-safe access to ``<data_dir>/state.db`` (created 0600, see :mod:`core.sqlite`)."""

    def __init__(self, path: Path) -> None:
        self._db = Database(path, synchronous="FULL")
        self._db.script(_SCHEMA)

    def get(self, source_id: str) -> SourceState:
        """The stored state of a source (defaults when never crawled)."""
        with self._db.connection() as db:
            row = db.execute(
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
            last_success=from_iso(row[3]),
            last_attempt=from_iso(row[4]),
            last_error=row[5],
            last_error_at=from_iso(row[6]),
            consecutive_failures=row[7],
        )

    def seen_keys(self, source_id: str, limit: int = 20_000) -> list[str]:
        """The most recently seen item keys of a source (what the crawler may skip)."""
        with self._db.connection() as db:
            rows = db.execute(
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
            "backfill": [list(r) for r in self.notes(source_id)["backfill"]],
            "seen": self.seen_keys(source_id),
        }

    def notes(self, source_id: str) -> dict[str, Any]:
        """Telegram backfill ranges and id gaps, and the last pass's warnings, of a source."""
        with self._db.connection() as db:
            row = db.execute(
                "SELECT backfill, id_gaps, last_pass FROM crawl_notes WHERE source_id = ?", (source_id,)
            ).fetchone()
        backfill, gaps, last_pass = (json.loads(v) for v in row) if row else ([], [], {})
        return {
            "backfill": [(int(a), int(b)) for a, b in backfill],
            "id_gaps": [dict(g) for g in gaps],
            "last_pass": dict(last_pass),
        }

    def mark_seen(self, source_id: str, items: Iterable[tuple[str, str]], now: datetime) -> None:
        """Record ``(item_key, document_id)`` pairs as indexed (call only after the index acknowledged)."""
        rows = [(source_id, key, doc_id, iso_utc(now)) for key, doc_id in items]
        if not rows:
            return
        with self._db.transaction() as db:
            db.executemany(
                "INSERT INTO seen (source_id, item_key, document_id, seen_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (source_id, item_key) DO NOTHING",
                rows,
            )

    def record_rejected(self, source_id: str, items: Iterable[tuple[str, str]], now: datetime) -> None:
        """Record ``(item_key, document_id)`` pairs the index refused permanently (once per document;
        the reason is in the index backend's rejection log)."""
        rows = [(source_id, doc_id, key, iso_utc(now)) for key, doc_id in items]
        if not rows:
            return
        with self._db.transaction() as db:
            db.executemany(
                "INSERT INTO rejected (source_id, document_id, item_key, rejected_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (source_id, document_id) DO NOTHING",
                rows,
            )

    def rejected_count(self, source_id: str) -> int:
        """How many documents of a source the index refused permanently (ever)."""
        with self._db.connection() as db:
            row = db.execute("SELECT count(*) FROM rejected WHERE source_id = ?", (source_id,)).fetchone()
        return int(row[0])

    def record_result(
        self,
        source_id: str,
        *,
        ok: bool,
        now: datetime,
        error: str = "",
        validators: dict[str, Any] | None = None,
        warnings: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Record the end of a source's run: success (and new validators) or a failure.

        ``warnings`` (``(reason, message)`` pairs) replace the last pass's warnings whatever the
        outcome; Telegram ``backfill`` ranges and ``id_gaps`` in ``validators`` are stored, like
        the watermark, only when the pass succeeded.
        """
        with self._db.transaction() as db:
            db.execute("INSERT INTO source_state (source_id) VALUES (?) ON CONFLICT DO NOTHING", (source_id,))
            self._record_notes(db, source_id, now, ok, validators if ok else None, warnings)
            if ok:
                db.execute(
                    "UPDATE source_state SET last_success = ?, last_attempt = ?, consecutive_failures = 0"
                    " WHERE source_id = ?",
                    (iso_utc(now), iso_utc(now), source_id),
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
                    (iso_utc(now), error[:2000], iso_utc(now), source_id),
                )

    def _record_notes(
        self,
        db: sqlite3.Connection,
        source_id: str,
        now: datetime,
        ok: bool,
        validators: dict[str, Any] | None,
        warnings: Sequence[tuple[str, str]],
    ) -> None:
        db.execute("INSERT INTO crawl_notes (source_id) VALUES (?) ON CONFLICT DO NOTHING", (source_id,))
        reasons = Counter(reason for reason, _ in warnings)
        last_pass = {
            "at": iso_utc(now),
            "ok": ok,
            "warnings": len(warnings),
            "by_reason": dict(sorted(reasons.items())),
            "samples": [message[:500] for _, message in warnings[:KEEP_WARNING_SAMPLES]],
        }
        db.execute(
            "UPDATE crawl_notes SET last_pass = ? WHERE source_id = ?",
            (json.dumps(last_pass, ensure_ascii=False), source_id),
        )
        if not validators:
            return
        if "backfill" in validators:
            ranges = sorted({(int(a), int(b)) for a, b in validators["backfill"] or ()}, key=lambda r: -r[1])
            db.execute("UPDATE crawl_notes SET backfill = ? WHERE source_id = ?", (json.dumps(ranges), source_id))
        if validators.get("id_gaps"):
            (stored,) = db.execute("SELECT id_gaps FROM crawl_notes WHERE source_id = ?", (source_id,)).fetchone()
            gaps = list(json.loads(stored))
            known = {(g["first"], g["last"]) for g in gaps}
            for gap in validators["id_gaps"]:
                first, last = int(gap["first"]), int(gap["last"])
                if (first, last) not in known:
                    known.add((first, last))
                    gaps.append({"first": first, "last": last, "reason": str(gap.get("reason", "absent"))})
            gaps = sorted(gaps, key=lambda g: -g["last"])[:KEEP_ID_GAPS]
            db.execute("UPDATE crawl_notes SET id_gaps = ? WHERE source_id = ?", (json.dumps(gaps), source_id))

    def items_since(self, source_id: str, since: datetime) -> int:
        """How many items of a source were indexed since ``since``."""
        with self._db.connection() as db:
            row = db.execute(
                "SELECT count(*) FROM seen WHERE source_id = ? AND seen_at >= ?", (source_id, iso_utc(since))
            ).fetchone()
        return int(row[0])

    def last_item(self, source_id: str) -> datetime | None:
        """When the newest item of a source was indexed."""
        with self._db.connection() as db:
            row = db.execute("SELECT max(seen_at) FROM seen WHERE source_id = ?", (source_id,)).fetchone()
        return from_iso(row[0])

    def source_health(self, source_id: str, now: datetime, outlet: str = "") -> SourceHealth:
        """One source's health as the detectors and ``narrawatch sources`` see it."""
        st = self.get(source_id)
        notes = self.notes(source_id)
        last_pass = notes["last_pass"]
        return SourceHealth(
            source_id=source_id,
            last_success=st.last_success,
            last_error=st.last_error,
            last_error_at=st.last_error_at,
            consecutive_failures=st.consecutive_failures,
            items_24h=self.items_since(source_id, now - timedelta(hours=24)),
            last_item=self.last_item(source_id),
            outlet=outlet,
            last_pass_warnings=int(last_pass.get("warnings", 0)),
            warning_reasons={str(k): int(v) for k, v in (last_pass.get("by_reason") or {}).items()},
            last_warnings=tuple(str(m) for m in last_pass.get("samples") or ()),
            backfill_ranges=tuple(notes["backfill"]),
            id_gaps=tuple((int(g["first"]), int(g["last"])) for g in notes["id_gaps"]),
        )

    def health(self, source_id: str, now: datetime) -> dict[str, Any]:
        """JSON-ready health of one source (``narrawatch sources``, the API)."""
        h = self.source_health(source_id, now)
        return {
            "id": source_id,
            "last_success": iso_utc(h.last_success),
            "last_attempt": iso_utc(self.get(source_id).last_attempt),
            "last_error": h.last_error or None,
            "last_error_at": iso_utc(h.last_error_at),
            "consecutive_failures": h.consecutive_failures,
            "items_24h": h.items_24h,
            "last_item": iso_utc(h.last_item),
            "rejected_documents": self.rejected_count(source_id),
            "last_pass_warnings": h.last_pass_warnings,
            "warning_reasons": dict(h.warning_reasons),
            "last_warnings": list(h.last_warnings),
            "backfill_pending": h.backfill_pending,
            "backfill_ranges": [list(r) for r in h.backfill_ranges],
            "id_gaps": [list(g) for g in h.id_gaps],
            "notes": health_notes(h),
        }
