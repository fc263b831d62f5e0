"""Index names, settings and mappings for the Elasticsearch backend (pure functions, no I/O to ES).

The JSON in ``index/mappings/`` is the source of truth; these functions load it, drop the
``_comment`` keys and add what depends on the embedding space (the ``dense_vector`` field and
``_meta``). Names:

* documents: concrete index ``<prefix>-docs-<space.slug>-<n>`` behind the alias ``<prefix>-docs``.

Field choices are explained in ``docs/elasticsearch.md``.
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from importlib import resources
from typing import Any

from core.documents import EmbeddingSpace

__all__ = [
    "HNSW_EF_CONSTRUCTION",
    "HNSW_M",
    "META_SPACE_KEY",
    "docs_alias",
    "docs_index_name",
    "docs_index_pattern",
    "docs_template",
    "index_generation",
    "load_mapping_json",
    "mapping_for",
    "space_from_meta",
    "vector_field",
]

META_SPACE_KEY = "embedding_space"
"""Key under the index mapping ``_meta`` holding :meth:`EmbeddingSpace.to_dict`."""
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 100


@cache
def _load(name: str) -> dict[str, Any]:
    text = resources.files("index").joinpath("mappings", name).read_text(encoding="utf-8")
    data: dict[str, Any] = _strip_comments(json.loads(text))
    return data


def _strip_comments(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_comments(v) for k, v in value.items() if k != "_comment"}
    if isinstance(value, list):
        return [_strip_comments(v) for v in value]
    return value


def load_mapping_json(name: str) -> dict[str, Any]:
    """A fresh copy of ``index/mappings/<name>`` without ``_comment`` keys."""
    return copy.deepcopy(_load(name))


def docs_alias(prefix: str) -> str:
    """The alias every read and write goes through: ``<prefix>-docs``."""
    return f"{prefix}-docs"


def docs_index_pattern(prefix: str) -> str:
    """Pattern matching every concrete documents index of this prefix."""
    return f"{prefix}-docs-*"


def docs_index_name(prefix: str, space: EmbeddingSpace, generation: int) -> str:
    """Concrete documents index: ``<prefix>-docs-<space.slug>-<generation>`` (lower case)."""
    if generation < 1:
        raise ValueError("generation starts at 1")
    return f"{prefix}-docs-{space.slug}-{generation}".lower()


def index_generation(name: str) -> int:
    """The trailing ``-<n>`` of a concrete index name (0 when there is none)."""
    m = re.search(r"-(\d+)$", name)
    return int(m.group(1)) if m else 0


def vector_field(space: EmbeddingSpace) -> str:
    """Name of the nested passage vector field, relative to ``passages``: ``vec_<slug>``."""
    return f"vec_{space.slug}"


def _settings_with_analysis(body: dict[str, Any]) -> dict[str, Any]:
    settings = body.setdefault("settings", {})
    settings.setdefault("index", {})["analysis"] = load_mapping_json("analysis.json")
    return body


def docs_template(prefix: str) -> dict[str, Any]:
    """Composable index template body (``PUT _index_template/<prefix>-docs``) for ``<prefix>-docs-*``.

    It carries the analysis settings and every mapping except the space-specific vector field.
    """
    return {
        "index_patterns": [docs_index_pattern(prefix)],
        "priority": 500,
        "template": _settings_with_analysis(load_mapping_json("documents.json")),
        "_meta": {"managed_by": "narrawatch", "description": "narrawatch documents with nested passages"},
    }


def mapping_for(space: EmbeddingSpace) -> dict[str, Any]:
    """The full create-index body (settings + mappings) for a documents index bound to ``space``.

    Adds ``passages.vec_<slug>``: ``dense_vector`` with the space's dims, cosine similarity and
    ``int8_hnsw`` (scalar-quantised HNSW, Elasticsearch >= 8.12), and stores the space in ``_meta``.
    The body repeats what the template holds, so it works with or without the template.
    """
    if space.dim < 1 or space.dim > 4096:
        raise ValueError(f"dense_vector dims must be 1..4096, got {space.dim}")
    body = _settings_with_analysis(load_mapping_json("documents.json"))
    mappings = body["mappings"]
    mappings["_meta"] = {META_SPACE_KEY: space.to_dict(), "space_key": space.key, "managed_by": "narrawatch"}
    mappings["properties"]["passages"]["properties"][vector_field(space)] = {
        "type": "dense_vector",
        "element_type": "float",
        "dims": space.dim,
        "index": True,
        "similarity": "cosine",
        "index_options": {"type": "int8_hnsw", "m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION},
    }
    return body


def space_from_meta(mapping_response: dict[str, Any], index: str) -> EmbeddingSpace | None:
    """The space stored in ``_meta`` of ``index`` in a ``GET <index>/_mapping`` response."""
    entry = mapping_response.get(index) or {}
    meta = (entry.get("mappings") or {}).get("_meta") or {}
    data = meta.get(META_SPACE_KEY)
    return EmbeddingSpace.from_dict(data) if isinstance(data, dict) else None
