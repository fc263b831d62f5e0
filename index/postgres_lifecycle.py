"""The PostgreSQL index's lifecycle: create, status, and re-embed into a new table set.

A re-embed copies every document of the active set into a new set (``<prefix>_<hash>_g<n>``)
with the new embedder's vectors, then switches ``<prefix>_meta.active`` to it in one
transaction; the old set is kept (switch back by editing the meta row, or drop it). Stop ingest
first: writes to the old set during the copy are not carried over.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Json

from core.documents import EmbeddingSpace
from core.errors import IndexUnavailable
from core.settings import Config
from index import postgres_sql as sql
from index.embed import Embedder, reembed
from index.postgres import PostgresIndex
from index.postgres_conn import connect_pool, read_active, settings_url

__all__ = ["PostgresLifecycle", "location"]

log = logging.getLogger(__name__)


def location(url: str, prefix: str) -> str:
    """``host:port/dbname (prefix)`` without user or password."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return f"postgresql ({prefix})"
    return f"postgresql://{info.get('host', '')}:{info.get('port', '5432')}/{info.get('dbname', '')} ({prefix})"


class PostgresLifecycle:
    """:class:`~index.base.IndexLifecycle` of the PostgreSQL index ``index.postgresql`` names."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.settings = config.service.index.postgresql

    def _open(self, space: EmbeddingSpace, **kw: Any) -> PostgresIndex:
        return PostgresIndex.from_settings(settings_url(self.config), self.settings, space, **kw)

    def _active(self) -> dict[str, Any] | None:
        pool = connect_pool(settings_url(self.config), size=1, read_only=True)
        try:
            with pool.connection() as conn:
                return read_active(conn, self.settings.table_prefix)
        finally:
            pool.close()

    def create(self, space: EmbeddingSpace) -> str:
        """Create the extension, meta table and table set for ``space`` unless they exist."""
        with self._open(space) as idx:
            return f"{location(settings_url(self.config), self.settings.table_prefix)} {idx.table_set}"

    def status(self) -> dict[str, Any]:
        """Location, active table set, embedding space and stats; creates nothing."""
        url = settings_url(self.config)
        active = self._active()
        data: dict[str, Any] = {
            "backend": "postgresql",
            "location": location(url, self.settings.table_prefix),
            "table_set": active["set"] if active else None,
            "embedding_space": active["space"] if active else None,
        }
        if active is not None:
            space = EmbeddingSpace.from_dict(active["space"])
            with self._open(space, read_only=True) as idx:
                data["stats"] = idx.stats().as_dict()
        return data

    def reindex(self, embedder: Embedder, *, batch: int = 256) -> dict[str, Any]:
        """Re-embed every document into a new table set and switch to it; the old set is kept."""
        active = self._active()
        if active is None:
            raise IndexUnavailable(f"no PostgreSQL index under prefix {self.settings.table_prefix!r} to re-embed")
        old_space = EmbeddingSpace.from_dict(active["space"])
        generation = int(active.get("generation", 0)) + 1
        target = sql.set_name(self.settings.table_prefix, embedder.space, generation)
        old = self._open(old_space, read_only=True)
        new = self._open(embedder.space, table_set=target)
        try:
            docs, passages = reembed(
                old.iter_documents(),
                embedder,
                new.upsert,
                batch=batch,
                progress=lambda n: log.info("re-embedded %d documents", n),
            )
            value = {"set": target, "space": embedder.space.to_dict(), "generation": generation}
            with new.connection() as conn, conn.transaction():
                conn.execute(
                    f"UPDATE {self.settings.table_prefix}_meta SET value = %s WHERE key = 'active'",
                    (Json(value),),
                )
        finally:
            old.close()
            new.close()
        return {
            "documents": docs,
            "passages": passages,
            "old_model": old_space.model,
            "new_model": embedder.space.model,
            "old_table_set_kept": active["set"],
            "table_set": target,
        }
