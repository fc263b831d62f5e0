"""SQLite source of truth of the embedded index: documents, passages, vectors, write sequence.

Every write transaction takes the next *write sequence* number and stamps it on the rows it
adds (``documents.seq``, ``passages.seq``) and on the passages it removes (``removed``). The
derived structures (the tantivy full-text index and the in-memory vector matrix) remember the
last sequence they applied and catch up by reading the rows stamped after it.

WAL mode with ``synchronous=FULL``: a commit is on disk (WAL fsynced) before ``upsert``
returns, so an acknowledged write survives ``kill -9`` and power loss; readers in other
processes read consistent snapshots while the writer writes.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.documents import Document, EmbeddingSpace, IndexedDocument, Passage, SearchFilters
from core.errors import IndexUnavailable
from core.files import secure_dir
from core.serialize import optional_fields, optional_fields_json
from core.sqlite import connect
from core.timefmt import from_us as from_micros
from core.timefmt import to_us as to_micros
from index.base import ReachUpdate, reach_props

__all__ = [
    "DB_NAME",
    "PassageRow",
    "SqliteStore",
    "StoreChanges",
    "filter_sql",
    "from_micros",
    "to_micros",
]

log = logging.getLogger(__name__)

DB_NAME = "documents.sqlite3"
_MAX_PARAMS = 900

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    dkey INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    source_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    language TEXT NOT NULL,
    published INTEGER NOT NULL,
    fetched INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    url TEXT NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    props TEXT NOT NULL,
    seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_published ON documents (published, id);
CREATE INDEX IF NOT EXISTS documents_seq ON documents (seq);
CREATE TABLE IF NOT EXISTS passages (
    pid INTEGER PRIMARY KEY AUTOINCREMENT,
    dkey INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    start INTEGER NOT NULL,
    text TEXT NOT NULL,
    vector BLOB NOT NULL,
    seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS passages_dkey ON passages (dkey, idx);
CREATE INDEX IF NOT EXISTS passages_seq ON passages (seq);
CREATE TABLE IF NOT EXISTS removed (
    pid INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL,
    seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS removed_seq ON removed (seq);
"""


@dataclass(frozen=True)
class PassageRow:
    """One passage joined with the document fields search needs."""

    pid: int
    dkey: int
    index: int
    text: str
    doc_id: str
    url: str
    title: str
    source_id: str
    language: str
    kind: str
    published: int


@dataclass(frozen=True)
class StoreChanges:
    """Rows written after a given sequence, read in one snapshot."""

    seq: int
    removed_pids: tuple[int, ...]
    added: list[tuple[Any, ...]]
    """``(pid, dkey, idx, vector blob, source_id, language, kind, published)`` rows."""


def _chunks(items: Sequence[Any], size: int = _MAX_PARAMS) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def filter_sql(filters: SearchFilters | None, alias: str = "d") -> tuple[str, list[Any]]:
    """A SQL ``WHERE`` fragment (``1`` when empty) and its parameters for ``filters``."""
    if filters is None:
        return "1", []
    parts: list[str] = []
    params: list[Any] = []
    for column, values in (
        ("source_id", filters.sources),
        ("language", filters.languages),
        ("kind", filters.kinds),
        ("id", filters.document_ids),
    ):
        if values:
            parts.append(f"{alias}.{column} IN ({','.join('?' * len(values))})")
            params.extend(values)
    if filters.since is not None:
        parts.append(f"{alias}.published >= ?")
        params.append(to_micros(filters.since))
    if filters.until is not None:
        parts.append(f"{alias}.published < ?")
        params.append(to_micros(filters.until))
    return (" AND ".join(parts) or "1"), params


class SqliteStore:
    """The SQLite database of one embedded index (one writer process, many readers)."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path / DB_NAME
        self.read_only = read_only
        if read_only:
            if not self.path.exists():
                raise IndexUnavailable(f"no embedded index at {path} (run an ingest first)")
        else:
            secure_dir(path, tighten=True)  # 0700: the text index and vectors live here too (core.files)
        # One writer process: its own transactions, no shared lock (see core.sqlite for the rest).
        self.conn = connect(self.path, synchronous="FULL", read_only=read_only)
        if not read_only:
            self.conn.executescript(_SCHEMA)

    # -- meta ---------------------------------------------------------------------------------

    def seq(self) -> int:
        """The last committed write sequence (0 for an empty index)."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
        return int(row[0]) if row else 0

    def embedding_space(self) -> EmbeddingSpace | None:
        """The stored embedding space, or None before the first open for writing."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'embedding_space'").fetchone()
        return EmbeddingSpace.from_dict(json.loads(row[0])) if row else None

    def set_embedding_space(self, space: EmbeddingSpace) -> None:
        """Record the space this index is bound to (first open only)."""
        self.conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('embedding_space', ?)",
            (json.dumps(space.to_dict(), sort_keys=True),),
        )

    # -- writes -------------------------------------------------------------------------------

    def upsert(self, docs: Sequence[IndexedDocument]) -> tuple[list[str], list[str], list[str], int]:
        """Write ``docs`` in one durable transaction; returns (new, updated, unchanged, seq)."""
        new: list[str] = []
        updated: list[str] = []
        unchanged: list[str] = []
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            seq = self.seq() + 1
            for item in docs:
                doc = item.document
                row = cur.execute("SELECT dkey, content_hash FROM documents WHERE id = ?", (doc.id,)).fetchone()
                if row is not None and row[1] == doc.content_hash:
                    unchanged.append(doc.id)
                    continue
                values = (
                    doc.source_id,
                    doc.kind,
                    doc.language,
                    to_micros(doc.published),
                    to_micros(doc.fetched),
                    doc.content_hash,
                    doc.url,
                    doc.title,
                    doc.text,
                    optional_fields_json(doc),
                    seq,
                )
                if row is None:
                    cur.execute(
                        "INSERT INTO documents (source_id, kind, language, published, fetched, content_hash,"
                        " url, title, text, props, seq, id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                        (*values, doc.id),
                    )
                    dkey = int(cur.lastrowid or 0)
                    new.append(doc.id)
                else:
                    dkey = int(row[0])
                    self._remove_passages(cur, dkey, doc.id, seq)
                    cur.execute(
                        "UPDATE documents SET source_id=?, kind=?, language=?, published=?, fetched=?,"
                        " content_hash=?, url=?, title=?, text=?, props=?, seq=? WHERE dkey=?",
                        (*values, dkey),
                    )
                    updated.append(doc.id)
                vectors = np.ascontiguousarray(item.vectors, dtype=np.float32)
                cur.executemany(
                    "INSERT INTO passages (dkey, idx, start, text, vector, seq) VALUES (?,?,?,?,?,?)",
                    [(dkey, p.index, p.start, p.text, vectors[i].tobytes(), seq) for i, p in enumerate(doc.passages)],
                )
            if new or updated:
                cur.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('seq', ?)", (str(seq),))
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return new, updated, unchanged, seq

    def delete(self, doc_ids: Sequence[str]) -> int:
        """Delete documents in one durable transaction; returns how many existed."""
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            seq = self.seq() + 1
            found = 0
            for doc_id in dict.fromkeys(doc_ids):
                row = cur.execute("SELECT dkey FROM documents WHERE id = ?", (doc_id,)).fetchone()
                if row is None:
                    continue
                found += 1
                self._remove_passages(cur, int(row[0]), doc_id, seq)
                cur.execute("DELETE FROM documents WHERE dkey = ?", (row[0],))
            if found:
                cur.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('seq', ?)", (str(seq),))
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return found

    def update_reach(self, updates: Sequence[ReachUpdate]) -> list[str]:
        """Apply reach updates to the stored fields in one durable transaction; returns the ids
        updated. The sequence does not move: text, passages and vectors did not change."""
        done: list[str] = []
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            for u in updates:
                row = cur.execute(
                    "SELECT dkey, props FROM documents WHERE id = ? AND source_id = ?", (u.document_id, u.source_id)
                ).fetchone()
                if row is None:
                    continue
                props = reach_props(json.loads(row[1]), u)
                cur.execute(
                    "UPDATE documents SET props = ? WHERE dkey = ?",
                    (json.dumps(props, ensure_ascii=False, default=str), row[0]),
                )
                done.append(u.document_id)
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return done

    @staticmethod
    def _remove_passages(cur: sqlite3.Cursor, dkey: int, doc_id: str, seq: int) -> None:
        cur.execute(
            "INSERT OR REPLACE INTO removed (pid, doc_id, seq) SELECT pid, ?, ? FROM passages WHERE dkey = ?",
            (doc_id, seq, dkey),
        )
        cur.execute("DELETE FROM passages WHERE dkey = ?", (dkey,))

    # -- change feeds -------------------------------------------------------------------------

    def changes_since(self, seq: int) -> StoreChanges:
        """Passages added and removed after ``seq``, in one read snapshot."""
        cur = self.conn.cursor()
        cur.execute("BEGIN")
        try:
            now = self.seq()
            removed = tuple(r[0] for r in cur.execute("SELECT pid FROM removed WHERE seq > ?", (seq,)))
            added = cur.execute(
                "SELECT p.pid, p.dkey, p.idx, p.vector, d.source_id, d.language, d.kind, d.published"
                " FROM passages p JOIN documents d ON d.dkey = p.dkey WHERE p.seq > ? ORDER BY p.pid",
                (seq,),
            ).fetchall()
        finally:
            cur.execute("COMMIT")
        return StoreChanges(seq=now, removed_pids=removed, added=added)

    def removed_since(self, seq: int, upto: int) -> tuple[int, ...]:
        """Passage ids removed by writes ``seq < s <= upto``."""
        rows = self.conn.execute("SELECT pid FROM removed WHERE seq > ? AND seq <= ?", (seq, upto))
        return tuple(r[0] for r in rows)

    def count_added(self, seq: int, upto: int) -> int:
        """How many live passages writes ``seq < s <= upto`` added (for preallocation)."""
        row = self.conn.execute("SELECT count(*) FROM passages WHERE seq > ? AND seq <= ?", (seq, upto)).fetchone()
        return int(row[0])

    def added_pages(self, seq: int, upto: int, chunk: int) -> Iterator[list[tuple[Any, ...]]]:
        """Passages added by writes ``seq < s <= upto`` in pages of ``chunk`` rows (pid order).

        Paged by pid rather than read in one snapshot, so a reader never holds every vector blob
        at once (a 1M-passage index would need 2 GB of them). Rows written later have a larger seq
        and are left for the next sync; a row deleted meanwhile was going to be removed anyway.
        """
        last = -1
        while True:
            rows = self.conn.execute(
                "SELECT p.pid, p.dkey, p.idx, p.vector, d.source_id, d.language, d.kind, d.published"
                " FROM passages p JOIN documents d ON d.dkey = p.dkey"
                " WHERE p.seq > ? AND p.seq <= ? AND p.pid > ? ORDER BY p.pid LIMIT ?",
                (seq, upto, last, chunk),
            ).fetchall()
            if not rows:
                return
            yield rows
            last = rows[-1][0]

    def changed_doc_ids(self, seq: int) -> tuple[int, list[str]]:
        """(current seq, ids of documents written or removed after ``seq``)."""
        cur = self.conn.cursor()
        cur.execute("BEGIN")
        try:
            now = self.seq()
            ids = [
                r[0]
                for r in cur.execute(
                    "SELECT id FROM documents WHERE seq > ? UNION SELECT doc_id FROM removed WHERE seq > ?",
                    (seq, seq),
                )
            ]
        finally:
            cur.execute("COMMIT")
        return now, ids

    def fulltext_rows(self, doc_ids: Sequence[str] | None) -> Iterator[tuple[Any, ...]]:
        """``(pid, doc_id, source_id, language, kind, published, title, passage text)`` rows."""
        base = (
            "SELECT p.pid, d.id, d.source_id, d.language, d.kind, d.published, d.title, p.text"
            " FROM passages p JOIN documents d ON d.dkey = p.dkey"
        )
        if doc_ids is None:
            yield from self.conn.execute(base + " ORDER BY p.pid")
            return
        for chunk in _chunks(list(doc_ids)):
            yield from self.conn.execute(base + f" WHERE d.id IN ({','.join('?' * len(chunk))})", list(chunk))

    # -- reads --------------------------------------------------------------------------------

    def content_hashes(self, doc_ids: Sequence[str]) -> dict[str, str]:
        """``{id: content_hash}`` for the ids that exist."""
        out: dict[str, str] = {}
        for chunk in _chunks(list(doc_ids)):
            q = f"SELECT id, content_hash FROM documents WHERE id IN ({','.join('?' * len(chunk))})"
            out.update(dict(self.conn.execute(q, list(chunk)).fetchall()))
        return out

    def dkeys_for(self, doc_ids: Sequence[str]) -> list[int]:
        """Internal keys of the documents with these ids (missing ids are skipped)."""
        out: list[int] = []
        for chunk in _chunks(list(doc_ids)):
            q = f"SELECT dkey FROM documents WHERE id IN ({','.join('?' * len(chunk))})"
            out.extend(r[0] for r in self.conn.execute(q, list(chunk)))
        return out

    def doc_ids_for(self, dkeys: Sequence[int]) -> dict[int, str]:
        """``{dkey: id}`` for these internal keys."""
        out: dict[int, str] = {}
        for chunk in _chunks(list(dkeys)):
            q = f"SELECT dkey, id FROM documents WHERE dkey IN ({','.join('?' * len(chunk))})"
            out.update(dict(self.conn.execute(q, list(chunk)).fetchall()))
        return out

    def passage_rows(self, pids: Sequence[int]) -> dict[int, PassageRow]:
        """Passages with their documents' fields, by pid."""
        out: dict[int, PassageRow] = {}
        for chunk in _chunks(list(pids)):
            q = (
                "SELECT p.pid, p.dkey, p.idx, p.text, d.id, d.url, d.title, d.source_id, d.language, d.kind,"
                f" d.published FROM passages p JOIN documents d ON d.dkey = p.dkey"
                f" WHERE p.pid IN ({','.join('?' * len(chunk))})"
            )
            for r in self.conn.execute(q, list(chunk)):
                out[r[0]] = PassageRow(*r)
        return out

    def get(self, doc_id: str) -> Document | None:
        """One document by id, or None."""
        cur = self.conn.cursor()
        cur.execute("BEGIN")
        try:
            row = cur.execute(f"SELECT {_DOC_COLUMNS} FROM documents WHERE id = ?", (doc_id,)).fetchone()
            if row is None:
                return None
            passages = self._passages(cur, [row[0]])
        finally:
            cur.execute("COMMIT")
        return _document(row, passages.get(row[0], ()))

    def iter_documents(self, filters: SearchFilters | None, batch: int) -> Iterator[Document]:
        """Documents matching ``filters``, oldest published first (keyset pagination)."""
        where, params = filter_sql(filters)
        last: tuple[int, str] | None = None
        while True:
            cur = self.conn.cursor()
            cur.execute("BEGIN")
            try:
                page_where = where if last is None else f"({where}) AND (d.published, d.id) > (?, ?)"
                page_params = params if last is None else [*params, *last]
                rows = cur.execute(
                    f"SELECT {_DOC_COLUMNS} FROM documents d WHERE {page_where} ORDER BY d.published, d.id LIMIT ?",
                    [*page_params, batch],
                ).fetchall()
                passages = self._passages(cur, [r[0] for r in rows])
            finally:
                cur.execute("COMMIT")
            if not rows:
                return
            for r in rows:
                yield _document(r, passages.get(r[0], ()))
            last = (rows[-1][5], rows[-1][1])
            if len(rows) < batch:
                return

    @staticmethod
    def _passages(cur: sqlite3.Cursor, dkeys: Sequence[int]) -> dict[int, tuple[Passage, ...]]:
        out: dict[int, list[Passage]] = {}
        for chunk in _chunks(list(dkeys)):
            q = f"SELECT dkey, idx, text, start FROM passages WHERE dkey IN ({','.join('?' * len(chunk))})"
            for dkey, idx, text, start in cur.execute(q + " ORDER BY dkey, idx", list(chunk)):
                out.setdefault(dkey, []).append(Passage(index=idx, text=text, start=start))
        return {k: tuple(v) for k, v in out.items()}

    def count(self, by: str, filters: SearchFilters | None) -> dict[str, int]:
        """Document counts grouped by a column or UTC day."""
        column = {
            "source": "d.source_id",
            "language": "d.language",
            "kind": "d.kind",
            "day": "strftime('%Y-%m-%d', d.published / 1000000, 'unixepoch')",
        }.get(by)
        if column is None:
            raise ValueError(f"count by {by!r}: expected source, language, kind or day")
        where, params = filter_sql(filters)
        q = f"SELECT {column} AS g, COUNT(*) FROM documents d WHERE {where} GROUP BY g ORDER BY g"
        return {str(g): int(n) for g, n in self.conn.execute(q, params)}

    def totals(self) -> tuple[int, int]:
        """(documents, passages)."""
        docs = self.conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        passages = self.conn.execute("SELECT COUNT(*) FROM passages").fetchone()[0]
        return int(docs), int(passages)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


_DOC_COLUMNS = "dkey, id, source_id, kind, language, published, fetched, content_hash, url, title, text, props"


def _document(row: Sequence[Any], passages: tuple[Passage, ...]) -> Document:
    props: dict[str, Any] = json.loads(row[11])
    return Document(
        id=row[1],
        source_id=row[2],
        kind=row[3],
        language=row[4],
        published=from_micros(row[5]),
        fetched=from_micros(row[6]),
        content_hash=row[7],
        url=row[8],
        title=row[9],
        text=row[10],
        passages=passages,
        **optional_fields(props),
    )
