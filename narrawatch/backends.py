"""Open the configured embedder and index backend by name (the only place that knows both)."""

from __future__ import annotations

import importlib
import logging

from core.documents import EmbeddingSpace
from core.settings import Config
from index.base import INDEX_BACKENDS, DocumentIndex
from index.embed import Embedder, make_embedder

__all__ = ["open_embedder", "open_index"]

log = logging.getLogger(__name__)

# Importing these modules registers the backends in INDEX_BACKENDS (lazily: Elasticsearch's
# client is only imported when it is configured).
_BACKEND_MODULES = {"embedded": "index.local", "elasticsearch": "index.elastic"}


def open_embedder(config: Config) -> Embedder:
    """The embedder ``embedding.model`` names."""
    embedder = make_embedder(config.service.embedding)
    log.info("embedding model %s (dim %d)", embedder.space.model, embedder.space.dim)
    return embedder


def open_index(config: Config, space: EmbeddingSpace, *, read_only: bool = False) -> DocumentIndex:
    """The index backend ``index.backend`` names, bound to ``space``."""
    name = config.service.index.backend
    module = _BACKEND_MODULES.get(name)
    if module:
        importlib.import_module(module)
    backend = INDEX_BACKENDS.get(name)
    if read_only and name == "embedded":
        index: DocumentIndex = backend(
            config.index_path, space, read_only=True, vector_precision=config.service.index.vector_precision
        )
        return index
    opened: DocumentIndex = backend.open(config, space)  # type: ignore[attr-defined]
    return opened
