"""The match store: every narrative match ever made, in SQLite (WAL), for detectors and review.

Idempotent per ``(document_id, narrative_id)``: storing a match again keeps one row (the best
scoring passage). :func:`collapse_copies` groups matches that are copies of each other, so
detectors count a text reposted by ten channels once. :meth:`MatchStore.read_cache` shares one
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
import operator
import sqlite3
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from core.files import private_file
from core.matches import Match, match_id

__all__ = [
    "MATCH_COLUMNS",
    "VERDICT_COLUMNS",
    "CopyGroup",
    "MatchStore",
    "collapse_copies",
    "decode_match",
    "fingerprint_jaccard",
    "normalize_outlet",
    "select_sql",
]

log = logging.getLogger(__name__)

COPY_THRESHOLD = 0.8
"""Estimated Jaccard (fraction of equal MinHash positions) at which two texts are copies."""

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

_VERDICT_SCHEMA = """
CREATE TABLE IF NOT EXISTS verdicts (
    match_id TEXT PRIMARY KEY,
    document_id TEXT NOT NULL,
    narrative_id TEXT NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('confirmed', 'rejected')),
    analyst TEXT NOT NULL,
    note TEXT NOT NULL,
    at INTEGER NOT NULL,
    language TEXT NOT NULL,
    title TEXT NOT NULL,
    passage_text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS verdicts_narrative ON verdicts (narrative_id, at);
CREATE TABLE IF NOT EXISTS verdict_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    match_id TEXT NOT NULL,
    document_id TEXT NOT NULL,
    narrative_id TEXT NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('confirmed', 'rejected')),
    analyst TEXT NOT NULL,
    note TEXT NOT NULL,
    at INTEGER NOT NULL,
    language TEXT NOT NULL,
    title TEXT NOT NULL,
    passage_text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS verdict_history_match ON verdict_history (match_id, seq);
"""
"""``verdicts`` holds the latest verdict per match (a later one replaces it); ``verdict_history``
keeps every verdict ever recorded, in order."""

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


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def _ts(value: datetime) -> int:
    """Exact microseconds since the epoch (floats would round-trip with 1 µs errors)."""
    if value.tzinfo is None:
        raise ValueError(f"datetimes must be timezone-aware (UTC), got {value!r}")
    return (value - _EPOCH) // _US


def fingerprint_jaccard(a: Sequence[int], b: Sequence[int]) -> float:
    """Estimated Jaccard similarity of two MinHash signatures: the fraction of equal positions.

    0.0 when either is empty or their lengths differ (signatures made with other settings).
    """
    if not a or not b or len(a) != len(b):
        return 0.0
    equal: int = sum(map(operator.eq, a, b))
    return equal / len(a)


def normalize_outlet(name: str) -> str:
    """``https://t.me/RIA_novosti``, ``@ria_novosti`` and ``ria_novosti`` -> ``ria_novosti``."""
    out = name.strip().lower()
    for prefix in ("https://", "http://"):
        out = out.removeprefix(prefix)
    out = out.removeprefix("www.").removeprefix("t.me/s/").removeprefix("t.me/").removeprefix("@")
    return out.rstrip("/")


@dataclass(frozen=True)
class CopyGroup:
    """Matches that are one text: the earliest is the original, the rest copies of it."""

    original: Match
    copies: tuple[Match, ...] = ()

    @property
    def members(self) -> tuple[Match, ...]:
        """The original followed by its copies."""
        return (self.original, *self.copies)

    @property
    def outlets(self) -> tuple[str, ...]:
        """Distinct outlets of the group, sorted."""
        return tuple(sorted({m.outlet for m in self.members}))


def _order(m: Match) -> tuple[datetime, str]:
    return (m.published, m.document_id)


def _candidate_pairs(items: Sequence[Match], threshold: float) -> Iterator[tuple[int, int]]:
    """Pairs that can reach ``threshold``, found by banding the signatures (exact, not sampled).

    Two signatures of length L with estimated Jaccard >= t differ in at most ``L(1-t)``
    positions; cut into ``floor(L(1-t)) + 1`` bands, at least one band is then identical
    (pigeonhole), so comparing only pairs that share a band finds every such pair while the
    rest (almost all pairs) are never compared. This keeps detectors linear in practice.
    """
    by_length: dict[int, list[int]] = {}
    for i, m in enumerate(items):
        if m.fingerprint:
            by_length.setdefault(len(m.fingerprint), []).append(i)
    seen: set[tuple[int, int]] = set()
    for length, idx in by_length.items():
        n_bands = min(length, int(length * (1.0 - threshold) + 1e-9) + 1)
        bounds = [round(b * length / n_bands) for b in range(n_bands + 1)]
        for b in range(n_bands):
            buckets: dict[tuple[int, ...], list[int]] = {}
            for i in idx:
                buckets.setdefault(tuple(items[i].fingerprint[bounds[b] : bounds[b + 1]]), []).append(i)
            for members in buckets.values():
                for x in range(1, len(members)):
                    for y in range(x):
                        pair = (members[x], members[y]) if members[x] > members[y] else (members[y], members[x])
                        if pair not in seen:
                            seen.add(pair)
                            yield pair


def collapse_copies(
    matches: Iterable[Match], threshold: float = COPY_THRESHOLD, *, forwards: bool = True
) -> list[CopyGroup]:
    """Group matches whose fingerprints are near-duplicates or that were forwarded from each other.

    A match is a copy when its fingerprint agrees with another's in ``>= threshold`` of positions,
    or when its ``forwarded_from`` names the outlet of another match in the input. Groups are the
    connected components; each is ordered by publication time, and the result by its original.
    ``forwards=False`` groups by text similarity only.
    """
    items = sorted(matches, key=_order)
    parent = list(range(len(items)))
    # Identical signatures (a text reposted verbatim) are copies outright (Jaccard 1.0): union them
    # and band only one representative per signature; the components are the same, found faster.
    firsts: dict[tuple[int, ...], int] = {}
    for i, m in enumerate(items):
        if m.fingerprint:
            firsts.setdefault(m.fingerprint, i)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)

    if threshold <= 1.0:
        for i, m in enumerate(items):
            if m.fingerprint and firsts[m.fingerprint] != i:
                union(i, firsts[m.fingerprint])
    reps = list(firsts.values()) if threshold <= 1.0 else list(range(len(items)))
    rep_items = [items[i] for i in reps]
    for a, b in _candidate_pairs(rep_items, threshold):
        i, j = reps[a], reps[b]
        if find(i) != find(j) and fingerprint_jaccard(items[i].fingerprint, items[j].fingerprint) >= threshold:
            union(i, j)
    if forwards and any(m.forwarded_from for m in items):
        _union_forwards(items, union)
    groups: dict[int, list[Match]] = {}
    for i, m in enumerate(items):
        groups.setdefault(find(i), []).append(m)
    out = [CopyGroup(original=ms[0], copies=tuple(ms[1:])) for ms in groups.values()]
    out.sort(key=lambda g: _order(g.original))
    return out


def _union_forwards(items: Sequence[Match], union: Callable[[int, int], None]) -> None:
    """Join each forward to its original: the latest item of the named outlet published no later
    (else the outlet's latest item). ``items`` are in publication order."""
    by_outlet: dict[str, list[int]] = {}
    for i, m in enumerate(items):
        by_outlet.setdefault(normalize_outlet(m.outlet), []).append(i)
    published = {key: [items[j].published for j in idx] for key, idx in by_outlet.items()}
    for i, m in enumerate(items):
        if not m.forwarded_from:
            continue
        key = normalize_outlet(m.forwarded_from)
        idx = by_outlet.get(key)
        if not idx:
            continue
        k = bisect_right(published[key], m.published) - 1  # idx[: k + 1] were published no later
        if k >= 0 and idx[k] == i:
            k -= 1
        if k >= 0:
            union(i, idx[k])
        elif idx[-1] != i or len(idx) > 1:
            union(i, idx[-1] if idx[-1] != i else idx[-2])


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


class MatchStore:
    """SQLite (WAL) store of matches; safe to share between threads of one process."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            private_file(self.path)  # 0600 (core.files)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._migrate()
        self._conn.executescript(_SCHEMA)
        self._conn.executescript(_VERDICT_SCHEMA)
        self._conn.execute("CREATE UNIQUE INDEX IF NOT EXISTS matches_id ON matches (match_id)")
        self._local = threading.local()

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """The database connection, held under the store's lock for the block.

        For modules that keep their own tables in this file (:mod:`monitors.verdicts`); the
        connection is in autocommit mode, so a multi-statement write opens its own transaction.
        """
        with self._lock:
            yield self._conn

    def get(self, match_id_: str) -> Match | None:
        """The stored match with this id (rejected or not), or None."""
        with self._lock:
            row = self._conn.execute(f"SELECT {_COLUMNS} FROM matches WHERE match_id = ?", (match_id_,)).fetchone()
        return None if row is None else _match(row, {})

    def _migrate(self) -> None:
        have = {r[1] for r in self._conn.execute("PRAGMA table_info(matches)")}
        if not have:
            return
        for name, decl in _ADDED_COLUMNS:
            if name not in have:
                self._conn.execute(f"ALTER TABLE matches ADD COLUMN {name} {decl}")
        if "match_id" not in have:
            rows = self._conn.execute("SELECT document_id, narrative_id FROM matches").fetchall()
            self._conn.executemany(
                "UPDATE matches SET match_id = ? WHERE document_id = ? AND narrative_id = ?",
                [(match_id(d, n), d, n) for d, n in rows],
            )
        if "seen" not in have:
            # No record of first sight: the earlier of publication and matching (see Match.seen), so
            # an upgrade never turns old matches into new alerts.
            self._conn.execute(
                "UPDATE matches SET seen = min(published, coalesce(matched_at, published)) WHERE seen IS NULL"
            )

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> MatchStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, matches: Iterable[Match]) -> int:
        """Store matches; returns how many (document, narrative) pairs were new.

        A repeated pair keeps one row: the passage with the higher score wins. The first-seen time
        (``seen``) of a stored pair never changes: re-fetches, updates and re-matches keep it.
        """
        rows = [_row(m) for m in matches]
        with self._lock:
            before = self._count()
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    f"INSERT INTO matches ({_COLUMNS}) VALUES ({', '.join('?' * 26)}) "
                    "ON CONFLICT (document_id, narrative_id) DO UPDATE SET "
                    + ", ".join(
                        f"{c} = excluded.{c}"
                        for c in _COLUMNS.replace(" ", "").split(",")
                        if c not in ("document_id", "narrative_id", "seen")
                    )
                    + " WHERE excluded.score > matches.score",
                    rows,
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            return self._count() - before

    def _count(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM matches").fetchone()[0])

    def __len__(self) -> int:
        with self._lock:
            return self._count()

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
        where: list[str] = [] if include_rejected else [_NOT_REJECTED]
        args: list[object] = []
        if narrative_id is not None:
            ids = [narrative_id] if isinstance(narrative_id, str) else list(narrative_id)
            where.append(f"narrative_id IN ({', '.join('?' * len(ids))})")
            args.extend(ids)
        if since is not None:
            where.append("published >= ?")
            args.append(_ts(since))
        if until is not None:
            where.append("published < ?")
            args.append(_ts(until))
        for column, values in (("outlet", outlets), ("language", languages), ("source_id", source_ids)):
            if values is not None:
                where.append(f"{column} IN ({', '.join('?' * len(values))})")
                args.extend(values)
        sql = select_sql(f"SELECT {_COLUMNS} FROM matches", where, "published, document_id, narrative_id", limit, args)
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
            return self._cached(cache, narrative_id, None if since is None else _ts(since), _ts(until))
        decoded: dict[str, tuple[Any, ...]] = {} if cache is None else cache.decoded
        with self._lock:
            return [_match(r, decoded) for r in self._conn.execute(sql, args)]

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
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY published, document_id", args).fetchall()
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
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT DISTINCT narrative_id FROM matches ORDER BY 1")]

    def seen_between(
        self, narrative_id: str, since: datetime, until: datetime, *, published_before: datetime | None = None
    ) -> list[Match]:
        """Matches of a narrative the service first saw in ``[since, until]`` (both inclusive), rejected
        ones left out, ordered by publication time; ``published_before`` keeps only those published
        earlier (the late ones a publication-time read of the recent past does not return)."""
        sql = f"SELECT {_COLUMNS} FROM matches WHERE narrative_id = ? AND seen >= ? AND seen <= ? AND {_NOT_REJECTED}"
        args: list[object] = [narrative_id, _ts(since), _ts(until)]
        if published_before is not None:
            sql += " AND published < ?"
            args.append(_ts(published_before))
        cache: _ReadCache | None = getattr(self._local, "cache", None)
        decoded: dict[str, tuple[Any, ...]] = {} if cache is None else cache.decoded
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY published, document_id", args).fetchall()
        return [_match(r, decoded) for r in rows]

    def _first_seen(self, column: str, narrative_id: str, until: datetime | None) -> dict[str, Match]:
        # The first row the service saw per value, ranked in SQL: only those rows are decoded.
        if column not in ("outlet", "language"):
            raise ValueError(f"unknown first-seen column {column!r}")
        sql = (
            f"SELECT {_COLUMNS} FROM matches WHERE rowid IN (SELECT rowid FROM ("
            f"SELECT rowid, row_number() OVER (PARTITION BY {column} ORDER BY seen, published, document_id) AS rank "
            f"FROM matches WHERE narrative_id = ? AND {_NOT_REJECTED}"
            + (" AND seen <= ?" if until is not None else "")
            + ") WHERE rank = 1) ORDER BY seen, published, document_id"
        )
        args: list[object] = [narrative_id] + ([_ts(until)] if until is not None else [])
        out: dict[str, Match] = {}
        with self._lock:
            for row in self._conn.execute(sql, args):
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


def select_sql(base: str, where: Sequence[str], order_by: str, limit: int | None, args: list[object]) -> str:
    """``base`` + ``WHERE`` (conditions joined by AND) + ``ORDER BY`` + ``LIMIT ?`` (appended to ``args``)."""
    sql = base + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY " + order_by
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    return sql


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
        _ts(m.published),
        m.url,
        m.title,
        float(m.similarity),
        m.counter_similarity,
        json.dumps(list(m.keywords), ensure_ascii=False),
        json.dumps(list(m.fingerprint)),
        m.forwarded_from,
        _ts(m.matched_at) if m.matched_at is not None else None,
        m.decision,
        m.probability,
        json.dumps(list(m.reasons), ensure_ascii=False),
        m.id,
        _ts(m.seen) if m.seen is not None else _ts(min(m.published, m.matched_at or m.published)),
    )


def decode_match(row: Sequence[Any]) -> Match:
    """A :class:`Match` from a row of the ``matches`` columns in store order (for joins elsewhere)."""
    return _match(tuple(row), {})


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
        published=_EPOCH + r[12] * _US,
        url=r[13],
        title=r[14],
        similarity=r[15],
        counter_similarity=r[16],
        keywords=_decoded(r[17], memo, False),
        fingerprint=_decoded(r[18], memo, True),
        forwarded_from=r[19],
        matched_at=None if r[20] is None else _EPOCH + r[20] * _US,
        decision=r[21],
        probability=r[22],
        reasons=_decoded(r[23], memo, False),
        seen=None if r[25] is None else _EPOCH + r[25] * _US,
    )
