"""The embedded backend's lifecycle (create, status, reindex) and its re-embed into a new index.

Changing embedding model: re-embed into a new index, then swap directories.

The old index directory is kept beside the new one (``<index>.old-<timestamp>``) so a bad model
change can be rolled back by renaming it back. Stop the service first: writes made to the old
index during a reindex are not carried over. (Elasticsearch does the same with an alias switch:
see index/elastic.py ``reindex``.)
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.documents import EmbeddingSpace, utcnow
from core.errors import IndexUnavailable
from core.settings import Config
from index.embed import Embedder, reembed
from index.local import EmbeddedIndex
from index.local_store import SqliteStore

__all__ = ["EmbeddedLifecycle", "EmbeddedReindexResult", "reindex_embedded", "stored_space"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbeddedReindexResult:
    """What a reindex did."""

    documents: int
    passages: int
    old_space: EmbeddingSpace
    new_space: EmbeddingSpace
    kept_old_at: Path


def stored_space(path: Path) -> EmbeddingSpace | None:
    """The embedding space an embedded index at ``path`` was built with (None if empty/absent)."""
    try:
        store = SqliteStore(path, read_only=True)
    except IndexUnavailable:
        return None
    try:
        return store.embedding_space()
    finally:
        store.close()


def reindex_embedded(path: Path, embedder: Embedder, *, batch: int = 256) -> EmbeddedReindexResult:
    """Re-embed every document of the index at ``path`` with ``embedder`` and swap directories."""
    old_space = stored_space(path)
    if old_space is None:
        raise IndexUnavailable(f"no embedded index at {path} to re-embed")
    tmp = path.with_name(path.name + ".reindex")
    shutil.rmtree(tmp, ignore_errors=True)
    old = EmbeddedIndex(path, old_space, read_only=True)
    new = EmbeddedIndex(tmp, embedder.space)
    try:
        docs, passages = reembed(
            old.iter_documents(),
            embedder,
            new.upsert,
            batch=batch,
            progress=lambda n: log.info("re-embedded %d documents", n),
        )
    finally:
        old.close()
        new.close()
    kept = path.with_name(f"{path.name}.old-{utcnow():%Y%m%dT%H%M%S}")
    path.rename(kept)
    tmp.rename(path)
    return EmbeddedReindexResult(docs, passages, old_space, embedder.space, kept)


class EmbeddedLifecycle:
    """:class:`~index.base.IndexLifecycle` of the embedded index at ``config.index_path``."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.path = config.index_path

    def create(self, space: EmbeddingSpace) -> str:
        """Create the index directory for ``space`` (opening it for writing does); returns its path."""
        EmbeddedIndex.open(self.config, space).close()
        return str(self.path)

    def status(self) -> dict[str, Any]:
        """Path, embedding space and, when the index exists, stats and consistency counts."""
        space = stored_space(self.path)
        data: dict[str, Any] = {
            "backend": "embedded",
            "path": str(self.path),
            "embedding_space": space.to_dict() if space else None,
        }
        if space is not None:
            with EmbeddedIndex.open(self.config, space, read_only=True) as idx:
                data["stats"] = idx.stats().as_dict()
                data["consistency"] = idx.consistency()
        return data

    def reindex(self, embedder: Embedder) -> dict[str, Any]:
        """:func:`reindex_embedded`, summarised."""
        r = reindex_embedded(self.path, embedder)
        return {
            "documents": r.documents,
            "passages": r.passages,
            "old_model": r.old_space.model,
            "new_model": r.new_space.model,
            "old_index_kept_at": str(r.kept_old_at),
        }
