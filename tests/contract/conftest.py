"""``make_index``: a factory of fresh, empty DocumentIndex instances, one param per backend.

* ``embedded`` always runs (a temporary directory per index), once per ``vector_precision``
  (``embedded`` = float32, ``embedded-float16``).
* ``elasticsearch`` runs when ``NARRAWATCH_ES_URL`` is set (indexes under a unique prefix,
  dropped afterwards); otherwise it is skipped.
* ``postgresql`` runs against ``NARRAWATCH_PG_URL``, or, when that is unset, a PostgreSQL 18 +
  pgvector that :func:`tests.support.pg.pg_url` starts from ``pgserver`` (a dev dependency), so
  ``make test`` / ``.ci/run`` always run it; tables under a unique prefix, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from core.documents import EmbeddingSpace
from index.base import DocumentIndex


@dataclass
class IndexFactory:
    """``factory(space)`` makes a fresh empty index; ``reopen(index, space)`` closes and reopens it."""

    name: str
    make: Callable[[EmbeddingSpace], DocumentIndex]
    reopen_fn: Callable[[DocumentIndex, EmbeddingSpace | None], DocumentIndex]
    stems_russian: bool = True
    opened: list[DocumentIndex] = field(default_factory=list)

    def __call__(self, space: EmbeddingSpace) -> DocumentIndex:
        index = self.make(space)
        self.opened.append(index)
        return index

    def reopen(self, index: DocumentIndex, space: EmbeddingSpace | None = None) -> DocumentIndex:
        """Close ``index`` and open the same storage again (with ``space``, default its own)."""
        again = self.reopen_fn(index, space)
        self.opened.append(again)
        return again


def _embedded(tmp_path: Path, precision: Any = "float32") -> IndexFactory:
    from index.local import EmbeddedIndex

    paths: dict[int, Path] = {}

    def make(space: EmbeddingSpace) -> DocumentIndex:
        path = tmp_path / f"index{len(paths)}"
        index = EmbeddedIndex(path, space, vector_precision=precision)
        paths[id(index)] = path
        return index

    def reopen(index: DocumentIndex, space: EmbeddingSpace | None) -> DocumentIndex:
        path = paths[id(index)]
        target = space or index.embedding_space
        index.close()
        again = EmbeddedIndex(path, target, vector_precision=precision)
        paths[id(again)] = path
        return again

    return IndexFactory("embedded", make, reopen)


def _elasticsearch(url: str) -> IndexFactory:
    from index.elastic import ElasticsearchIndex  # type: ignore[import-not-found, unused-ignore]

    prefixes: dict[int, str] = {}

    def make(space: EmbeddingSpace) -> DocumentIndex:
        prefix = f"nwtest-{uuid.uuid4().hex[:10]}"
        index: Any = ElasticsearchIndex.for_tests(url, space, prefix)
        prefixes[id(index)] = prefix
        return index  # type: ignore[no-any-return]

    def reopen(index: DocumentIndex, space: EmbeddingSpace | None) -> DocumentIndex:
        prefix = prefixes[id(index)]
        target = space or index.embedding_space
        index.close()
        again: Any = ElasticsearchIndex.for_tests(url, target, prefix)
        prefixes[id(again)] = prefix
        return again  # type: ignore[no-any-return]

    return IndexFactory("elasticsearch", make, reopen)


PG_VARIANTS: dict[str, dict[str, Any]] = {
    "postgresql": {},  # defaults: exact scans until an IVFFlat index is trained (20,000 passages)
    # every semantic query through a trained IVFFlat index (trained from the first passage, retrained as it grows)
    "postgresql-ivfflat": {"ann": "ivfflat", "ann_min_rows": 1, "exact_below": 0},
    "postgresql-hnsw": {"ann": "hnsw", "exact_below": 0},  # every semantic query through HNSW
}


def _postgresql(url: str, variant: str) -> IndexFactory:
    from index.postgres import PostgresIndex
    from tests.support.pg import unique_prefix

    prefixes: dict[int, str] = {}
    extra = PG_VARIANTS[variant]

    def make(space: EmbeddingSpace) -> DocumentIndex:
        prefix = unique_prefix()
        index = PostgresIndex(url, space, table_prefix=prefix, **extra)
        prefixes[id(index)] = prefix
        return index

    def reopen(index: DocumentIndex, space: EmbeddingSpace | None) -> DocumentIndex:
        prefix = prefixes[id(index)]
        target = space or index.embedding_space
        index.close()
        again = PostgresIndex(url, target, table_prefix=prefix, **extra)
        prefixes[id(again)] = prefix
        return again

    return IndexFactory(variant, make, reopen)


@pytest.fixture(
    params=[
        "embedded",
        "embedded-float16",
        pytest.param("elasticsearch", marks=pytest.mark.elasticsearch),
        pytest.param("postgresql", marks=pytest.mark.postgresql),
        pytest.param("postgresql-ivfflat", marks=pytest.mark.postgresql),
        pytest.param("postgresql-hnsw", marks=pytest.mark.postgresql),
    ]
)
def make_index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IndexFactory]:
    """A factory ``(space) -> DocumentIndex`` over every available backend; cleans up after."""
    if request.param == "embedded":
        factory = _embedded(tmp_path)
    elif request.param == "embedded-float16":
        factory = _embedded(tmp_path, "float16")
    elif request.param.startswith("postgresql"):
        url = request.getfixturevalue("pg_url")
        factory = _postgresql(url, request.param)
    else:
        url = os.environ.get("NARRAWATCH_ES_URL")
        if not url:
            pytest.skip("NARRAWATCH_ES_URL not set")
        factory = _elasticsearch(url)
    yield factory
    for index in reversed(factory.opened):
        try:
            if factory.name == "elasticsearch" or factory.name.startswith("postgresql"):
                index.drop()  # type: ignore[attr-defined]
            index.close()
        except Exception:  # already closed by a reopen, or dropped
            pass
