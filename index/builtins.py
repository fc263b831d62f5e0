"""Register the index package's built-ins: the ``embedded``, ``elasticsearch`` and ``postgresql`` backends and
the embedders. Called by the composition root (:func:`narrawatch.builtins.register_builtins`)."""

from __future__ import annotations

from core.registry import Registry
from index import embedders
from index.base import INDEX_BACKENDS, IndexBackend
from index.embed import EMBEDDERS, EmbedderFactory
from index.local import EmbeddedIndex

__all__ = ["register_builtins"]


def _elasticsearch() -> type[IndexBackend]:
    # The Elasticsearch client is an optional, heavy import: only a config that names this
    # backend (or a lookup of it) loads it.
    from index.elastic import ElasticsearchIndex

    return ElasticsearchIndex


def _postgresql() -> type[IndexBackend]:
    # psycopg is an optional extra (``pip install narrawatch[postgresql]``): imported only when
    # a config names this backend.
    from index.postgres import PostgresIndex

    return PostgresIndex


def register_builtins(
    backends: Registry[type[IndexBackend]] = INDEX_BACKENDS,
    embedder_registry: Registry[EmbedderFactory] = EMBEDDERS,
) -> None:
    """Register the built-in index backends and embedders (idempotent)."""
    backends.add("embedded", EmbeddedIndex)
    backends.add_lazy("elasticsearch", _elasticsearch)
    backends.add_lazy("postgresql", _postgresql)
    embedders.register_builtins(embedder_registry)
