"""Helpers shared by the embedder implementations: weight-file hashing, batching, thread limits."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from core.documents import Vectors
from index.embed import normalize_rows

__all__ = [
    "batched_embed",
    "blas_threads",
    "cpu_threads",
    "file_sha256",
    "files_sha256",
    "weight_files",
]

logger = logging.getLogger(__name__)

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".onnx", ".npz", ".model", ".gguf")


@functools.lru_cache(maxsize=64)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    logger.debug("hashed %s (%d bytes)", path, size)
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of one file, computed once per process (cached by path, size and mtime)."""
    st = path.stat()
    return _sha256_cached(str(path.resolve()), st.st_size, st.st_mtime_ns)


def files_sha256(paths: Sequence[Path]) -> str:
    """One SHA-256 over several files (their names and content hashes, in name order)."""
    h = hashlib.sha256()
    for p in sorted(paths, key=lambda p: p.name):
        h.update(p.name.encode("utf-8"))
        h.update(file_sha256(p).encode("ascii"))
    return h.hexdigest()


def weight_files(model_dir: Path) -> list[Path]:
    """Weight files under a local model directory (safetensors preferred over .bin duplicates)."""
    found = [p for p in model_dir.rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES]
    safetensors = [p for p in found if p.suffix == ".safetensors"]
    if safetensors:
        return sorted(safetensors)
    return sorted(p for p in found if p.suffix in (".bin", ".pt", ".onnx"))


@contextlib.contextmanager
def blas_threads(threads: int | None, user_api: str = "blas") -> Iterator[None]:
    """Limit BLAS (or OpenMP) threads inside the block when ``threads`` is set."""
    if threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads, user_api=user_api):
        yield


def batched_embed(
    texts: Sequence[str], batch_size: int, dim: int, encode: Callable[[list[str]], np.ndarray]
) -> Vectors:
    """Run ``encode`` over ``texts`` in batches; return L2-normalised float32 rows (0 rows ok)."""
    if not texts:
        return np.zeros((0, dim), dtype=np.float32)
    parts = [encode(list(texts[i : i + batch_size])) for i in range(0, len(texts), batch_size)]
    return normalize_rows(np.concatenate(parts, axis=0))


def cpu_threads() -> int:
    """Usable CPU count (affinity-aware)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1
