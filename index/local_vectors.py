"""In-memory passage matrix of the embedded index: exact cosine kNN with filters applied first.

Rows are passages; alongside the matrix live per-passage metadata arrays (document key, passage
index, source, language, kind, published) so a filter is a boolean mask computed before the
matrix product. The matrix is derived from SQLite and kept in sync by applying the rows written
after the last sequence it saw (:meth:`SqliteStore.changes_since`).

Precision (``index.vector_precision``): ``float32`` keeps SQLite's vectors as they are;
``float16`` halves the matrix (1M x 512-d: 1.95 -> 0.98 GiB). SQLite keeps float32 either way,
so switching needs no re-embed. With float16 the scan gives approximate scores; the best
``_RERANK`` x ``limit`` candidates are then re-scored with their exact float32 vectors read from
SQLite, and every score a caller sees (rank, cosine, passage vectors) is exact float32. NumPy
has no fast float16 product (its float16 -> float32 cast runs ~1 ns per element: ~0.6 s per
query at 1M x 512), so the scan uses PyTorch's float16 matrix-vector kernel when torch is
installed and falls back to NumPy in chunks otherwise (correct, slow).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from core.documents import SearchFilters
from core.errors import IndexBackendError
from index.local_store import SqliteStore, StoreChanges, to_micros

__all__ = ["Precision", "VectorMatrix", "VectorRanking", "exact_vectors"]

log = logging.getLogger(__name__)

Precision = Literal["float32", "float16"]
ExactVectors = Callable[[Sequence[int]], npt.NDArray[np.float32]]
"""``pids -> (len(pids), dim)`` float32 vectors from the source of truth (NaN rows if gone)."""

_CHUNK = 8_192
_SCAN_CHUNK = 32_768
"""Rows converted to float32 at a time by the NumPy float16 fallback (64 MiB at 512-d)."""
_RERANK = 4
"""float16: candidates re-scored exactly = ``_RERANK * limit`` (at least ``limit + 32``)."""
_SQL_PARAMS = 900


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
    """Growable matrix of passage vectors plus metadata columns (one process-local copy).

    ``precision="float16"`` needs ``exact`` (the float32 vectors by pid, from SQLite) to re-rank.
    """

    def __init__(self, dim: int, precision: Precision = "float32", exact: ExactVectors | None = None) -> None:
        if precision not in ("float32", "float16"):
            raise IndexBackendError(f"vector precision must be float32 or float16, not {precision!r}")
        if precision == "float16" and exact is None:
            raise IndexBackendError("float16 vectors need an exact float32 source for re-ranking")
        self.dim = dim
        self.precision = precision
        self._exact = exact
        self.seq = 0
        self.n = 0
        self._cap = 0
        self.vectors: npt.NDArray[Any] = np.zeros((0, dim), dtype=np.dtype(precision))
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
        self.vectors = _resize(self.vectors, (cap, self.dim))
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
        """The ``limit`` passages most similar to ``query`` among the ``mask`` rows (exact scores)."""
        rows = None if mask.all() else np.flatnonzero(mask)
        scores = self._scan(query, rows)
        total = len(scores)
        if total == 0:
            return VectorRanking(np.zeros(0, np.int64), np.zeros(0, np.float32), True)
        if self.precision == "float16":
            cand = np.sort(_top(scores, max(limit * _RERANK, limit + 32)))  # row order: exact ties
            picked = cand if rows is None else rows[cand]
            exact = self._exact_rows(picked) @ query
            keep = ~np.isnan(exact)  # a passage deleted by the writer since the last sync
            cand, exact = cand[keep], exact[keep]
            best = _top(exact, limit)
            top, top_scores = cand[best], exact[best]
        else:
            top = _top(scores, limit)
            top_scores = scores[top]
        picked = top if rows is None else rows[top]
        return VectorRanking(self.pids[picked], top_scores.astype(np.float32), limit >= total)

    def _scan(self, query: npt.NDArray[np.float32], rows: npt.NDArray[np.intp] | None) -> npt.NDArray[np.float32]:
        """Scores of every row (``rows=None``) or of ``rows``; approximate for float16."""
        mat = self.vectors[: self.n] if rows is None else self.vectors[rows]
        if self.precision == "float32":
            return mat @ query
        return _half_matvec(mat, query)

    def _exact_rows(self, rows: npt.NDArray[np.intp]) -> npt.NDArray[np.float32]:
        """float32 vectors of matrix ``rows`` (from SQLite when the matrix is float16)."""
        if self.precision == "float32" or self._exact is None:
            return self.vectors[rows].astype(np.float32, copy=True)
        return self._exact(self.pids[rows].tolist())

    def row_vectors(self, rows: npt.NDArray[np.intp]) -> npt.NDArray[np.float32]:
        """Exact float32 vectors of matrix ``rows`` (a copy); a row gone from SQLite is NaN."""
        if len(rows) == 0:
            return np.zeros((0, self.dim), np.float32)
        return self._exact_rows(rows)

    def cosine(self, query: npt.NDArray[np.float32], pids: Sequence[int]) -> dict[int, float]:
        """Exact cosine similarity of ``query`` to each known passage."""
        known = [(pid, row) for pid in pids if (row := self.row_of(pid)) is not None]
        if not known:
            return {}
        scores = self._exact_rows(np.asarray([r for _, r in known], dtype=np.intp)) @ query
        return {pid: float(s) for (pid, _), s in zip(known, scores, strict=True) if not np.isnan(s)}


def _top(scores: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.intp]:
    """Indexes of the ``k`` best scores, best first; ties (also at the cut) go to the lower index."""
    if k < len(scores):
        kth = scores[np.argpartition(-scores, k - 1)[k - 1]]
        above = np.flatnonzero(scores > kth)
        idx = np.concatenate([above, np.flatnonzero(scores == kth)[: k - len(above)]])
    else:
        idx = np.arange(len(scores))
    return idx[np.lexsort((idx, -scores[idx]))]


def exact_vectors(store: SqliteStore, dim: int, pids: Sequence[int]) -> npt.NDArray[np.float32]:
    """float32 vectors of ``pids`` read from SQLite, in order; NaN rows for pids no longer there."""
    out = np.full((len(pids), dim), np.nan, dtype=np.float32)
    where: dict[int, int] = {pid: i for i, pid in enumerate(pids)}
    for start in range(0, len(pids), _SQL_PARAMS):
        part = pids[start : start + _SQL_PARAMS]
        q = f"SELECT pid, vector FROM passages WHERE pid IN ({','.join('?' * len(part))})"
        for pid, blob in store.conn.execute(q, list(part)):
            out[where[pid]] = np.frombuffer(blob, dtype=np.float32)
    return out


_torch: Any = None


def _half_matvec(mat: npt.NDArray[np.float16], query: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """``mat @ query`` for a float16 matrix without a float32 copy of it (approximate, ~1e-4)."""
    global _torch
    if len(mat) == 0:
        return np.zeros(0, np.float32)
    if _torch is None:
        try:
            _torch = importlib.import_module("torch")
        except ImportError:
            _torch = False
            log.warning("float16 vectors without torch: NumPy fallback (slow; install torch)")
    if _torch:
        t = _torch.from_numpy(np.ascontiguousarray(mat))
        q = _torch.from_numpy(query.astype(np.float16))
        return np.asarray(_torch.mv(t, q).numpy(), dtype=np.float32)
    out = np.empty(len(mat), dtype=np.float32)
    buf = np.empty((min(_SCAN_CHUNK, len(mat)), mat.shape[1]), dtype=np.float32)
    for start in range(0, len(mat), _SCAN_CHUNK):
        end = min(len(mat), start + _SCAN_CHUNK)
        part = buf[: end - start]
        np.copyto(part, mat[start:end])
        np.matmul(part, query, out=out[start:end])
    return out


def _resize(arr: npt.NDArray[np.generic], shape: tuple[int, ...]) -> npt.NDArray[np.generic]:
    out = np.zeros(shape, dtype=arr.dtype)
    out[: len(arr)] = arr
    return out
