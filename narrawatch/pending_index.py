"""Serving before the first ingest: an index that answers "nothing yet" until a writer creates it.

``narrawatch serve`` opens the embedded index read-only so a crawl can run beside it; on a fresh
install there is no index yet, and a read-only open must not create one (a reader that made the
files would race the writer and could leave a half-made index behind). :class:`PendingIndex`
stands in for it: every read answers like an empty index, and as soon as the writer's database
file appears the real read-only index is opened and every call goes to it, so the server starts
showing documents after the first ingest without a restart. It never writes anything to disk.

On PostgreSQL the same holds: a read-only open of a prefix with no tables raises
:class:`~core.errors.IndexNotCreated`, and the pending index retries the open at most every few
seconds; any other failure (the server unreachable, a wrong password) is raised to the caller.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence

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
)
from core.errors import IndexBackendError, IndexNotCreated, IndexUnavailable
from core.settings import Config
from index.base import CountBy, DocumentIndex, PassageVectors, ReachUpdate
from index.local_store import DB_NAME
from narrawatch.backends import open_index

__all__ = ["PendingIndex", "embedded_index_exists", "open_read_index"]

log = logging.getLogger(__name__)

PG_RETRY_SECONDS = 5.0
"""While no PostgreSQL index exists, re-try the open at most this often (each try is a connection)."""


def embedded_index_exists(config: Config) -> bool:
    """True when the embedded index's database file exists (a writer has created the index)."""
    return (config.index_path / DB_NAME).exists()


class PendingIndex:
    """A read-only :class:`~index.base.DocumentIndex` for an index that may not exist yet.

    ``created()`` says whether the writer may have created the index (the embedded database
    file exists); ``opener`` opens it read-only, and an error of a ``waiting_for`` type means
    "not yet". Until both succeed, reads answer as an empty index (no hits, no documents, zero
    counts) and writes raise :class:`IndexBackendError` like any read-only index. ``where`` names
    the index in logs; ``retry_every`` (seconds) spaces out opens that cost a round trip.
    """

    def __init__(
        self,
        created: Callable[[], bool],
        space: EmbeddingSpace,
        opener: Callable[[], DocumentIndex],
        *,
        where: str,
        waiting_for: tuple[type[Exception], ...] = (IndexUnavailable, sqlite3.Error),
        retry_every: float = 0.0,
    ) -> None:
        self._created = created
        self._space = space
        self._opener = opener
        self._where = where
        self._waiting_for = waiting_for
        self._retry_every = retry_every
        self._next_try = 0.0
        self._index: DocumentIndex | None = None
        self._lock = threading.Lock()
        self._last_problem = ""

    @property
    def pending(self) -> bool:
        """True while there is no index to read (nothing has been ingested yet)."""
        return self._ready() is None

    def _ready(self) -> DocumentIndex | None:
        if self._index is not None:
            return self._index
        if time.monotonic() < self._next_try or not self._created():
            return None
        with self._lock:
            if self._index is None:
                try:
                    self._index = self._opener()
                except self._waiting_for as exc:
                    # Not created yet, or still being created (embedded: database made, full-text index not yet).
                    self._next_try = time.monotonic() + self._retry_every
                    if str(exc) != self._last_problem:
                        self._last_problem = str(exc)
                        log.info("index at %s not readable yet: %s", self._where, exc)
                    return None
                log.info("index at %s created by a writer: serving it", self._where)
            return self._index

    # -- DocumentIndex ---------------------------------------------------------------------------

    @property
    def embedding_space(self) -> EmbeddingSpace:
        """The opened index's space, or the configured embedder's while pending."""
        index = self._ready()
        return index.embedding_space if index is not None else self._space

    def upsert(self, docs: Sequence[IndexedDocument]) -> UpsertResult:
        """Never: this index is read-only."""
        raise IndexBackendError("index opened read_only")

    def update_reach(self, updates: Sequence[ReachUpdate]) -> list[str]:
        """Never: this index is read-only."""
        raise IndexBackendError("index opened read_only")

    def get(self, doc_id: str) -> Document | None:
        """See :class:`~index.base.DocumentIndex` (None while pending)."""
        index = self._ready()
        return index.get(doc_id) if index is not None else None

    def content_hashes(self, doc_ids: Sequence[str]) -> dict[str, str]:
        """See :class:`~index.base.DocumentIndex` (empty while pending)."""
        index = self._ready()
        return index.content_hashes(doc_ids) if index is not None else {}

    def search(self, query: SearchQuery) -> list[SearchHit]:
        """See :class:`~index.base.DocumentIndex` (no hits while pending)."""
        index = self._ready()
        return index.search(query) if index is not None else []

    def iter_documents(self, filters: SearchFilters | None = None, *, batch: int = 500) -> Iterator[Document]:
        """See :class:`~index.base.DocumentIndex` (nothing while pending)."""
        index = self._ready()
        if index is not None:
            yield from index.iter_documents(filters, batch=batch)

    def passage_vectors(self, filters: SearchFilters | None = None) -> PassageVectors:
        """See :class:`~index.base.DocumentIndex` (no rows while pending)."""
        index = self._ready()
        if index is not None:
            return index.passage_vectors(filters)
        return PassageVectors((), (), np.zeros((0, self._space.dim), dtype=np.float32))

    def count(self, by: CountBy, filters: SearchFilters | None = None) -> dict[str, int]:
        """See :class:`~index.base.DocumentIndex` (empty while pending)."""
        index = self._ready()
        return index.count(by, filters) if index is not None else {}

    def stats(self) -> IndexStats:
        """See :class:`~index.base.DocumentIndex` (zeros while pending)."""
        index = self._ready()
        if index is not None:
            return index.stats()
        return IndexStats(0, 0, {}, {}, 0, None)

    def delete(self, doc_ids: Sequence[str]) -> int:
        """Never: this index is read-only."""
        raise IndexBackendError("index opened read_only")

    def close(self) -> None:
        """Close the real index if it was opened."""
        with self._lock:
            if self._index is not None:
                self._index.close()
                self._index = None


def open_read_index(config: Config, space: EmbeddingSpace) -> DocumentIndex:
    """The configured index opened read-only, also before the first ingest (embedded and PostgreSQL).

    Without an index yet, this is a :class:`PendingIndex` that starts answering from the real
    index once a crawl (``narrawatch crawl --once`` or ``run``) has created it.
    """
    backend = config.service.index.backend

    def opener() -> DocumentIndex:
        return open_index(config, space, read_only=True)

    if backend == "postgresql":
        try:
            return opener()
        except IndexNotCreated as exc:
            log.info("%s: serving empty results until the first ingest creates it", exc)
            where = f"postgresql prefix {config.service.index.postgresql.table_prefix!r}"
            return PendingIndex(
                lambda: True, space, opener, where=where, waiting_for=(IndexNotCreated,), retry_every=PG_RETRY_SECONDS
            )
    if backend != "embedded" or embedded_index_exists(config):
        return opener()
    log.info("no index at %s yet: serving empty results until the first ingest creates it", config.index_path)
    marker = config.index_path / DB_NAME
    return PendingIndex(marker.exists, space, opener, where=str(config.index_path))
