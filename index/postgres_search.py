"""Search on the PostgreSQL index: tsvector keyword ranking, pgvector kNN, RRF fusion, grouping.

Keyword: each passage's ``tsvector`` was built with its language's configuration, so the query
is parsed once per configuration and a passage matches the query parsed like it was
(``(config = 'russian' AND tsv @@ q_ru) OR ...``: one GIN bitmap per configuration). Any query
word may match (OR, like BM25 elsewhere); ranked by ``ts_rank_cd``.

Semantic: ``ORDER BY embedding <=> q LIMIT n`` over the half-precision search copies, re-ranked
by the exact float4 cosine; when the filtered passages are few (at most
``exact_below``) or no ANN index is trained yet, the scan is exact; otherwise the IVFFlat index
answers (``ivfflat.probes`` from ``probe_fraction``, ``iterative_scan = relaxed_order``, re-sorted
here) or the HNSW one (``hnsw.ef_search``, ``iterative_scan = relaxed_order``), so filters do not
starve the result.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg

from core.documents import SearchHit, SearchQuery, Vector
from core.query import And, Node, Not, Phrase, Term
from index import postgres_sql as sql
from index.base import above_floor, fuse_passages
from index.postgres_ann import probes_for, read_state

if TYPE_CHECKING:
    from index.postgres import PostgresIndex

__all__ = ["expr_tsquery", "run_search"]

_CONFIGS = (*dict.fromkeys(sql.TEXT_CONFIGS.values()), "simple")


def _tsquery_text(words: list[str]) -> str:
    # Words are \w+ runs (letters, digits, underscore): safe inside quotes in tsquery syntax.
    return " | ".join(f"'{w}'" for w in words)


def expr_tsquery(node: Node) -> str:
    """A :mod:`core.query` expression as ``to_tsquery`` text: ``'w'``, phrases ``('a' <-> 'b')``,
    ``&``, ``|``, ``!`` (words are folded ``\\w+`` runs: safe inside quotes); each passage's
    configuration then stems the words as its ``tsvector`` was built."""
    if isinstance(node, Term):
        return f"'{node.word}'"
    if isinstance(node, Phrase):
        return "(" + " <-> ".join(f"'{w}'" for w in node.words) + ")"
    if isinstance(node, Not):
        return f"!{expr_tsquery(node.child)}"
    joiner = " & " if isinstance(node, And) else " | "
    return "(" + joiner.join(expr_tsquery(c) for c in node.children) + ")"


KEYWORD_CANDIDATES = 2_000
"""Matching passages ranked per keyword query at most. ``ts_rank_cd`` reads each candidate's
``tsvector``, so ranking every match of a common word costs seconds at 1M passages; the
candidates are instead the newest matches, gathered window by window back in time (see
:func:`keyword_ranking`). A query with fewer matches is ranked exactly."""

KEYWORD_WINDOWS = (timedelta(days=7), timedelta(days=30), timedelta(days=120), timedelta(days=365))
"""How far back from the newest passage each successive candidate window reaches (the last one
is unbounded)."""


def _newest(index: PostgresIndex, conn: psycopg.Connection[Any], query: SearchQuery) -> datetime | None:
    """The newest ``published`` the keyword side could match (one index probe)."""
    where, params = sql.filter_sql(query.filters, "p")
    row = conn.execute(f"SELECT max(p.published) FROM {index._p} p WHERE {where}", params).fetchone()
    return row[0] if row else None


def keyword_ranking(
    index: PostgresIndex, conn: psycopg.Connection[Any], query: SearchQuery, window: int
) -> tuple[list[tuple[int, float]], bool]:
    """``(pid, ts_rank_cd)`` best first, at most ``window``; and whether that is every candidate.

    Candidates are gathered newest first in time windows (the last week before the newest
    passage in the filters, then 30 days, 120, a year, all), each a bitmap AND of the GIN index
    with the ``published`` (or ``source_id, published``) index, until
    :data:`KEYWORD_CANDIDATES` are found: a common word costs one bounded window, a rare one an
    exact ranking of all its matches. Ranks are then compared across all candidates."""
    if query.expr is not None:
        text = expr_tsquery(query.expr)
    else:
        words = sql.query_words(query.text)
        if not words:
            return [], True
        text = _tsquery_text(words)
    newest = _newest(index, conn, query)
    if newest is None:
        return [], True
    where, params = sql.filter_sql(query.filters, "p")
    match = " OR ".join(f"(p.config = '{c}'::regconfig AND p.tsv @@ to_tsquery('{c}', %s))" for c in _CONFIGS)
    rank = " ".join(f"WHEN '{c}'::regconfig THEN to_tsquery('{c}', %s)" for c in _CONFIGS)
    q = (
        f"SELECT p.pid, ts_rank_cd(p.tsv, CASE p.config {rank} END) AS r"
        f" FROM {index._p} p"
        f" WHERE ({match}) AND {where} AND p.published >= %s AND p.published < %s LIMIT %s"
    )
    base = [text] * len(_CONFIGS) + [text] * len(_CONFIGS) + params
    found: list[tuple[int, float]] = []
    hi = newest + timedelta(microseconds=1)
    bounds = [newest - w for w in KEYWORD_WINDOWS] + [datetime.min.replace(tzinfo=UTC)]
    since = query.filters.since
    for lo in bounds:
        if lo >= hi:
            continue
        if since is not None and hi <= since:
            break
        need = KEYWORD_CANDIDATES - len(found)
        found.extend((int(pid), float(r)) for pid, r in conn.execute(q, [*base, lo, hi, need]))
        hi = lo
        if len(found) >= KEYWORD_CANDIDATES:
            break
    found.sort(key=lambda t: (-t[1], t[0]))
    return found[:window], len(found) <= window


_SEMANTIC_SQL = "SELECT v.pid FROM {v} v WHERE {where} ORDER BY {order} LIMIT %s"
"""The candidate statement over the half-precision search copies (parameters: filter values,
query vector, limit)."""

OVERFETCH = 2
"""Candidates fetched by half-precision distance per result kept after the exact re-rank."""


def semantic_ranking(
    index: PostgresIndex, conn: psycopg.Connection[Any], query: SearchQuery, vector: Vector, window: int
) -> tuple[list[tuple[int, float]], bool]:
    """``(pid, cosine)`` nearest first, at most ``window``; and whether the ranking is exhausted.

    Candidates come from ``<set>_vectors`` (``halfvec``: the ANN index, or an exact scan of the
    filtered rows), ``OVERFETCH`` times the window; they are re-ranked by the exact cosine of the
    stored float4 vectors, so half precision only decides which near-ties enter the window."""
    where, params = sql.filter_sql(query.filters, "v")
    dim = index.embedding_space.dim
    lit = sql.vector_literal(vector)
    count = f"SELECT count(*) FROM (SELECT 1 FROM {index._v} v WHERE {where} LIMIT %s) t"
    row = conn.execute(count, [*params, index.exact_below + 1]).fetchone()
    exact = row is not None and int(row[0]) <= index.exact_below
    if index.ann == "ivfflat" and not exact:
        state = read_state(conn, index.prefix, index.table_set)
        exact = state is None  # not trained yet: the set is small
        if state is not None:
            conn.execute(f"SET LOCAL ivfflat.probes = {probes_for(state.lists, index.probe_fraction)}")
            conn.execute("SET LOCAL ivfflat.iterative_scan = relaxed_order")
            conn.execute(f"SET LOCAL ivfflat.max_probes = {state.lists}")
    elif not exact:
        conn.execute(f"SET LOCAL hnsw.ef_search = {int(min(max(index.ef_search, window * OVERFETCH), 1000))}")
        conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
    distance = f"v.embedding <=> %s::halfvec({dim})"
    # "+ 0" keeps the planner off the ANN index: an exact, filtered scan.
    order = f"({distance}) + 0, v.pid" if exact else distance
    fetch = window * OVERFETCH
    q = _SEMANTIC_SQL.format(v=index._v, where=where, order=order)
    pids = [int(r[0]) for r in conn.execute(q, [*params, lit, fetch])]
    if not pids:
        return [], True
    scored = conn.execute(
        f"SELECT pid, 1 - (embedding <=> %s::vector) FROM {index._p} WHERE pid = ANY(%s)", (lit, pids)
    ).fetchall()
    ranked = sorted(((int(pid), float(cos)) for pid, cos in scored), key=lambda r: (-r[1], r[0]))
    return ranked[:window], len(pids) < fetch


def run_search(
    index: PostgresIndex, conn: psycopg.Connection[Any], query: SearchQuery, vector: Vector | None, use_text: bool
) -> list[SearchHit]:
    """The hits of ``query`` (inside the caller's transaction); mirrors the embedded backend."""
    window = max(query.k * 5, 50)
    while True:
        keyword, text_done = keyword_ranking(index, conn, query, window) if use_text else ([], True)
        semantic: list[tuple[int, float]] = []
        vec_done = True
        if vector is not None:
            semantic, vec_done = semantic_ranking(index, conn, query, vector, window)
            if query.min_similarity is not None:
                kept = above_floor(semantic, query.min_similarity)
                vec_done = vec_done or len(kept) < len(semantic)
                semantic = kept
        hits = _assemble(index, conn, query, vector, keyword, semantic)
        if len(hits) >= query.k or (text_done and vec_done) or not query.group_by_document:
            return hits[: query.k]
        window *= 4


def _assemble(
    index: PostgresIndex,
    conn: psycopg.Connection[Any],
    query: SearchQuery,
    vector: Vector | None,
    keyword: list[tuple[int, float]],
    semantic: list[tuple[int, float]],
) -> list[SearchHit]:
    fused = fuse_passages(query.mode, keyword, semantic)
    pids = [p for p, _ in fused]
    cols = "p.pid, p.doc_id, p.idx, p.text, d.url, d.title, d.source_id, d.language, d.published"
    cos = ", 1 - (p.embedding <=> %s::vector)" if vector is not None else ", NULL"
    args: list[Any] = ([sql.vector_literal(vector)] if vector is not None else []) + [pids]
    q = f"SELECT {cols}{cos} FROM {index._p} p JOIN {index._d} d ON d.id = p.doc_id WHERE p.pid = ANY(%s)"
    rows = {int(r[0]): r for r in conn.execute(q, args).fetchall()}

    def key(pid: int) -> Any:
        return rows[pid][1] if query.group_by_document else pid

    kw_rank = _ranks([key(p) for p, _ in keyword if p in rows])
    sem_rank = _ranks([key(p) for p, _ in semantic if p in rows])
    hits: list[SearchHit] = []
    seen: set[Any] = set()
    for pid, score in fused:
        row = rows.get(pid)
        if row is None:
            continue
        k = key(pid)
        if k in seen:
            continue
        seen.add(k)
        hits.append(
            SearchHit(
                document_id=row[1],
                passage_index=int(row[2]),
                score=float(score),
                url=row[4],
                title=row[5],
                source_id=row[6],
                language=row[7],
                published=row[8],
                snippet=row[3],
                keyword_rank=kw_rank.get(k),
                semantic_rank=sem_rank.get(k),
                semantic_score=float(row[9]) if row[9] is not None else None,
            )
        )
        if len(hits) >= query.k:
            break
    return hits


def _ranks(keys: list[Any]) -> dict[Any, int]:
    out: dict[Any, int] = {}
    for k in keys:
        if k not in out:
            out[k] = len(out) + 1
    return out
