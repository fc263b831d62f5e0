"""The PostgreSQL index's IVFFlat index: trained once the set is big enough, retrained as it grows,
used by semantic queries, and a killed build's leftover cleared (see :mod:`index.postgres_ann`).

Real documents (the contract corpus), a real PostgreSQL with pgvector (:mod:`tests.support.pg`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import psycopg
import pytest

from core.documents import SearchFilters, SearchQuery
from index.postgres import PostgresIndex
from index.postgres_ann import lists_for, probes_for, read_state
from tests.contract import embed, load_corpus
from tests.contract.pg_writer import EMB
from tests.support.pg import unique_prefix

pytestmark = pytest.mark.postgresql

DOCS = load_corpus()


@pytest.fixture
def index(pg_url: str) -> Iterator[PostgresIndex]:
    """A fresh index that trains IVFFlat from 10 passages on, and never scans exactly by size."""
    idx = PostgresIndex(pg_url, EMB.space, table_prefix=unique_prefix(), ann_min_rows=10, exact_below=0)
    yield idx
    idx.drop()
    idx.close()


def _passages(idx: PostgresIndex) -> int:
    return idx.stats().passages


def _indexes(idx: PostgresIndex) -> dict[str, str]:
    with idx.connection() as conn:
        rows = conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", (idx._v,)).fetchall()
    return {str(n): str(d) for n, d in rows}


def _plan(idx: PostgresIndex, filters: SearchFilters | None = None) -> str:
    """The plan of the semantic statement the index runs, with sequential scans discouraged (on a
    table this small the planner rightly prefers one): shows the IVFFlat index can answer it."""
    from index import postgres_sql as sql
    from index.postgres_search import _SEMANTIC_SQL  # the statement semantic_ranking executes

    where, params = sql.filter_sql(filters, "v")
    lit = sql.vector_literal(EMB.embed_query("санкции против России"))
    with idx.connection() as conn, conn.transaction():
        state = read_state(conn, idx.prefix, idx.table_set)
        assert state is not None
        conn.execute("SET LOCAL enable_seqscan = off")
        conn.execute(f"SET LOCAL ivfflat.probes = {probes_for(state.lists, idx.probe_fraction)}")
        order = f"v.embedding <=> %s::halfvec({EMB.space.dim})"
        q = _SEMANTIC_SQL.format(v=idx._v, where=where, order=order)
        rows = conn.execute("EXPLAIN " + q, [*params, lit, 10]).fetchall()
    return "\n".join(str(r[0]) for r in rows)


def test_small_set_has_no_ann_index_and_searches_exactly(pg_url: str) -> None:
    idx = PostgresIndex(pg_url, EMB.space, table_prefix=unique_prefix(), ann_min_rows=10_000)
    try:
        idx.upsert(embed(DOCS[:20], EMB))
        with idx.connection() as conn:
            assert read_state(conn, idx.prefix, idx.table_set) is None
        assert not [n for n in _indexes(idx) if "_ivf" in n]
        vec = EMB.embed_query(DOCS[3].passages[0].text)
        hits = idx.search(SearchQuery(vector=vec, mode="semantic", k=5, group_by_document=False))
        pv = idx.passage_vectors()
        best = float(np.max(pv.vectors @ vec))
        assert hits and hits[0].semantic_score == pytest.approx(best, abs=1e-5)
    finally:
        idx.drop()
        idx.close()


def test_trained_when_due_retrained_at_growth_and_used_by_queries(index: PostgresIndex) -> None:
    index.upsert(embed(DOCS[:2], EMB))
    assert _passages(index) < 10
    with index.connection() as conn:
        assert read_state(conn, index.prefix, index.table_set) is None  # not due yet
    index.upsert(embed(DOCS[2:12], EMB))  # now 10 or more passages
    with index.connection() as conn:
        state = read_state(conn, index.prefix, index.table_set)
    assert state is not None and state.generation == 1
    assert state.rows == _passages(index) and state.lists == lists_for(state.rows)
    assert "ivfflat" in _indexes(index)[state.index]
    assert state.index in _plan(index)  # the semantic statement can go through it

    # Grow past 4x the trained rows: a new index replaces the old one.
    trained = state.rows
    rest = embed(DOCS[12:], EMB)
    assert sum(len(i.document.passages) for i in rest) + trained >= 4 * trained, "corpus too small for the test"
    index.upsert(rest)
    with index.connection() as conn:
        again = read_state(conn, index.prefix, index.table_set)
    assert again is not None and again.generation == 2 and again.rows == _passages(index)
    names = _indexes(index)
    assert again.index in names and state.index not in names

    # Answers through the index are the exact cosines of real passages, best first.
    vec = EMB.embed_query(DOCS[20].passages[0].text)
    hits = index.search(SearchQuery(vector=vec, mode="semantic", k=10, group_by_document=False))
    scores = [h.semantic_score or 0.0 for h in hits]
    assert scores == sorted(scores, reverse=True) and len(hits) == 10
    assert hits[0].document_id == DOCS[20].id


def test_a_killed_build_leftover_is_dropped_by_the_next_build(index: PostgresIndex, pg_url: str) -> None:
    index.upsert(embed(DOCS[:12], EMB))
    # An invalid index, as CREATE INDEX CONCURRENTLY leaves behind when it dies: one that fails.
    with psycopg.connect(pg_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(f"CREATE UNIQUE INDEX CONCURRENTLY {index._v}_broken ON {index._v} (source_id)")
        assert f"{index._v}_broken" in _indexes(index)
    index.upsert(embed(DOCS[12:], EMB))  # grows past 4x: a build runs
    assert f"{index._v}_broken" not in _indexes(index)


def test_filtered_query_through_the_index_is_not_starved(index: PostgresIndex) -> None:
    index.upsert(embed(DOCS, EMB))
    source = DOCS[0].source_id
    expected = [d for d in DOCS if d.source_id == source]
    vec = EMB.embed_query(DOCS[0].passages[0].text)
    hits = index.search(SearchQuery(vector=vec, mode="semantic", k=10, filters=SearchFilters(sources=(source,))))
    assert {h.source_id for h in hits} == {source}
    assert len(hits) == min(10, len(expected))
