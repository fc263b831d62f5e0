"""The evidence store: captures, versions and deletions of documents, in ``<data_dir>/evidence.sqlite``.

SQLite (WAL, synchronous=FULL, :mod:`core.sqlite`). Three tables:

* ``captures``: every archived response a document was seen in (:class:`core.evidence.Capture`:
  URL, fetch time, HTTP status, SHA-256 of the raw body, WARC file/offset/length, address);
* ``versions``: each distinct text of a document, numbered 1, 2, ...; a text seen again unchanged
  only moves the latest version's ``last_seen``;
* ``deletions``: a document a re-check found gone, with the time it was last seen and the reason.

Rows are only added (versions, captures) or touched (``last_seen``); nothing is ever rewritten,
so the history an evidence pack is built from cannot be lost by a later crawl.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from core.evidence import Capture, Deletion, Version
from core.sql import SqlConnection
from core.sqlite import Database, Store
from core.timefmt import from_us, to_us

__all__ = ["EVIDENCE_FILE", "EvidenceStore", "evidence_path", "text_sha256"]

EVIDENCE_FILE = "evidence.sqlite"
_BATCH = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS captures (
    id INTEGER PRIMARY KEY,
    document_id TEXT NOT NULL,
    url TEXT NOT NULL,
    fetched_at INTEGER NOT NULL,
    status INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    warc_file TEXT NOT NULL,
    warc_offset INTEGER NOT NULL,
    warc_length INTEGER NOT NULL,
    ip_address TEXT NOT NULL,
    UNIQUE (document_id, fetched_at, sha256, warc_file, warc_offset)
);
CREATE INDEX IF NOT EXISTS captures_by_document ON captures (document_id, fetched_at);
CREATE TABLE IF NOT EXISTS versions (
    document_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    text_sha256 TEXT NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    capture_id INTEGER REFERENCES captures (id),
    PRIMARY KEY (document_id, number)
);
CREATE TABLE IF NOT EXISTS deletions (
    document_id TEXT PRIMARY KEY,
    deleted_at INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS deletions_by_time ON deletions (deleted_at);
"""

_CAPTURE_COLUMNS = "url, fetched_at, status, sha256, warc_file, warc_offset, warc_length, ip_address"
_CaptureRow = tuple[str, int, int, str, str, int, int, str]


def evidence_path(data_dir: Path) -> Path:
    """Where the evidence store of an install lives."""
    return data_dir / EVIDENCE_FILE


def text_sha256(text: str) -> str:
    """sha256 hex of a version's text (UTF-8): what decides whether a text changed."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _capture(row: _CaptureRow) -> Capture:
    return Capture(
        url=row[0],
        fetched_at=from_us(row[1]),
        status=row[2],
        sha256=row[3],
        warc_file=row[4],
        warc_offset=row[5],
        warc_length=row[6],
        ip_address=row[7],
    )


class EvidenceStore(Store):
    """Thread-safe captures, versions and deletions in one SQLite file (created 0600)."""

    def __init__(self, path: Path) -> None:
        self._db = Database(path, synchronous="FULL")
        self._db.script(_SCHEMA)

    # -- captures -------------------------------------------------------------------------

    def record_capture(self, document_id: str, capture: Capture) -> None:
        """Record that ``document_id`` was seen in ``capture`` (recording the same one again is a no-op)."""
        with self._db.transaction() as db:
            self._capture_id(db, document_id, capture)

    @staticmethod
    def _capture_id(db: SqlConnection, document_id: str, c: Capture) -> int:
        key = (document_id, to_us(c.fetched_at), c.sha256, c.warc_file, c.warc_offset)
        db.execute(
            f"INSERT OR IGNORE INTO captures (document_id, {_CAPTURE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (document_id, c.url, key[1], c.status, c.sha256, c.warc_file, c.warc_offset, c.warc_length, c.ip_address),
        )
        row = db.execute(
            "SELECT id FROM captures WHERE document_id = ? AND fetched_at = ? AND sha256 = ? AND warc_file = ?"
            " AND warc_offset = ?",
            key,
        ).fetchone()
        return int(row[0])

    def captures(self, document_id: str) -> list[Capture]:
        """Every capture of a document, earliest first."""
        with self._db.connection() as db:
            rows = db.execute(
                f"SELECT {_CAPTURE_COLUMNS} FROM captures WHERE document_id = ? ORDER BY fetched_at, id",
                (document_id,),
            ).fetchall()
        return [_capture(r) for r in rows]

    # -- versions -------------------------------------------------------------------------

    def record_version(
        self, document_id: str, title: str, text: str, capture: Capture | None, *, seen: datetime | None = None
    ) -> Version | None:
        """Record the text a document was seen with; the new :class:`Version` when it changed.

        ``seen`` defaults to ``capture.fetched_at`` (one of them is required). The capture is
        recorded too. When the text equals the latest version's, only that version's
        ``last_seen`` moves (never backwards) and None is returned; the first text of a
        document, and every changed one, becomes version ``n + 1``.
        """
        when = seen if seen is not None else (capture.fetched_at if capture is not None else None)
        if when is None:
            raise ValueError("record_version needs a capture or seen=")
        digest = text_sha256(text)
        at = to_us(when)
        with self._db.transaction() as db:
            capture_id = self._capture_id(db, document_id, capture) if capture is not None else None
            last = db.execute(
                "SELECT number, text_sha256 FROM versions WHERE document_id = ? ORDER BY number DESC LIMIT 1",
                (document_id,),
            ).fetchone()
            if last is not None and last[1] == digest:
                db.execute(
                    "UPDATE versions SET last_seen = max(last_seen, ?) WHERE document_id = ? AND number = ?",
                    (at, document_id, last[0]),
                )
                return None
            number = 1 if last is None else int(last[0]) + 1
            db.execute(
                "INSERT INTO versions (document_id, number, text_sha256, title, text, first_seen, last_seen,"
                " capture_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (document_id, number, digest, title, text, at, at, capture_id),
            )
        return Version(document_id, number, digest, title, text, from_us(at), from_us(at), capture)

    def versions(self, document_id: str) -> list[Version]:
        """Every version of a document, version 1 first (empty when none was recorded)."""
        with self._db.connection() as db:
            rows = db.execute(
                "SELECT v.number, v.text_sha256, v.title, v.text, v.first_seen, v.last_seen, c.id,"
                " c.url, c.fetched_at, c.status, c.sha256, c.warc_file, c.warc_offset, c.warc_length, c.ip_address"
                " FROM versions v LEFT JOIN captures c ON c.id = v.capture_id"
                " WHERE v.document_id = ? ORDER BY v.number",
                (document_id,),
            ).fetchall()
        return [
            Version(
                document_id=document_id,
                number=r[0],
                text_sha256=r[1],
                title=r[2],
                text=r[3],
                first_seen=from_us(r[4]),
                last_seen=from_us(r[5]),
                capture=None if r[6] is None else _capture(r[7:]),
            )
            for r in rows
        ]

    def latest_version(self, document_id: str) -> Version | None:
        """The newest version of a document (None when none was recorded)."""
        found = self.versions(document_id)
        return found[-1] if found else None

    def version_counts(self, document_ids: Sequence[str]) -> dict[str, int]:
        """How many versions each document has; ids without versions are absent."""
        out: dict[str, int] = {}
        ids = list(dict.fromkeys(document_ids))
        for start in range(0, len(ids), _BATCH):
            part = ids[start : start + _BATCH]
            with self._db.connection() as db:
                rows = db.execute(
                    f"SELECT document_id, count(*) FROM versions WHERE document_id IN ({','.join('?' * len(part))})"
                    " GROUP BY document_id",
                    part,
                ).fetchall()
            out.update({r[0]: int(r[1]) for r in rows})
        return out

    # -- deletions ------------------------------------------------------------------------

    def mark_deleted(
        self, document_id: str, when: datetime, reason: str, *, last_seen: datetime | None = None
    ) -> Deletion | None:
        """Mark a document deleted at ``when``; the new :class:`Deletion`, or None if already marked.

        ``last_seen`` defaults to the latest version's ``last_seen`` (else ``when``). A document
        already marked keeps its first deletion (its time and reason).
        """
        if last_seen is None:
            latest = self.latest_version(document_id)
            last_seen = latest.last_seen if latest is not None else when
        with self._db.transaction() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO deletions (document_id, deleted_at, last_seen, reason) VALUES (?, ?, ?, ?)",
                (document_id, to_us(when), to_us(last_seen), reason),
            )
            if cur.rowcount == 0:
                return None
        return Deletion(document_id, from_us(to_us(when)), from_us(to_us(last_seen)), reason)

    def clear_deletion(self, document_id: str) -> bool:
        """Forget a deletion (the document came back); whether one was recorded."""
        with self._db.transaction() as db:
            cur = db.execute("DELETE FROM deletions WHERE document_id = ?", (document_id,))
            return cur.rowcount > 0

    def deletion(self, document_id: str) -> Deletion | None:
        """The deletion of a document (None when it is not marked deleted)."""
        found = self.deletions([document_id])
        return found.get(document_id)

    def deletions(self, document_ids: Sequence[str]) -> dict[str, Deletion]:
        """Deletions per document id; ids not deleted are absent."""
        out: dict[str, Deletion] = {}
        ids = list(dict.fromkeys(document_ids))
        for start in range(0, len(ids), _BATCH):
            part = ids[start : start + _BATCH]
            with self._db.connection() as db:
                rows = db.execute(
                    "SELECT document_id, deleted_at, last_seen, reason FROM deletions"
                    f" WHERE document_id IN ({','.join('?' * len(part))})",
                    part,
                ).fetchall()
            out.update({r[0]: Deletion(r[0], from_us(r[1]), from_us(r[2]), r[3]) for r in rows})
        return out

    def deleted_since(self, when: datetime) -> list[Deletion]:
        """Deletions noticed at or after ``when``, earliest first."""
        with self._db.connection() as db:
            rows = db.execute(
                "SELECT document_id, deleted_at, last_seen, reason FROM deletions WHERE deleted_at >= ?"
                " ORDER BY deleted_at, document_id",
                (to_us(when),),
            ).fetchall()
        return [Deletion(r[0], from_us(r[1]), from_us(r[2]), r[3]) for r in rows]
