"""In-memory passage matrix of the embedded index: exact cosine kNN with filters applied first.

Rows are passages; alongside the float32 matrix live per-passage metadata arrays (document key,
passage index, source, language, kind, published) so a filter is a boolean mask computed before
the matrix product. The matrix is derived from SQLite and kept in sync by applying the rows
written after the last sequence it saw (:meth:`SqliteStore.changes_since`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from core.documents import SearchFilters
from index.local_store import SqliteStore, StoreChanges, to_micros

__all__ = ["VectorMatrix", "VectorRanking"]

log = logging.getLogger(__name__)

_CHUNK = 8_192


@dataclass(frozen=True)
class VectorRanking:
    """Passage ids best first, with their cosine similarities."""

    pids: npt.NDArray[np.int64]
    scores: npt.NDArray[np.float32]
    exhausted: bool
    """True when every candidate passage is in the ranking (asking for more finds nothing new)."""


class _Codes:
    """String <-> small int, for metadata columns compared by mask."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}

    def code(self, value: str) -> int:
        c = self.codes.get(value)
        if c is None:
            c = self.codes[value] = len(self.codes)
        return c

    def lookup(self, values: Sequence[str]) -> list[int]:
        return [self.codes[v] for v in values if v in self.codes]


class VectorMatrix:
    """Growable float32 matrix of passage vectors plus metadata columns (one process-local copy)."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.seq = 0
        self.n = 0
        self._cap = 0
        self.vectors = np.zeros((0, dim), dtype=np.float32)
        self.pids = np.zeros(0, dtype=np.int64)
        self.dkeys = np.zeros(0, dtype=np.int64)
        self.pidx = np.zeros(0, dtype=np.int32)
        self.source = np.zeros(0, dtype=np.int32)
        self.language = np.zeros(0, dtype=np.int32)
        self.kind = np.zeros(0, dtype=np.int32)
        self.published = np.zeros(0, dtype=np.int64)
        self.alive = np.zeros(0, dtype=bool)
        self._live = 0
        self._sources = _Codes()
        self._languages = _Codes()
        self._kinds = _Codes()

    @property
    def live_rows(self) -> int:
        """Number of passages currently searchable."""
        return self._live

    def row_of(self, pid: int) -> int | None:
        """The matrix row of a live or dead passage id, or None if it was never loaded."""
        row = int(np.searchsorted(self.pids[: self.n], pid))
        return row if row < self.n and int(self.pids[row]) == pid else None

    def has(self, pid: int) -> bool:
        """Whether ``pid`` is a live row."""
        row = self.row_of(pid)
        return row is not None and bool(self.alive[row])

    def _grow(self, need: int) -> None:
        if need <= self._cap:
            return
        cap = max(need, self._cap + self._cap // 4, 1024)  # modest growth: the matrix can be GBs
        self.vectors = _resize(self.vectors, (cap, self.dim))  # type: ignore[assignment]
        for name in ("pids", "dkeys", "pidx", "source", "language", "kind", "published", "alive"):
            setattr(self, name, _resize(getattr(self, name), (cap,)))
        self._cap = cap

    def sync(self, store: SqliteStore) -> bool:
        """Apply rows written since the last sync; True when something changed."""
        now = store.seq()
        if now == self.seq:
            return False
        self._grow(self.n + store.count_added(self.seq, now))  # one allocation, not doublings
        self._remove(store.removed_since(self.seq, now))
        for page in store.added_pages(self.seq, now, _CHUNK):
            self._add(page)
        self._finish(now)
        return True

    def apply(self, changes: StoreChanges) -> None:
        """Apply one change set (removals first, then additions)."""
        self._remove(changes.removed_pids)
        added = changes.added
        for start in range(0, len(added), _CHUNK):
            self._add(added[start : start + _CHUNK])
        self._finish(changes.seq)

    def _remove(self, pids: Sequence[int]) -> None:
        for pid in pids:
            row = self.row_of(pid)
            if row is not None and self.alive[row]:
                self.alive[row] = False
                self._live -= 1

    def _add(self, part: Sequence[tuple[Any, ...]]) -> None:
        # pids only grow (SQLite rowids), so the matrix stays sorted by pid and lookups are a
        # binary search instead of a dict of a million ints.
        last = int(self.pids[self.n - 1]) if self.n else -1
        fresh = [r for r in part if r[0] > last]
        if fresh:
            base = self.n
            self._grow(base + len(fresh))
            end = base + len(fresh)
            blob = b"".join(r[3] for r in fresh)
            self.vectors[base:end] = np.frombuffer(blob, dtype=np.float32).reshape(len(fresh), self.dim)
            self.pids[base:end] = [r[0] for r in fresh]
            self.dkeys[base:end] = [r[1] for r in fresh]
            self.pidx[base:end] = [r[2] for r in fresh]
            self.source[base:end] = [self._sources.code(r[4]) for r in fresh]
            self.language[base:end] = [self._languages.code(r[5]) for r in fresh]
            self.kind[base:end] = [self._kinds.code(r[6]) for r in fresh]
            self.published[base:end] = [r[7] for r in fresh]
            self.alive[base:end] = True
            self._live += len(fresh)
            self.n = end

    def _finish(self, seq: int) -> None:
        self.seq = seq
        if self.n > 4096 and self.live_rows < self.n // 2:
            self._compact()

    def _compact(self) -> None:
        keep = np.flatnonzero(self.alive[: self.n])
        for name in ("vectors", "pids", "dkeys", "pidx", "source", "language", "kind", "published", "alive"):
            arr = getattr(self, name)
            setattr(self, name, arr[keep].copy())
        self.n = self._cap = len(keep)
        self._live = self.n
        log.debug("vector matrix compacted to %d rows", self.n)

    def mask(self, filters: SearchFilters | None, dkeys: Sequence[int] | None = None) -> npt.NDArray[np.bool_]:
        """Rows alive and passing ``filters`` (``dkeys``: the resolved ``document_ids`` filter)."""
        m = self.alive[: self.n].copy()
        if filters is None:
            return m
        for values, codes, column in (
            (filters.sources, self._sources, self.source),
            (filters.languages, self._languages, self.language),
            (filters.kinds, self._kinds, self.kind),
        ):
            if values:
                m &= np.isin(column[: self.n], codes.lookup(values))
        if filters.since is not None:
            m &= self.published[: self.n] >= to_micros(filters.since)
        if filters.until is not None:
            m &= self.published[: self.n] < to_micros(filters.until)
        if filters.document_ids:
            m &= np.isin(self.dkeys[: self.n], np.asarray(dkeys or [], dtype=np.int64))
        return m

    def rank(self, query: npt.NDArray[np.float32], mask: npt.NDArray[np.bool_], limit: int) -> VectorRanking:
        """The ``limit`` passages most similar to ``query`` among the ``mask`` rows."""
        if mask.all():
            rows = None
            scores = self.vectors[: self.n] @ query
        else:
            rows = np.flatnonzero(mask)
            scores = self.vectors[rows] @ query
        total = len(scores)
        if total == 0:
            return VectorRanking(np.zeros(0, np.int64), np.zeros(0, np.float32), True)
        top = np.argpartition(-scores, limit - 1)[:limit] if limit < total else np.arange(total)
        top = top[np.lexsort((top, -scores[top]))]
        picked = top if rows is None else rows[top]
        return VectorRanking(self.pids[picked], scores[top].astype(np.float32), limit >= total)

    def cosine(self, query: npt.NDArray[np.float32], pids: Sequence[int]) -> dict[int, float]:
        """Cosine similarity of ``query`` to each known passage."""
        out: dict[int, float] = {}
        for pid in pids:
            row = self.row_of(pid)
            if row is not None:
                out[pid] = float(self.vectors[row] @ query)
        return out


def _resize(arr: npt.NDArray[np.generic], shape: tuple[int, ...]) -> npt.NDArray[np.generic]:
    out = np.zeros(shape, dtype=arr.dtype)
    out[: len(arr)] = arr
    return out
