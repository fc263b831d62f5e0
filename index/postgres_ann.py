"""The approximate-nearest-neighbour index of a PostgreSQL table set: IVFFlat trained as it grows.

HNSW in pgvector is maintained on every insert; measured on this 2-core machine that caps
upserts at about 480 passages/s (512-d), a quarter of the ingest target. IVFFlat inserts cost
one pass over the list centroids (about 11,000 passages/s measured), but its lists are trained
on the rows present when the index is built. So:

* below ``ann_min_rows`` passages there is no ANN index: semantic scans are exact;
* the writer whose upsert takes the set past ``ann_min_rows``, or past 4x the rows the current
  index was trained on, builds a new one with ``CREATE INDEX CONCURRENTLY`` (writers and readers
  go on meanwhile), records it in ``<prefix>_meta`` (key ``ann:<set>``) and drops the old one.
  A session advisory lock makes that one writer per set; a builder killed mid-way leaves an
  invalid index, which the next build drops. Retraining at 4x growth keeps the total build work
  within 4/3 of the last build.
* ``lists`` follows pgvector's guidance (rows/1000 up to 1M rows, sqrt(rows) above); a query
  scans ``probe_fraction`` of them, with ``ivfflat.iterative_scan`` so a filter cannot starve it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Json

__all__ = ["AnnState", "build_if_due", "lists_for", "probes_for", "read_state"]

log = logging.getLogger(__name__)

GROWTH = 4
"""Retrain once the set holds this many times the rows the current index was trained on."""


@dataclass(frozen=True)
class AnnState:
    """The trained IVFFlat index of one table set."""

    index: str
    rows: int
    lists: int
    generation: int

    def as_dict(self) -> dict[str, Any]:
        """The meta-table value."""
        return {
            "kind": "ivfflat",
            "index": self.index,
            "rows": self.rows,
            "lists": self.lists,
            "generation": self.generation,
        }


def lists_for(rows: int) -> int:
    """pgvector's suggested list count: rows/1000 up to 1M rows, sqrt(rows) above (at least 1)."""
    return max(1, rows // 1000 if rows <= 1_000_000 else math.isqrt(rows))


def probes_for(lists: int, fraction: float) -> int:
    """Lists a query scans: ``fraction`` of them, at least one."""
    return min(lists, max(1, math.ceil(lists * fraction)))


def read_state(conn: psycopg.Connection[Any], prefix: str, table_set: str) -> AnnState | None:
    """The set's trained index, or None (exact scans)."""
    row = conn.execute(f"SELECT value FROM {prefix}_meta WHERE key = %s", (f"ann:{table_set}",)).fetchone()
    if row is None:
        return None
    v = row[0]
    return AnnState(index=str(v["index"]), rows=int(v["rows"]), lists=int(v["lists"]), generation=int(v["generation"]))


def _due(rows: int, state: AnnState | None, min_rows: int) -> bool:
    return rows >= min_rows and (state is None or rows >= GROWTH * max(state.rows, 1))


def build_if_due(url: str, prefix: str, table_set: str, min_rows: int) -> AnnState | None:
    """Train a new IVFFlat index if the set has grown enough (see the module docstring); the new
    state, or None when nothing was built (not due, or another writer is building)."""
    vectors = f"{table_set}_vectors"  # the ANN index lives on the search copy of the vectors
    with psycopg.connect(url, autocommit=True, options="-c statement_timeout=0") as conn:
        bound = conn.execute(f"SELECT coalesce(max(pid), 0) FROM {vectors}").fetchone()
        state = read_state(conn, prefix, table_set)
        if bound is None or not _due(int(bound[0]), state, min_rows):  # max(pid) bounds the row count
            return None
        key = f"narrawatch:ann:{table_set}"
        got = conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (key,)).fetchone()
        if not got or not got[0]:
            return None
        try:
            state = read_state(conn, prefix, table_set)
            counted = conn.execute(f"SELECT count(*) FROM {vectors}").fetchone()
            rows = int(counted[0]) if counted else 0
            if not _due(rows, state, min_rows):
                return None
            invalid = conn.execute(
                "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                " WHERE i.indrelid = %s::regclass AND NOT i.indisvalid",
                (vectors,),
            ).fetchall()
            for (name,) in invalid:  # a build killed mid-way
                conn.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')
            new = AnnState(
                index=f"{vectors}_ivf{(state.generation if state else 0) + 1}",
                rows=rows,
                lists=lists_for(rows),
                generation=(state.generation if state else 0) + 1,
            )
            # Fresh planner statistics too: after a bulk load autovacuum has not analysed yet, and
            # without them the planner scans instead of using the GIN and filter indexes.
            conn.execute(f"ANALYZE {table_set}_documents, {table_set}_passages, {vectors}")
            conn.execute("SET maintenance_work_mem = '512MB'")
            conn.execute(
                f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {new.index} ON {vectors}"
                f" USING ivfflat (embedding halfvec_cosine_ops) WITH (lists = {new.lists})"
            )
            conn.execute(
                f"INSERT INTO {prefix}_meta (key, value) VALUES (%s, %s::jsonb)"
                " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                (f"ann:{table_set}", Json(new.as_dict())),
            )
            if state is not None and state.index != new.index:
                conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {state.index}")
            log.info("postgresql index %s: IVFFlat trained on %d passages (%d lists)", table_set, rows, new.lists)
            return new
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))
