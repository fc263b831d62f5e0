"""The match store: every narrative match ever made, for detectors and review.

SQLite (WAL) on one box, or the shared PostgreSQL state schema (``state.backend: postgresql``,
the same SQL through :mod:`core.sql`), where every worker's matches meet so detectors see them all.

Idempotent per ``(document_id, narrative_id)``: storing a match again keeps one row (the best
scoring passage). Which matches are copies of each other is :mod:`monitors.copies`.
:meth:`MatchStore.read_cache` shares one
read per narrative between the detectors of one pass (``alerts.rules.run_rules`` opens it).

Every match has two times: ``published`` (from the source) and ``seen`` (when the service first
matched it, kept from the first store: see :attr:`core.matches.Match.seen`). Reads by time window
use publication time; :meth:`MatchStore.seen_between` and the first-seen reads use ``seen``.

Analysts' verdicts (:mod:`monitors.verdicts`) live in the same file. A match whose latest verdict
is ``rejected`` is left out of every read detectors use (:meth:`MatchStore.matches`, the read
cache, the first-seen reads), and storing it again does not bring it back: the verdict is keyed
by the match id, not by the row.
"""

from __future__ import annotations

import json
import logging
import threading
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from core.matches import Match, match_id
from core.sql import ReturningConnection, SqlConnection, SqlDatabase
from core.sqlite import Store, Where, add_columns, open_database
from core.timefmt import from_us, to_us

__all__ = [
    "MATCH_COLUMNS",
    "VERDICT_COLUMNS",
    "VERDICT_UPSERT",
    "MatchStore",
    "decode_match",
]

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS matches (
    document_id TEXT NOT NULL,
    narrative_id TEXT NOT NULL,
    score REAL NOT NULL,
    tier TEXT NOT NULL,
    passage_index INTEGER NOT NULL,
    passage_text TEXT NOT NULL,
    exemplar TEXT NOT NULL,
    exemplar_language TEXT NOT NULL,
    model TEXT NOT NULL,
    source_id TEXT NOT NULL,
    outlet TEXT NOT NULL,
    language TEXT NOT NULL,
    published INTEGER NOT NULL,
    url TEXT NOT NULL,
    title TEXT NOT NULL,
    similarity REAL NOT NULL,
    counter_similarity REAL,
    keywords TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    forwarded_from TEXT NOT NULL,
    matched_at INTEGER,
    decision TEXT NOT NULL DEFAULT 'threshold',
    probability REAL,
    reasons TEXT NOT NULL DEFAULT '[]',
    match_id TEXT,
    seen INTEGER,
    PRIMARY KEY (document_id, narrative_id)
);
CREATE INDEX IF NOT EXISTS matches_narrative_time ON matches (narrative_id, published);
CREATE INDEX IF NOT EXISTS matches_time ON matches (published);
CREATE INDEX IF NOT EXISTS matches_outlet ON matches (outlet, narrative_id, published);
CREATE INDEX IF NOT EXISTS matches_narrative_seen ON matches (narrative_id, seen);
CREATE INDEX IF NOT EXISTS matches_first_outlet_seen ON matches (narrative_id, outlet, seen, published, document_id);
CREATE INDEX IF NOT EXISTS matches_first_lang_seen ON matches (narrative_id, language, seen, published, document_id);
DROP INDEX IF EXISTS matches_first_outlet;
DROP INDEX IF EXISTS matches_first_language;
"""

VERDICT_COLUMNS = "match_id, document_id, narrative_id, verdict, analyst, note, at, language, title, passage_text"
"""Columns of ``verdicts`` and ``verdict_history`` (see :mod:`monitors.verdicts`)."""

_VERDICT_FIELDS = """
    document_id TEXT NOT NULL,
    narrative_id TEXT NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('confirmed', 'rejected')),
    analyst TEXT NOT NULL,
    note TEXT NOT NULL,
    at INTEGER NOT NULL,
    language TEXT NOT NULL,
    title TEXT NOT NULL,
    passage_text TEXT NOT NULL
"""
_VERDICT_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS verdicts (
    match_id TEXT PRIMARY KEY,{_VERDICT_FIELDS});
CREATE INDEX IF NOT EXISTS verdicts_narrative ON verdicts (narrative_id, at);
CREATE TABLE IF NOT EXISTS verdict_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    match_id TEXT NOT NULL,{_VERDICT_FIELDS});
CREATE INDEX IF NOT EXISTS verdict_history_match ON verdict_history (match_id, seq);
"""
"""``verdicts`` holds the latest verdict per match (a later one replaces it); ``verdict_history``
keeps every verdict ever recorded, in order."""

_ID_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS matches_id ON matches (match_id);"
"""After the migration: stores created before ``match_id`` get the column first."""

_NOT_REJECTED = (
    "NOT EXISTS (SELECT 1 FROM verdicts AS v WHERE v.match_id = matches.match_id AND v.verdict = 'rejected')"
)
"""SQL condition on ``matches`` rows: the match's latest verdict is not ``rejected``."""

_COLUMNS = (
    "document_id, narrative_id, score, tier, passage_index, passage_text, exemplar, exemplar_language, model, "
    "source_id, outlet, language, published, url, title, similarity, counter_similarity, keywords, fingerprint, "
    "forwarded_from, matched_at, decision, probability, reasons, match_id, seen"
)

_ADDED_COLUMNS = (
    ("decision", "TEXT NOT NULL DEFAULT 'threshold'"),
    ("probability", "REAL"),
    ("reasons", "TEXT NOT NULL DEFAULT '[]'"),
    ("match_id", "TEXT"),
    ("seen", "INTEGER"),
)
"""Columns added after the first release: stores created before them are migrated on open."""

_UPSERT = (
    f"INSERT INTO matches ({_COLUMNS}) VALUES ({', '.join('?' * len(_COLUMNS.split(', ')))}) "
    "ON CONFLICT (document_id, narrative_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS.split(", ") if c not in ("document_id", "narrative_id", "seen"))
    + " WHERE excluded.score > matches.score"
)

_VERDICT_UPSERT = (
    f"INSERT INTO verdicts ({VERDICT_COLUMNS}) VALUES ({', '.join('?' * len(VERDICT_COLUMNS.split(', ')))}) "
    "ON CONFLICT (match_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in VERDICT_COLUMNS.split(", ") if c != "match_id")
)
"""The latest verdict per match: a later one replaces it (used by :mod:`monitors.verdicts`)."""
"""A repeated pair keeps one row, the better-scoring passage's; ``seen`` (first sight) never changes."""


@dataclass
class _Span:
    """One narrative's matches published in ``[lo, hi)`` (``lo`` None: from the beginning), in order."""

    lo: int | None
    hi: int
    ts: list[int] = field(default_factory=list)
    matches: list[Match] = field(default_factory=list)


@dataclass
class _ReadCache:
    """Reads shared within one :meth:`MatchStore.read_cache` block: per-narrative spans, decoded JSON."""

    spans: dict[str, _Span] = field(default_factory=dict)
    decoded: dict[str, tuple[Any, ...]] = field(default_factory=dict)


class MatchStore(Store):
    """Store of matches: a SQLite file (WAL, synchronous=NORMAL, see :mod:`core.sqlite`) or a shared
    :class:`~core.sql.SqlDatabase` (PostgreSQL); safe to share between threads of one process."""

    def __init__(self, path: Path | str | SqlDatabase) -> None:
        self._db, self._owns_db = open_database(path, synchronous="NORMAL")
        if self._db.dialect.name == "sqlite":
            with self._db.connection() as conn:
                self._migrate(conn)
        self._db.script(_SCHEMA + _VERDICT_SCHEMA + _ID_INDEX)
        self._local = threading.local()

    @contextmanager
    def connection(self) -> Iterator[SqlConnection]:
        """The database connection, held under the store's lock for the block.

        For modules that keep their own tables in this file (:mod:`monitors.verdicts`): reads and
        single statements (autocommit); a multi-statement write uses :meth:`transaction`.
        """
        with self._db.connection() as conn:
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[SqlConnection]:
        """A write transaction on the store's file (see :meth:`core.sqlite.Database.transaction`)."""
        with self._db.transaction() as conn:
            yield conn

    def get(self, match_id_: str) -> Match | None:
        """The stored match with this id (rejected or not), or None."""
        with self._db.connection() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM matches WHERE match_id = ?", (match_id_,)).fetchone()
        return None if row is None else _match(row, {})

    @staticmethod
    def _migrate(conn: Any) -> None:  # SQLite only: PostgreSQL schemas start with every column
        added = add_columns(conn, "matches", _ADDED_COLUMNS)
        if "match_id" in added:
            rows = conn.execute("SELECT document_id, narrative_id FROM matches").fetchall()
            conn.executemany(
                "UPDATE matches SET match_id = ? WHERE document_id = ? AND narrative_id = ?",
                [(match_id(d, n), d, n) for d, n in rows],
            )
        if "seen" in added:
            # No record of first sight: the earlier of publication and matching (see Match.seen), so
            # an upgrade never turns old matches into new alerts.
            conn.execute("UPDATE matches SET seen = min(published, coalesce(matched_at, published)) WHERE seen IS NULL")

    def add(self, matches: Iterable[Match]) -> int:
        """Store matches; returns how many (document, narrative) pairs were new.

        A repeated pair keeps one row: the passage with the higher score wins. The first-seen time
        (``seen``) of a stored pair never changes: re-fetches, updates and re-matches keep it.
        """
        # In key order (stable: a pair repeated in the batch keeps its order): PostgreSQL workers
        # upserting overlapping batches then lock rows in one order, never deadlocking each other.
        rows = sorted((_row(m) for m in matches), key=lambda r: (r[0], r[1]))
        with self._db.transaction() as conn:
            if isinstance(conn, ReturningConnection):
                # Other workers insert concurrently: count this statement's own inserts, not the table.
                return sum(1 for r in conn.executemany_returning(_UPSERT + " RETURNING (xmax = 0)", rows) if r and r[0])
            before = self._count(conn)
            conn.executemany(_UPSERT, rows)
            return self._count(conn) - before

    @staticmethod
    def _count(conn: SqlConnection) -> int:
        return int(conn.execute("SELECT count(*) FROM matches").fetchone()[0])

    def __len__(self) -> int:
        with self._db.connection() as conn:
            return self._count(conn)

    def matches(
        self,
        narrative_id: str | Sequence[str] | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        outlets: Sequence[str] | None = None,
        languages: Sequence[str] | None = None,
        source_ids: Sequence[str] | None = None,
        limit: int | None = None,
        include_rejected: bool = False,
    ) -> list[Match]:
        """Matches ordered by publication time, filtered; ``since`` inclusive, ``until`` exclusive.

        Matches an analyst rejected are left out unless ``include_rejected`` (review screens).
        """
        where = Where() if include_rejected else Where(_NOT_REJECTED)
        where.one_of("narrative_id", [narrative_id] if isinstance(narrative_id, str) else narrative_id)
        where.between("published", since, until)
        where.one_of("outlet", outlets).one_of("language", languages).one_of("source_id", source_ids)
        sql, args = where.select(f"SELECT {_COLUMNS} FROM matches", "published, document_id, narrative_id", limit=limit)
        cache: _ReadCache | None = getattr(self._local, "cache", None)
        if (
            cache is not None
            and isinstance(narrative_id, str)
            and until is not None
            and outlets is None
            and languages is None
            and source_ids is None
            and limit is None
            and not include_rejected
        ):
            return self._cached(cache, narrative_id, None if since is None else to_us(since), to_us(until))
        decoded: dict[str, tuple[Any, ...]] = {} if cache is None else cache.decoded
        with self._db.connection() as conn:
            return [_match(r, decoded) for r in conn.execute(sql, args)]

    @contextmanager
    def read_cache(self) -> Iterator[None]:
        """Share reads within the block (this thread only): one detector pass over a consistent view.

        ``matches(narrative_id, since=..., until=...)`` (one narrative, no other filters) is served
        from one read per narrative, extended when a wider window is asked for, so rules with
        overlapping windows do not re-read and re-decode the same rows; results are the rows an
        uncached call returns at the time of the first read (matches added meanwhile are seen by the
        next block). Nested blocks share the outer cache.
        """
        if getattr(self._local, "cache", None) is not None:
            yield
            return
        self._local.cache = _ReadCache()
        try:
            yield
        finally:
            self._local.cache = None

    def _cached(self, cache: _ReadCache, narrative_id: str, since: int | None, until: int) -> list[Match]:
        if since is not None and since >= until:
            return []
        span = cache.spans.get(narrative_id)
        if span is None:
            span = cache.spans[narrative_id] = _Span(since, until)
            self._load(cache, span, narrative_id, since, until, append=True)
        if span.lo is not None and (since is None or since < span.lo):
            self._load(cache, span, narrative_id, since, span.lo, append=False)
            span.lo = since
        if until > span.hi:
            self._load(cache, span, narrative_id, span.hi, until, append=True)
            span.hi = until
        start = 0 if since is None else bisect_left(span.ts, since)
        return span.matches[start : bisect_left(span.ts, until)]

    def _load(
        self, cache: _ReadCache, span: _Span, narrative_id: str, lo: int | None, hi: int, *, append: bool
    ) -> None:
        sql = f"SELECT {_COLUMNS} FROM matches WHERE narrative_id = ? AND published < ? AND {_NOT_REJECTED}"
        args: list[object] = [narrative_id, hi]
        if lo is not None:
            sql += " AND published >= ?"
            args.append(lo)
        with self._db.connection() as conn:
            rows = conn.execute(sql + " ORDER BY published, document_id", args).fetchall()
        ts = [int(r[12]) for r in rows]
        got = [_match(r, cache.decoded) for r in rows]
        if append:
            span.ts.extend(ts)
            span.matches.extend(got)
        else:
            span.ts[:0] = ts
            span.matches[:0] = got

    def narrative_ids(self) -> list[str]:
        """Every narrative that has at least one match, sorted."""
        with self._db.connection() as conn:
            return [r[0] for r in conn.execute("SELECT DISTINCT narrative_id FROM matches ORDER BY 1")]

    def seen_between(
        self, narrative_id: str, since: datetime, until: datetime, *, published_before: datetime | None = None
    ) -> list[Match]:
        """Matches of a narrative the service first saw in ``[since, until]`` (both inclusive), rejected
        ones left out, ordered by publication time; ``published_before`` keeps only those published
        earlier (the late ones a publication-time read of the recent past does not return)."""
        sql = f"SELECT {_COLUMNS} FROM matches WHERE narrative_id = ? AND seen >= ? AND seen <= ? AND {_NOT_REJECTED}"
        args: list[object] = [narrative_id, to_us(since), to_us(until)]
        if published_before is not None:
            sql += " AND published < ?"
            args.append(to_us(published_before))
        cache: _ReadCache | None = getattr(self._local, "cache", None)
        decoded: dict[str, tuple[Any, ...]] = {} if cache is None else cache.decoded
        with self._db.connection() as conn:
            rows = conn.execute(sql + " ORDER BY published, document_id", args).fetchall()
        return [_match(r, decoded) for r in rows]

    def _first_seen(self, column: str, narrative_id: str, until: datetime | None) -> dict[str, Match]:
        # The first row the service saw per value, ranked in SQL: only those rows are decoded.
        if column not in ("outlet", "language"):
            raise ValueError(f"unknown first-seen column {column!r}")
        sql = (
            f"SELECT {_COLUMNS} FROM (SELECT {_COLUMNS}, "
            f"row_number() OVER (PARTITION BY {column} ORDER BY seen, published, document_id) AS first_rank "
            f"FROM matches WHERE narrative_id = ? AND {_NOT_REJECTED}"
            + (" AND seen <= ?" if until is not None else "")
            + ") AS ranked WHERE first_rank = 1 ORDER BY seen, published, document_id"
        )
        args: list[object] = [narrative_id] + ([to_us(until)] if until is not None else [])
        out: dict[str, Match] = {}
        with self._db.connection() as conn:
            for row in conn.execute(sql, args):
                m = _match(row, {})
                out.setdefault(getattr(m, column), m)
        return out

    def first_seen_by_outlet(self, narrative_id: str, until: datetime | None = None) -> dict[str, Match]:
        """outlet -> the first match of the narrative there that the service saw (``seen``, then
        publication time, breaks ties), among those seen by ``until`` (inclusive), in that order."""
        return self._first_seen("outlet", narrative_id, until)

    def first_seen_by_language(self, narrative_id: str, until: datetime | None = None) -> dict[str, Match]:
        """language -> the first match of the narrative in it that the service saw (as
        :meth:`first_seen_by_outlet`)."""
        return self._first_seen("language", narrative_id, until)


def _row(m: Match) -> tuple[object, ...]:
    return (
        m.document_id,
        m.narrative_id,
        float(m.score),
        m.tier,
        m.passage_index,
        m.passage_text,
        m.exemplar,
        m.exemplar_language,
        m.model,
        m.source_id,
        m.outlet,
        m.language,
        to_us(m.published),
        m.url,
        m.title,
        float(m.similarity),
        m.counter_similarity,
        json.dumps(list(m.keywords), ensure_ascii=False),
        json.dumps(list(m.fingerprint)),
        m.forwarded_from,
        to_us(m.matched_at) if m.matched_at is not None else None,
        m.decision,
        m.probability,
        json.dumps(list(m.reasons), ensure_ascii=False),
        m.id,
        to_us(m.seen) if m.seen is not None else to_us(min(m.published, m.matched_at or m.published)),
    )


def decode_match(row: Sequence[Any]) -> Match:
    """A :class:`Match` from a row of the ``matches`` columns in store order (for joins elsewhere)."""
    return _match(tuple(row), {})


VERDICT_UPSERT = _VERDICT_UPSERT

MATCH_COLUMNS = _COLUMNS
"""The ``matches`` columns in the order :func:`decode_match` expects (prefix them with a table alias
by splitting on ``", "``)."""


def _decoded(text: str, memo: dict[str, tuple[Any, ...]], ints: bool) -> tuple[Any, ...]:
    """A JSON list as a tuple, memoised (reposts share fingerprints; most keyword lists are ``[]``)."""
    out = memo.get(text)
    if out is None:
        values = json.loads(text)
        out = memo[text] = tuple(int(x) for x in values) if ints else tuple(values)
    return out


def _match(r: tuple[Any, ...], memo: dict[str, tuple[Any, ...]]) -> Match:
    # The columns' affinities already give str (TEXT), int (INTEGER) and float (REAL): no conversions.
    return Match(
        document_id=r[0],
        narrative_id=r[1],
        score=r[2],
        tier=r[3],
        passage_index=r[4],
        passage_text=r[5],
        exemplar=r[6],
        exemplar_language=r[7],
        model=r[8],
        source_id=r[9],
        outlet=r[10],
        language=r[11],
        published=from_us(r[12]),
        url=r[13],
        title=r[14],
        similarity=r[15],
        counter_similarity=r[16],
        keywords=_decoded(r[17], memo, False),
        fingerprint=_decoded(r[18], memo, True),
        forwarded_from=r[19],
        matched_at=from_us(r[20]),
        decision=r[21],
        probability=r[22],
        reasons=_decoded(r[23], memo, False),
        seen=from_us(r[25]),
    )
