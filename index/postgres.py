"""The PostgreSQL DocumentIndex: documents and passages in tables, pgvector HNSW, tsvector full text.

Several processes on several machines may write and read one index at once:

* ``upsert`` writes a batch in one transaction. It first takes a transaction-scoped advisory
  lock per document id (``pg_advisory_xact_lock(hashtextextended(set || id, 0))``, ids sorted so
  two writers always lock in the same order and cannot deadlock), then compares content hashes
  and replaces the document row and its passages. Two writers of the same id are serialised:
  the second sees the first's committed row, so there is neither a duplicate nor a half-merged
  document, and the last commit wins (no lost update of a newer hash by an older snapshot).
* A commit is durable before ``upsert`` returns (``synchronous_commit`` on, the default); a writer
  killed mid-batch leaves its transaction rolled back: each document is fully old or fully new.
* Readers see committed snapshots; a search runs in one ``REPEATABLE READ`` transaction.

See :mod:`index.postgres_sql` for the schema and :mod:`index.postgres_lifecycle` for create,
status and re-embed into a new table set.
"""

from __future__ import annotations

import json
import logging
import weakref
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg.types.json import Json

from core.documents import (
    Document,
    EmbeddingSpace,
    IndexedDocument,
    IndexStats,
    Passage,
    SearchFilters,
    SearchHit,
    SearchQuery,
    UpsertResult,
    Vector,
)
from core.errors import EmbeddingSpaceMismatch, IndexBackendError, IndexNotCreated
from core.serialize import optional_fields_json
from index import postgres_sql as sql
from index.base import CountBy, IndexLifecycle, PassageVectors, ReachUpdate, reach_props
from index.postgres_ann import build_if_due
from index.postgres_conn import connect_pool, read_active, settings_url
from index.postgres_search import run_search

if TYPE_CHECKING:
    from core.settings import Config, PostgresSettings

__all__ = ["PostgresIndex"]

log = logging.getLogger(__name__)

EXACT_BELOW = 20_000
"""Semantic search scans exactly when the filtered passages number at most this many (HNSW
post-filters, so a narrow filter would lose recall); above it the HNSW index answers."""

_COUNT_EXPR = {
    "source": "d.source_id",
    "language": "d.language",
    "kind": "d.kind",
    "day": "to_char(d.published AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
}


class PostgresIndex:
    """DocumentIndex in PostgreSQL; see the module docstring."""

    def __init__(
        self,
        url: str,
        space: EmbeddingSpace,
        *,
        table_prefix: str = "narrawatch",
        read_only: bool = False,
        pool_size: int = 4,
        statement_timeout: timedelta = timedelta(seconds=30),
        ann: str = "ivfflat",
        ann_min_rows: int = EXACT_BELOW,
        probe_fraction: float = 0.1,
        ef_search: int = 100,
        exact_below: int = EXACT_BELOW,
        table_set: str | None = None,
    ) -> None:
        """Bind to the active table set of ``table_prefix`` (created for ``space`` unless
        ``read_only``); ``table_set``: a named set instead (a re-embed's target, never activated)."""
        self.prefix = table_prefix
        self.read_only = read_only
        self.ann = ann
        self.ann_min_rows = ann_min_rows
        self.probe_fraction = probe_fraction
        self.ef_search = ef_search
        self.exact_below = exact_below
        self._space = space
        self._url = url
        self._typed: weakref.WeakSet[psycopg.Connection[Any]] = weakref.WeakSet()
        self._pool = connect_pool(url, size=pool_size, statement_timeout=statement_timeout, read_only=read_only)
        try:
            self.table_set = table_set or self._bind(space)
            if table_set is not None and not read_only:
                with self._pool.connection() as conn:
                    for stmt in sql.create_set_sql(table_set, space.dim, ann):
                        conn.execute(stmt)
        except BaseException:
            self._pool.close()
            raise
        self._d = f"{self.table_set}_documents"
        self._p = f"{self.table_set}_passages"
        self._v = f"{self.table_set}_vectors"

    @classmethod
    def open(cls, config: Config, space: EmbeddingSpace, *, read_only: bool = False) -> PostgresIndex:
        """The index named by ``index.postgresql`` (URL from the ``url_env`` variable)."""
        return cls.from_settings(settings_url(config), config.service.index.postgresql, space, read_only=read_only)

    @classmethod
    def from_settings(cls, url: str, pg: PostgresSettings, space: EmbeddingSpace, **kw: Any) -> PostgresIndex:
        """The index at ``url`` tuned by ``pg`` (``kw``: ``read_only``, ``table_set``)."""
        return cls(
            url,
            space,
            table_prefix=pg.table_prefix,
            pool_size=pg.pool_size,
            statement_timeout=pg.statement_timeout,
            ann=pg.ann,
            ann_min_rows=pg.ann_min_rows,
            probe_fraction=pg.probe_fraction,
            ef_search=pg.ef_search,
            **kw,
        )

    @classmethod
    def lifecycle(cls, config: Config) -> IndexLifecycle:
        """See :class:`~index.base.IndexBackend`: :class:`~index.postgres_lifecycle.PostgresLifecycle`."""
        # postgres_lifecycle builds on this class (a re-embed opens two of them).
        from index.postgres_lifecycle import PostgresLifecycle

        return PostgresLifecycle(config)

    def _bind(self, space: EmbeddingSpace) -> str:
        meta = f"{self.prefix}_meta"
        with self._pool.connection() as conn, conn.transaction():
            active = read_active(conn, self.prefix)
            if active is None:
                if self.read_only:
                    raise IndexNotCreated(f"no PostgreSQL index under prefix {self.prefix!r} (run an ingest first)")
                # One creator at a time per database (CREATE EXTENSION and CREATE TABLE race otherwise);
                # the loser re-reads the winner's meta row once the lock is granted.
                conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('narrawatch:schema', 0))")
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                conn.execute(sql.meta_sql(self.prefix))
                active = read_active(conn, self.prefix)
                if active is None:
                    name = sql.set_name(self.prefix, space)
                    for stmt in sql.create_set_sql(name, space.dim, self.ann):
                        conn.execute(stmt)
                    value: dict[str, Any] = {"set": name, "space": space.to_dict(), "generation": 0}
                    conn.execute(f"INSERT INTO {meta} (key, value) VALUES ('active', %s::jsonb)", (Json(value),))
                    active = value
            stored = EmbeddingSpace.from_dict(active["space"])
            if stored.key != space.key:
                raise EmbeddingSpaceMismatch(
                    f"PostgreSQL index {self.prefix!r} holds vectors of {stored.key}; refusing {space.key}"
                    " (re-embed into a new table set to change model)"
                )
            return str(active["set"])

    # -- protocol -----------------------------------------------------------------------------

    @property
    def embedding_space(self) -> EmbeddingSpace:
        """See :class:`~index.base.DocumentIndex`."""
        return self._space

    def upsert(self, docs: Sequence[IndexedDocument]) -> UpsertResult:
        """See :class:`~index.base.DocumentIndex`; one transaction per call (see the module docstring)."""
        if self.read_only:
            raise IndexBackendError("index opened read_only")
        latest = list({d.document.id: d for d in docs}.values())
        for item in latest:
            self._check_dim(item.vectors.shape[1] if item.vectors.ndim == 2 else -1, item.document.id)
        rejected = [i.document.id for i in latest if _has_nul(i.document)]
        for doc_id in rejected:
            log.warning("postgresql index rejected %s: NUL character (PostgreSQL text cannot hold it)", doc_id)
        refused = set(rejected)
        items = [i for i in latest if i.document.id not in refused]
        new: list[str] = []
        updated: list[str] = []
        unchanged: list[str] = []
        if not items:
            return UpsertResult(rejected=tuple(rejected))
        ids = [i.document.id for i in items]
        with self._pool.connection() as conn, conn.transaction():
            conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s || t.id, 0))"
                " FROM unnest(%s::text[]) WITH ORDINALITY AS t(id, n) ORDER BY t.n",
                (self.table_set + ":", sorted(ids)),
            )
            stored: dict[str, str] = dict(
                conn.execute(f"SELECT id, content_hash FROM {self._d} WHERE id = ANY(%s)", (ids,)).fetchall()
            )
            changed = []
            for item in items:
                doc = item.document
                if stored.get(doc.id) == doc.content_hash:
                    unchanged.append(doc.id)
                    continue
                (updated if doc.id in stored else new).append(doc.id)
                changed.append(item)
            if changed:
                self._write(conn, changed)
        if (new or updated) and self.ann == "ivfflat":
            build_if_due(self._url, self.prefix, self.table_set, self.ann_min_rows)
        return UpsertResult(
            new=tuple(new), updated=tuple(updated), unchanged=tuple(unchanged), rejected=tuple(rejected)
        )

    def _write(self, conn: psycopg.Connection[Any], items: list[IndexedDocument]) -> None:
        """Replace ``items`` (documents and passages): binary COPY into session staging tables,
        then one ``INSERT ... SELECT`` each, inside the caller's transaction."""
        if conn not in self._typed:
            register_vector(conn)  # pgvector's binary dumper: vectors travel as float32, not text
            self._typed.add(conn)
        for stmt in sql.staging_sql(self.table_set, self._space.dim):  # rolled back with a failed batch
            conn.execute(stmt)
        sd, sp = f"{self.table_set}_stage_d", f"{self.table_set}_stage_p"
        with conn.cursor() as cur:
            cur.execute(f"DELETE FROM {self._p} WHERE doc_id = ANY(%s)", ([i.document.id for i in items],))
            with cur.copy(f"COPY {sd} FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(sql.STAGE_D_TYPES)
                for d in (i.document for i in items):
                    copy.write_row(
                        (
                            d.id,
                            d.source_id,
                            d.kind,
                            d.language,
                            d.published,
                            d.fetched,
                            d.content_hash,
                            d.url,
                            d.title,
                            d.text,
                            optional_fields_json(d),
                        )
                    )
            with cur.copy(f"COPY {sp} FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(sql.STAGE_P_TYPES)
                for item in items:
                    doc = item.document
                    cfg = sql.text_config(doc.language)
                    vectors = np.asarray(item.vectors, dtype=np.float32)
                    for n, p in enumerate(doc.passages):
                        copy.write_row(
                            (
                                doc.id,
                                p.index,
                                p.start,
                                doc.source_id,
                                doc.kind,
                                doc.language,
                                doc.published,
                                p.text,
                                cfg,
                                sql.fold(p.text),
                                vectors[n],
                            )
                        )
            cur.execute(
                f"INSERT INTO {self._d} (id, source_id, kind, language, published, fetched, content_hash, url,"
                " title, body, props) SELECT id, source_id, kind, language, published, fetched, content_hash,"
                f" url, title, body, props::jsonb FROM {sd}"
                " ON CONFLICT (id) DO UPDATE SET source_id = EXCLUDED.source_id, kind = EXCLUDED.kind,"
                " language = EXCLUDED.language, published = EXCLUDED.published, fetched = EXCLUDED.fetched,"
                " content_hash = EXCLUDED.content_hash, url = EXCLUDED.url, title = EXCLUDED.title,"
                " body = EXCLUDED.body, props = EXCLUDED.props, updated_at = now()"
            )
            cur.execute(
                f"WITH ins AS (INSERT INTO {self._p} (doc_id, idx, start, source_id, kind, language, published,"
                " text, config, tsv, embedding) SELECT doc_id, idx, start, source_id, kind, language, published,"
                f" text, config::regconfig, to_tsvector(config::regconfig, folded), embedding FROM {sp}"
                " RETURNING pid, doc_id, source_id, kind, language, published, embedding)"
                f" INSERT INTO {self._v} (pid, doc_id, source_id, kind, language, published, embedding)"
                f" SELECT pid, doc_id, source_id, kind, language, published, embedding::halfvec({self._space.dim})"
                " FROM ins"
            )

    def get(self, doc_id: str) -> Document | None:
        """See :class:`~index.base.DocumentIndex`."""
        with self._pool.connection() as conn, conn.transaction():
            docs = self._documents(conn, "d.id = %s", [doc_id], "")
        return docs[0] if docs else None

    def content_hashes(self, doc_ids: Sequence[str]) -> dict[str, str]:
        """See :class:`~index.base.DocumentIndex`."""
        with self._pool.connection() as conn:
            q = f"SELECT id, content_hash FROM {self._d} WHERE id = ANY(%s)"
            return dict(conn.execute(q, (list(doc_ids),)).fetchall())

    def search(self, query: SearchQuery) -> list[SearchHit]:
        """See :class:`~index.base.DocumentIndex`."""
        vector = self._query_vector(query)
        use_text = query.mode in ("keyword", "hybrid") and bool(query.text.strip())
        use_vector = query.mode in ("semantic", "hybrid") and vector is not None
        if query.mode == "semantic" and vector is None:
            raise ValueError("semantic search needs SearchQuery.vector")
        if query.k <= 0 or not (use_text or use_vector):
            return []
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            return run_search(self, conn, query, vector if use_vector else None, use_text)

    def iter_documents(self, filters: SearchFilters | None = None, *, batch: int = 500) -> Iterator[Document]:
        """See :class:`~index.base.DocumentIndex`; one read per page (keyset on published, id)."""
        where, params = sql.filter_sql(filters)
        after: tuple[Any, str] | None = None
        while True:
            cond, args = where, list(params)
            if after is not None:
                cond += " AND (d.published, d.id) > (%s, %s)"
                args += list(after)
            with self._pool.connection() as conn, conn.transaction():
                page = self._documents(conn, cond, args, f"ORDER BY d.published, d.id LIMIT {int(batch)}")
            yield from page
            if len(page) < batch:
                return
            after = (page[-1].published, page[-1].id)

    def _documents(self, conn: psycopg.Connection[Any], where: str, params: list[Any], tail: str) -> list[Document]:
        rows = conn.execute(f"SELECT {sql.DOC_COLUMNS} FROM {self._d} d WHERE {where} {tail}", params).fetchall()
        if not rows:
            return []
        passages: dict[str, list[Passage]] = {}
        q = f"SELECT doc_id, idx, text, start FROM {self._p} WHERE doc_id = ANY(%s) ORDER BY doc_id, idx"
        for doc_id, idx, text, start in conn.execute(q, ([r[0] for r in rows],)):
            passages.setdefault(doc_id, []).append(Passage(index=idx, text=text, start=start))
        return [sql.row_document(r, tuple(passages.get(r[0], ()))) for r in rows]

    def passage_vectors(self, filters: SearchFilters | None = None) -> PassageVectors:
        """See :class:`~index.base.DocumentIndex`; ordered by (published, document id, passage)."""
        where, params = sql.filter_sql(filters, "p")
        q = (
            f"SELECT p.doc_id, p.idx, p.embedding::real[] FROM {self._p} p"
            f" WHERE {where} ORDER BY p.published, p.doc_id, p.idx"
        )
        with self._pool.connection() as conn:
            rows = conn.execute(q, params).fetchall()
        vectors = np.asarray([r[2] for r in rows], dtype=np.float32).reshape(len(rows), self._space.dim)
        return PassageVectors(
            document_ids=tuple(r[0] for r in rows), passage_indexes=tuple(int(r[1]) for r in rows), vectors=vectors
        )

    def count(self, by: CountBy, filters: SearchFilters | None = None) -> dict[str, int]:
        """See :class:`~index.base.DocumentIndex`."""
        expr = _COUNT_EXPR[by]
        where, params = sql.filter_sql(filters)
        with self._pool.connection() as conn:
            q = f"SELECT {expr}, count(*) FROM {self._d} d WHERE {where} GROUP BY 1 ORDER BY 1"
            return {str(k): int(n) for k, n in conn.execute(q, params).fetchall()}

    def stats(self) -> IndexStats:
        """See :class:`~index.base.DocumentIndex`; ``size_bytes``: the set's tables with their indexes."""
        with self._pool.connection() as conn:
            row = conn.execute(
                f"SELECT (SELECT count(*) FROM {self._d}), (SELECT count(*) FROM {self._p}),"
                " pg_total_relation_size(%s) + pg_total_relation_size(%s) + pg_total_relation_size(%s)",
                (self._d, self._p, self._v),
            ).fetchone()
        assert row is not None
        return IndexStats(
            documents=int(row[0]),
            passages=int(row[1]),
            by_source=self.count("source"),
            by_language=self.count("language"),
            size_bytes=int(row[2]),
            embedding_space=self._space,
        )

    def delete(self, doc_ids: Sequence[str]) -> int:
        """See :class:`~index.base.DocumentIndex` (passages go with their document: ON DELETE CASCADE)."""
        if self.read_only:
            raise IndexBackendError("index opened read_only")
        with self._pool.connection() as conn, conn.transaction():
            cur = conn.execute(f"DELETE FROM {self._d} WHERE id = ANY(%s)", (list(doc_ids),))
            return int(cur.rowcount)

    def update_reach(self, updates: Sequence[ReachUpdate]) -> list[str]:
        """See :class:`~index.base.DocumentIndex`: ``props`` only, one transaction; passages untouched."""
        if self.read_only:
            raise IndexBackendError("index opened read_only")
        if not updates:
            return []
        done: list[str] = []
        with self._pool.connection() as conn, conn.transaction():
            ids = sorted({u.document_id for u in updates})
            rows = conn.execute(
                f"SELECT id, source_id, props FROM {self._d} WHERE id = ANY(%s) ORDER BY id FOR UPDATE", (ids,)
            ).fetchall()
            stored = {r[0]: (r[1], r[2] if isinstance(r[2], dict) else json.loads(r[2])) for r in rows}
            for u in updates:
                if u.document_id not in stored or stored[u.document_id][0] != u.source_id:
                    continue
                props = reach_props(stored[u.document_id][1], u)
                stored[u.document_id] = (u.source_id, props)
                conn.execute(
                    f"UPDATE {self._d} SET props = %s::jsonb, updated_at = now() WHERE id = %s",
                    (json.dumps(props, ensure_ascii=False, default=str), u.document_id),
                )
                done.append(u.document_id)
        return done

    def close(self) -> None:
        """See :class:`~index.base.DocumentIndex`."""
        self._pool.close()

    # -- PostgreSQL-only ----------------------------------------------------------------------

    def connection(self) -> Any:
        """A pooled connection (context manager), for the search module and tests."""
        return self._pool.connection()

    def drop(self) -> None:
        """Drop every table set of this prefix and its meta table (tests and ``index drop``)."""
        with self._pool.connection() as conn, conn.transaction():
            names = [
                r[0]
                for r in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE %s",
                    (self.prefix.replace("_", r"\_") + r"\_%",),
                )
            ]
            for name in sorted(names, key=lambda n: not n.endswith("_passages")):
                conn.execute(f"DROP TABLE IF EXISTS {name} CASCADE")

    def __enter__(self) -> PostgresIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_dim(self, dim: int, what: str) -> None:
        if dim != self._space.dim:
            raise EmbeddingSpaceMismatch(
                f"{what}: {dim}-d vector offered to an index of {self._space.key} ({self._space.dim}-d)"
            )

    def _query_vector(self, query: SearchQuery) -> Vector | None:
        if query.vector is None or query.mode == "keyword":
            return None
        v = np.asarray(query.vector, dtype=np.float32)
        self._check_dim(v.shape[0] if v.ndim == 1 else -1, "query vector")
        return v


def _has_nul(doc: Document) -> bool:
    return any("\x00" in s for s in (doc.id, doc.title, doc.text, doc.url, doc.source_id))
