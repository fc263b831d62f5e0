"""The Embedder seam: text -> L2-normalised float32 vectors in a recorded embedding space.

Implementations register by name in :data:`EMBEDDERS` (the built-ins through
:func:`index.builtins.register_builtins`); :func:`make_embedder` resolves a config
``embedding.model`` value:

* a registered name (``use-multilingual-v3``, ``hashing``, ...), or
* anything else (optionally prefixed ``st:``): a sentence-transformers model name or local path.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from core.documents import Document, EmbeddingSpace, IndexedDocument, Vector, Vectors
from core.registry import Registry
from core.settings import EmbeddingSettings

__all__ = [
    "EMBEDDERS",
    "Embedder",
    "HashingEmbedder",
    "embed_each",
    "hashing_embedder",
    "make_embedder",
    "normalize_rows",
    "reembed",
]


@runtime_checkable
class Embedder(Protocol):
    """Embeds documents' passages and queries; the two may differ (prefixes, instructions)."""

    @property
    def space(self) -> EmbeddingSpace:
        """The embedding space this embedder produces vectors in."""
        ...

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        """Embed passages: shape (len(texts), dim), float32, rows L2-normalised."""
        ...

    def embed_query(self, text: str) -> Vector:
        """Embed one search query or exemplar: shape (dim,), float32, L2-normalised."""
        ...


EmbedderFactory = Callable[[EmbeddingSettings], Embedder]
EMBEDDERS: Registry[EmbedderFactory] = Registry("embedding model")


def normalize_rows(m: np.ndarray) -> Vectors:
    """L2-normalise each row (zero rows stay zero), as float32."""
    m = np.asarray(m, dtype=np.float32)
    if m.ndim == 1:
        m = m[None, :]
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    out: Vectors = (m / norms).astype(np.float32, copy=False)
    return out


_TOKEN_RE = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder:
    """Deterministic, model-free embedder for unit tests: hashed word unigrams and bigrams.

    Texts sharing words get similar vectors; there is no cross-lingual ability at all.
    """

    def __init__(self, dim: int = 256) -> None:
        self._space = EmbeddingSpace(model="hashing", dim=dim, backend="narrawatch", pooling="sum")

    @property
    def space(self) -> EmbeddingSpace:
        """See :class:`Embedder`."""
        return self._space

    def _one(self, text: str) -> np.ndarray:
        v = np.zeros(self._space.dim, dtype=np.float32)
        words = [w.lower().replace("ё", "е") for w in _TOKEN_RE.findall(text)]
        feats = words + [a + " " + b for a, b in itertools.pairwise(words)]
        for f in feats:
            h = int.from_bytes(hashlib.blake2b(f.encode("utf-8"), digest_size=8).digest(), "little")
            v[h % self._space.dim] += 1.0 if (h >> 63) == 0 else -1.0
        return v

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        """See :class:`Embedder`."""
        if not texts:
            return np.zeros((0, self._space.dim), dtype=np.float32)
        return normalize_rows(np.stack([self._one(t) for t in texts]))

    def embed_query(self, text: str) -> Vector:
        """See :class:`Embedder`."""
        v: Vector = self.embed_documents([text])[0]
        return v


def hashing_embedder(settings: EmbeddingSettings) -> Embedder:
    """The ``hashing`` factory: a :class:`HashingEmbedder` (the settings are not used)."""
    return HashingEmbedder()


def make_embedder(settings: EmbeddingSettings) -> Embedder:
    """Build the embedder the settings name (registered name, else sentence-transformers)."""
    name = settings.model
    if name in EMBEDDERS:
        return EMBEDDERS.get(name)(settings)
    return EMBEDDERS.get("sentence-transformers")(settings)


def embed_each(embedder: Embedder, docs: Sequence[Document]) -> list[IndexedDocument]:
    """Each document with its passage vectors, from one embedding call over all their passages."""
    texts = [p.text for d in docs for p in d.passages]
    vectors = embedder.embed_documents(texts) if texts else np.zeros((0, embedder.space.dim), np.float32)
    out: list[IndexedDocument] = []
    row = 0
    for d in docs:
        n = len(d.passages)
        out.append(IndexedDocument(d, vectors[row : row + n]))
        row += n
    return out


def reembed(
    documents: Iterable[Document],
    embedder: Embedder,
    write: Callable[[list[IndexedDocument]], object],
    *,
    batch: int,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, int]:
    """Re-embed a stream of documents ``batch`` at a time, handing each batch to ``write``
    (a backend's reindex); returns (documents, passages). ``progress`` gets the running count."""
    docs = passages = 0
    pending: list[Document] = []
    for doc in documents:
        pending.append(doc)
        if len(pending) >= batch:
            write(embed_each(embedder, pending))
            docs += len(pending)
            passages += sum(len(d.passages) for d in pending)
            pending.clear()
            if progress is not None:
                progress(docs)
    if pending:
        write(embed_each(embedder, pending))
        docs += len(pending)
        passages += sum(len(d.passages) for d in pending)
    return docs, passages
