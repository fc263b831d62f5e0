"""The embedded, on-disk DocumentIndex: SQLite (truth) + tantivy (BM25) + NumPy (exact kNN).

Layout of an index directory::

    documents.sqlite3   documents, passages, float32 vectors, meta (embedding space, write seq)
    fulltext/           tantivy index over passages (derived; rebuilt or caught up on open)
    fulltext.json       last write sequence committed to tantivy

One writer process (it holds tantivy's writer lock); any number of ``read_only=True`` readers
in other processes, which pick up the writer's commits before each search.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.documents import (
    Document,
    EmbeddingSpace,
    IndexedDocument,
    IndexStats,
    SearchFilters,
    SearchHit,
    SearchQuery,
    UpsertResult,
    Vector,
)
from core.errors import EmbeddingSpaceMismatch, IndexBackendError
from index.base import CountBy, IndexLifecycle, PassageVectors, ReachUpdate, above_floor, fuse_passages
from index.local_store import PassageRow, SqliteStore, from_micros
from index.local_text import FullText
from index.local_vectors import Precision, VectorMatrix, exact_vectors

if TYPE_CHECKING:
    from core.settings import Config

__all__ = ["EmbeddedIndex"]

log = logging.getLogger(__name__)

_after_sqlite_commit: Any = None
"""Test hook: called between the SQLite commit and the tantivy commit (crash tests)."""


class EmbeddedIndex:
    """DocumentIndex on local disk; see the module docstring for the layout."""

    def __init__(
        self,
        path: Path,
        space: EmbeddingSpace,
        *,
        read_only: bool = False,
        vector_precision: Precision = "float16",
    ) -> None:
        """Open (or create unless ``read_only``) the index at ``path``.

        ``vector_precision``: dtype of the in-memory kNN matrix (``index.vector_precision``);
        SQLite keeps float32 either way, see :mod:`index.local_vectors`.
        """
        self.path = Path(path)
        self.read_only = read_only
        self._lock = threading.RLock()
        self._store = SqliteStore(self.path, read_only=read_only)
        try:
            stored = self._store.embedding_space()
            if stored is not None and stored.key != space.key:
                raise EmbeddingSpaceMismatch(
                    f"index at {self.path} holds vectors of {stored.key}; refusing {space.key}"
                    " (re-embed into a new index to change model)"
                )
            if stored is None and not read_only:
                self._store.set_embedding_space(space)
            self._space = space
            self._text = FullText(self.path, writable=not read_only)
            store = self._store
            self._vectors = VectorMatrix(
                space.dim, vector_precision, exact=lambda pids: exact_vectors(store, space.dim, pids)
            )
            if not read_only:
                caught = self._text.catch_up(self._store)
                if caught:
                    log.info("full-text index caught up with SQLite: %d passages re-indexed", caught)
            self._vectors.sync(self._store)
        except BaseException:
            self._store.close()
            raise

    @classmethod
    def open(cls, config: Config, space: EmbeddingSpace, *, read_only: bool = False) -> EmbeddedIndex:
        """Open (or, unless ``read_only``, create) the index at ``config.index_path``."""
        return cls(
            config.index_path, space, read_only=read_only, vector_precision=config.service.index.vector_precision
        )

    @classmethod
    def lifecycle(cls, config: Config) -> IndexLifecycle:
        """See :class:`~index.base.IndexBackend`: :class:`~index.local_reindex.EmbeddedLifecycle`."""
        # index.local_reindex builds on this class (a re-embed opens two of them), so it cannot be
        # imported at the top of this module.
        from index.local_reindex import EmbeddedLifecycle

        return EmbeddedLifecycle(config)

    # -- protocol -----------------------------------------------------------------------------

    @property
    def embedding_space(self) -> EmbeddingSpace:
        """See :class:`~index.base.DocumentIndex`."""
        return self._space

    def upsert(self, docs: Sequence[IndexedDocument]) -> UpsertResult:
        """See :class:`~index.base.DocumentIndex`; durable in SQLite before it returns."""
        if self.read_only:
            raise IndexBackendError("index opened read_only")
        latest = list({d.document.id: d for d in docs}.values())
        for item in latest:
            self._check_dim(item.vectors.shape[1] if item.vectors.ndim == 2 else -1, item.document.id)
        with self._lock:
            new, updated, unchanged, _ = self._store.upsert(latest)
            if new or updated:
                if _after_sqlite_commit is not None:
                    _after_sqlite_commit()
                self._text.catch_up(self._store)
                self._vectors.sync(self._store)
        return UpsertResult(new=tuple(new), updated=tuple(updated), unchanged=tuple(unchanged))

    def get(self, doc_id: str) -> Document | None:
        """See :class:`~index.base.DocumentIndex`."""
        with self._lock:
            return self._store.get(doc_id)

    def content_hashes(self, doc_ids: Sequence[str]) -> dict[str, str]:
        """See :class:`~index.base.DocumentIndex`."""
        with self._lock:
            return self._store.content_hashes(doc_ids)

    def search(self, query: SearchQuery) -> list[SearchHit]:
        """See :class:`~index.base.DocumentIndex`."""
        vector = self._query_vector(query)
        use_text = query.mode in ("keyword", "hybrid") and (query.expr is not None or bool(query.text.strip()))
        use_vector = query.mode in ("semantic", "hybrid") and vector is not None
        if query.mode == "semantic" and vector is None:
            raise ValueError("semantic search needs SearchQuery.vector")
        if query.k <= 0 or not (use_text or use_vector):
            return []
        with self._lock:
            self._refresh()
            f = query.filters
            dkeys = self._store.dkeys_for(f.document_ids) if f.document_ids else None
            mask = self._vectors.mask(f, dkeys) if use_vector else None
            window = max(query.k * 5, 50)
            while True:
                keyword = self._text.search(query.text, f, window, query.expr) if use_text else []
                keyword = [(p, s) for p, s in keyword if self._vectors.has(p)]
                semantic: list[tuple[int, float]] = []
                vec_done = True
                if use_vector and vector is not None and mask is not None:
                    ranking = self._vectors.rank(vector, mask, window)
                    semantic = list(zip(ranking.pids.tolist(), ranking.scores.tolist(), strict=True))
                    vec_done = ranking.exhausted
                    if query.min_similarity is not None:
                        kept = above_floor(semantic, query.min_similarity)
                        vec_done = vec_done or len(kept) < len(semantic)
                        semantic = kept
                hits = self._assemble(query, vector, keyword, semantic)
                text_done = len(keyword) < window
                if len(hits) >= query.k or (text_done and vec_done) or not query.group_by_document:
                    return hits[: query.k]
                window *= 4

    def _assemble(
        self,
        query: SearchQuery,
        vector: Vector | None,
        keyword: list[tuple[int, float]],
        semantic: list[tuple[int, float]],
    ) -> list[SearchHit]:
        fused = fuse_passages(query.mode, keyword, semantic)
        rows = self._store.passage_rows([p for p, _ in fused])
        kw_rank = _ranks([rows[p].dkey if query.group_by_document else p for p, _ in keyword if p in rows])
        sem_rank = _ranks([rows[p].dkey if query.group_by_document else p for p, _ in semantic if p in rows])
        cosines = self._vectors.cosine(vector, [p for p, _ in fused if p in rows]) if vector is not None else {}
        hits: list[SearchHit] = []
        seen: set[int] = set()
        for pid, score in fused:
            row = rows.get(pid)
            if row is None:
                continue
            key = row.dkey if query.group_by_document else pid
            if key in seen:
                continue
            seen.add(key)
            hits.append(_hit(row, score, kw_rank.get(key), sem_rank.get(key), cosines.get(pid)))
            if len(hits) >= query.k:
                break
        return hits

    def iter_documents(self, filters: SearchFilters | None = None, *, batch: int = 500) -> Iterator[Document]:
        """See :class:`~index.base.DocumentIndex`."""
        # Pages are read lazily, each in its own read snapshot.
        yield from self._store.iter_documents(filters, batch)

    def passage_vectors(self, filters: SearchFilters | None = None) -> PassageVectors:
        """See :class:`~index.base.DocumentIndex`; ordered by (published, document id, passage)."""
        with self._lock:
            self._refresh()
            v = self._vectors
            dkeys = self._store.dkeys_for(filters.document_ids) if filters and filters.document_ids else None
            rows = np.flatnonzero(v.mask(filters, dkeys))
            ids = self._store.doc_ids_for(sorted({int(d) for d in v.dkeys[rows]}))
            rows = rows[[r for r, d in enumerate(v.dkeys[rows]) if int(d) in ids]]
            order = sorted(
                range(len(rows)),
                key=lambda i: (int(v.published[rows[i]]), ids[int(v.dkeys[rows[i]])], int(v.pidx[rows[i]])),
            )
            rows = rows[order] if len(rows) else rows
            return PassageVectors(
                document_ids=tuple(ids[int(d)] for d in v.dkeys[rows]),
                passage_indexes=tuple(int(i) for i in v.pidx[rows]),
                vectors=v.row_vectors(rows),
            )

    def count(self, by: CountBy, filters: SearchFilters | None = None) -> dict[str, int]:
        """See :class:`~index.base.DocumentIndex`."""
        with self._lock:
            return self._store.count(by, filters)

    def stats(self) -> IndexStats:
        """See :class:`~index.base.DocumentIndex`; ``size_bytes`` is every file in the directory."""
        with self._lock:
            docs, passages = self._store.totals()
            return IndexStats(
                documents=docs,
                passages=passages,
                by_source=self._store.count("source", None),
                by_language=self._store.count("language", None),
                size_bytes=sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file()),
                embedding_space=self._space,
            )

    def delete(self, doc_ids: Sequence[str]) -> int:
        """See :class:`~index.base.DocumentIndex`."""
        if self.read_only:
            raise IndexBackendError("index opened read_only")
        with self._lock:
            found = self._store.delete(doc_ids)
            if found:
                self._text.catch_up(self._store)
                self._vectors.sync(self._store)
            return found

    def update_reach(self, updates: Sequence[ReachUpdate]) -> list[str]:
        """See :class:`~index.base.DocumentIndex`; the full-text and vector copies are untouched."""
        if self.read_only:
            raise IndexBackendError("index opened read_only")
        if not updates:
            return []
        with self._lock:
            return self._store.update_reach(updates)

    def close(self) -> None:
        """See :class:`~index.base.DocumentIndex`."""
        with self._lock:
            self._text.close()
            self._store.close()

    # -- embedded-only ------------------------------------------------------------------------

    def consistency(self) -> dict[str, int]:
        """Counts that must agree in a healthy index (SQLite vs tantivy vs vector matrix)."""
        with self._lock:
            self._refresh()
            docs, passages = self._store.totals()
            return {
                "documents": docs,
                "passages": passages,
                "fulltext_passages": self._text.num_docs(),
                "vector_rows": self._vectors.live_rows,
                "seq": self._store.seq(),
                "fulltext_seq": self._text.seq,
            }

    def fulltext_count(self, doc_id: str) -> int:
        """Passages of one document in the full-text index (duplicates would show here)."""
        with self._lock:
            return self._text.count_doc(doc_id)

    def __enter__(self) -> EmbeddedIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers ------------------------------------------------------------------------------

    def _refresh(self) -> None:
        """Readers: pick up the writer's commits (vector rows and the tantivy searcher)."""
        if self.read_only and self._vectors.sync(self._store):
            self._text.reload()

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


def _ranks(keys: Sequence[int]) -> dict[int, int]:
    out: dict[int, int] = {}
    for key in keys:
        if key not in out:
            out[key] = len(out) + 1
    return out


def _hit(row: PassageRow, score: float, kw: int | None, sem: int | None, cosine: float | None) -> SearchHit:
    return SearchHit(
        document_id=row.doc_id,
        passage_index=row.index,
        score=float(score),
        url=row.url,
        title=row.title,
        source_id=row.source_id,
        language=row.language,
        published=from_micros(row.published),
        snippet=row.text,
        keyword_rank=kw,
        semantic_rank=sem,
        semantic_score=cosine,
    )
