"""Open the configured embedder and index backend by name (the only place that knows both)."""

from __future__ import annotations

import logging

from core.documents import EmbeddingSpace
from core.settings import Config
from index.base import INDEX_BACKENDS, DocumentIndex, IndexLifecycle
from index.embed import Embedder, make_embedder

__all__ = ["index_lifecycle", "open_embedder", "open_index"]

log = logging.getLogger(__name__)


def open_embedder(config: Config) -> Embedder:
    """The embedder ``embedding.model`` names."""
    embedder = make_embedder(config.service.embedding)
    log.info("embedding model %s (dim %d)", embedder.space.model, embedder.space.dim)
    return embedder


def open_index(config: Config, space: EmbeddingSpace, *, read_only: bool = False) -> DocumentIndex:
    """The index backend ``index.backend`` names, bound to ``space``."""
    return INDEX_BACKENDS.get(config.service.index.backend).open(config, space, read_only=read_only)


def index_lifecycle(config: Config) -> IndexLifecycle:
    """Create/status/reindex of the index backend ``index.backend`` names."""
    return INDEX_BACKENDS.get(config.service.index.backend).lifecycle(config)
