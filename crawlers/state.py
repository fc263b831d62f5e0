"""Crawl state that survives restarts: conditional-GET validators, seen items, source health.

SQLite (WAL, synchronous=FULL) on one box, or the shared PostgreSQL state schema when several
workers crawl (``state.backend``; the same SQL through :mod:`core.sql`). The pipeline marks an
item seen only after the index acknowledged its document, and stores a feed's new
ETag/Last-Modified (and a Telegram channel's newest message id) only after every document of
that pass was indexed, so a crash re-fetches instead of skipping.

Source leases (``source_lease``): a source is crawled by the worker that holds its lease. A
worker takes due sources with :meth:`CrawlStateStore.claim_due` (PostgreSQL: ``FOR UPDATE SKIP
LOCKED``, so workers claiming at once get disjoint sources; SQLite: the writer lock), renews the
lease while it crawls (:meth:`~CrawlStateStore.renew`) and gives it back with the pass's result
and the next due time (:meth:`~CrawlStateStore.release`, one transaction). A killed worker's
leases run out and the next claim takes its sources. Lease times are the callers' clocks (keep
the workers' clocks in sync, well within a lease period).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from core.events import SourceHealth
from core.sql import SqlConnection, SqlDatabase
from core.sqlite import Store, open_database
from core.timefmt import from_iso, from_us, iso_utc, to_us

__all__ = ["CrawlStateStore", "SourceLease", "SourceRelease", "SourceState", "health_notes"]

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
CREATE TABLE IF NOT EXISTS source_lease (
    source_id TEXT PRIMARY KEY,
    due_at INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER,
    claims INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS source_lease_due ON source_lease (due_at);
"""

_LEASE_COLUMNS = "source_id, due_at, lease_owner, lease_until, claims"

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


@dataclass(frozen=True)
class SourceLease:
    """A source's lease row: when it is next due, and who holds it until when."""

    source_id: str
    due_at: datetime
    owner: str | None
    lease_until: datetime | None
    claims: int
    """How many times the source was claimed (ever)."""


@dataclass(frozen=True)
class SourceRelease:
    """What a worker hands back with a lease: the next due time and, optionally, the pass's result
    (recorded as :meth:`CrawlStateStore.record_result` would, in the release's transaction)."""

    next_due: datetime
    ok: bool | None = None
    """None: no result to record (the worker gives the source up without crawling it)."""
    at: datetime | None = None
    """When the pass ended (required with ``ok``)."""
    error: str = ""
    validators: dict[str, Any] | None = None
    warnings: Sequence[tuple[str, str]] = ()


def _lease(row: Sequence[Any]) -> SourceLease:
    due = from_us(row[1])
    assert due is not None
    return SourceLease(row[0], due, row[2], from_us(row[3]), int(row[4]))


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
    """Thread-safe access to ``<data_dir>/state.db`` (created 0600, see :mod:`core.sqlite`) or to a
    shared :class:`~core.sql.SqlDatabase` (PostgreSQL state schema)."""

    def __init__(self, path: Path | str | SqlDatabase) -> None:
        self._db, self._owns_db = open_database(path, synchronous="FULL")
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
                    newest = int(validators["last_message_id"])
                    db.execute(
                        "UPDATE source_state SET last_message_id = CASE WHEN coalesce(last_message_id, 0) > ?"
                        " THEN last_message_id ELSE ? END WHERE source_id = ?",
                        (newest, newest, source_id),
                    )
            else:
                db.execute(
                    "UPDATE source_state SET last_attempt = ?, last_error = ?, last_error_at = ?,"
                    " consecutive_failures = consecutive_failures + 1 WHERE source_id = ?",
                    (iso_utc(now), error[:2000], iso_utc(now), source_id),
                )

    def _record_notes(
        self,
        db: SqlConnection,
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

    # -- source leases ---------------------------------------------------------------------------

    def schedule(self, due: Mapping[str, datetime]) -> int:
        """Make sources leasable: each source without a lease row gets one, due at its given time
        (a source already scheduled keeps its due time and lease). Returns how many were added."""
        rows = [(sid, to_us(at)) for sid, at in sorted(due.items())]
        if not rows:
            return 0
        added = 0
        with self._db.transaction() as db:
            for row in rows:
                cur = db.execute(
                    "INSERT INTO source_lease (source_id, due_at) VALUES (?, ?) ON CONFLICT (source_id) DO NOTHING", row
                )
                added += max(cur.rowcount, 0)
        return added

    def unschedule(self, source_ids: Iterable[str]) -> None:
        """Remove sources from leasing (no longer configured); their crawl state stays."""
        ids = [(sid,) for sid in source_ids]
        if ids:
            with self._db.transaction() as db:
                db.executemany("DELETE FROM source_lease WHERE source_id = ?", ids)

    def claim_due(
        self, worker: str, now: datetime, lease_seconds: float, limit: int, *, exclude: Collection[str] = ()
    ) -> list[SourceLease]:
        """Lease up to ``limit`` sources that are due at ``now`` and that no unexpired lease holds, to
        ``worker`` for ``lease_seconds``; the longest-due first. Workers claiming at once get
        disjoint sources (PostgreSQL: ``FOR UPDATE SKIP LOCKED``; SQLite: one writer at a time).
        ``exclude``: sources the worker is still crawling (a lease that ran out under a hung crawl
        goes to another worker, not back to the same one)."""
        if limit <= 0:
            return []
        t = to_us(now)
        until = to_us(now + timedelta(seconds=lease_seconds))
        skip = sorted(exclude)
        not_in = f" AND source_id NOT IN ({', '.join('?' for _ in skip)})" if skip else ""
        with self._db.transaction() as db:
            rows = db.execute(
                "UPDATE source_lease SET lease_owner = ?, lease_until = ?, claims = claims + 1 WHERE source_id IN ("
                "SELECT source_id FROM source_lease WHERE due_at <= ? AND (lease_until IS NULL OR lease_until <= ?)"
                f"{not_in} ORDER BY due_at, source_id LIMIT ?{self._db.dialect.skip_locked})"
                f" RETURNING {_LEASE_COLUMNS}",
                (worker, until, t, t, *skip, limit),
            ).fetchall()
        return sorted((_lease(r) for r in rows), key=lambda x: (x.due_at, x.source_id))

    def renew(self, source_id: str, worker: str, now: datetime, lease_seconds: float) -> bool:
        """Extend ``worker``'s lease on a source to ``now + lease_seconds``; False when the worker no
        longer holds it (it ran out and another worker claimed the source: stop crawling it)."""
        with self._db.transaction() as db:
            cur = db.execute(
                "UPDATE source_lease SET lease_until = ? WHERE source_id = ? AND lease_owner = ?",
                (to_us(now + timedelta(seconds=lease_seconds)), source_id, worker),
            )
            return cur.rowcount == 1

    def release(self, source_id: str, worker: str, new_state: SourceRelease) -> bool:
        """Give a lease back with the source's next due time and, when ``new_state.ok`` is set, the
        pass's result, in one transaction. False (and nothing written) when ``worker`` no longer
        holds the lease: another worker owns the source now and records its own result."""
        if new_state.ok is not None and new_state.at is None:
            raise ValueError("SourceRelease with a result needs 'at' (when the pass ended)")
        with self._db.transaction() as db:
            cur = db.execute(
                "UPDATE source_lease SET due_at = ?, lease_owner = NULL, lease_until = NULL"
                " WHERE source_id = ? AND lease_owner = ?",
                (to_us(new_state.next_due), source_id, worker),
            )
            if cur.rowcount != 1:
                return False
            if new_state.ok is not None and new_state.at is not None:
                self.record_result(
                    source_id,
                    ok=new_state.ok,
                    now=new_state.at,
                    error=new_state.error,
                    validators=new_state.validators,
                    warnings=new_state.warnings,
                )
            return True

    def lease(self, source_id: str) -> SourceLease | None:
        """A source's lease row, or None when it is not scheduled."""
        with self._db.connection() as db:
            row = db.execute(f"SELECT {_LEASE_COLUMNS} FROM source_lease WHERE source_id = ?", (source_id,)).fetchone()
        return None if row is None else _lease(row)

    def leases(self) -> list[SourceLease]:
        """Every scheduled source's lease row, by source id."""
        with self._db.connection() as db:
            rows = db.execute(f"SELECT {_LEASE_COLUMNS} FROM source_lease ORDER BY source_id").fetchall()
        return [_lease(r) for r in rows]
