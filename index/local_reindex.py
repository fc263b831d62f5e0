"""Changing embedding model on the embedded backend: re-embed into a new index, then swap.

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

from core.documents import Document, EmbeddingSpace, IndexedDocument, utcnow
from core.errors import IndexUnavailable
from index.embed import Embedder
from index.local import EmbeddedIndex
from index.local_store import SqliteStore

__all__ = ["EmbeddedReindexResult", "reindex_embedded", "stored_space"]

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
    docs = passages = 0
    old = EmbeddedIndex(path, old_space, read_only=True)
    new = EmbeddedIndex(tmp, embedder.space)
    try:
        pending: list[Document] = []

        def flush() -> None:
            nonlocal passages
            texts = [p.text for d in pending for p in d.passages]
            vecs = embedder.embed_documents(texts)
            row = 0
            items = []
            for d in pending:
                n = len(d.passages)
                items.append(IndexedDocument(d, vecs[row : row + n]))
                row += n
            new.upsert(items)
            passages += len(texts)
            pending.clear()

        for doc in old.iter_documents():
            pending.append(doc)
            docs += 1
            if len(pending) >= batch:
                flush()
                log.info("re-embedded %d documents", docs)
        if pending:
            flush()
    finally:
        old.close()
        new.close()
    kept = path.with_name(f"{path.name}.old-{utcnow():%Y%m%dT%H%M%S}")
    path.rename(kept)
    tmp.rename(path)
    return EmbeddedReindexResult(docs, passages, old_space, embedder.space, kept)
