"""Index lifecycle for the Elasticsearch backend: templates, the ``<prefix>-docs`` alias, status, drop.

Every function takes a connected client and the index prefix; request bodies come from
:mod:`index.elastic_mappings`. The alias switch after a re-embed is one atomic ``_aliases`` call.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from elasticsearch import BadRequestError, Elasticsearch, NotFoundError

from core.documents import EmbeddingSpace
from core.errors import EmbeddingSpaceMismatch, IndexBackendError
from index.elastic_mappings import (
    docs_alias,
    docs_index_name,
    docs_index_pattern,
    docs_template,
    index_generation,
    mapping_for,
    space_from_meta,
)

__all__ = [
    "alias_switch_actions",
    "create_docs_index",
    "current_docs_index",
    "drop_prefix",
    "ensure_docs_index",
    "find_docs_index",
    "index_space",
    "list_docs_indices",
    "prefix_status",
    "put_docs_template",
    "switch_alias",
]

log = logging.getLogger(__name__)

_LEGACY_GATES_SUFFIX = "-narrative-gates"
"""The percolator index of the removed keyword gates; ``drop_prefix`` still deletes it."""


def put_docs_template(client: Elasticsearch, prefix: str) -> None:
    """Install (or update) the composable index template for ``<prefix>-docs-*``."""
    client.indices.put_index_template(name=f"{prefix}-docs", body=docs_template(prefix))


def list_docs_indices(client: Elasticsearch, prefix: str) -> list[str]:
    """Concrete documents indices of this prefix, oldest generation first."""
    resp = client.indices.get(index=docs_index_pattern(prefix), allow_no_indices=True, expand_wildcards="all")
    return sorted(resp.body, key=lambda n: (index_generation(n), n))


def _alias_target(resp: Mapping[str, Any], alias: str) -> str | None:
    names = list(resp)
    if len(names) <= 1:
        return names[0] if names else None
    for name in names:
        if resp[name].get("aliases", {}).get(alias, {}).get("is_write_index"):
            return name
    raise IndexBackendError(f"alias {alias} points to several indices ({', '.join(names)}) and none is the write index")


def current_docs_index(client: Elasticsearch, prefix: str) -> str | None:
    """The concrete index behind ``<prefix>-docs`` (its write index), or None."""
    try:
        resp = client.indices.get_alias(name=docs_alias(prefix))
    except NotFoundError:
        return None
    return _alias_target(resp.body, docs_alias(prefix))


def index_space(client: Elasticsearch, index: str) -> EmbeddingSpace | None:
    """The embedding space stored in ``index``'s mapping ``_meta``."""
    resp = client.indices.get_mapping(index=index)
    return space_from_meta(resp.body, index)


def create_docs_index(client: Elasticsearch, prefix: str, space: EmbeddingSpace, *, with_alias: bool) -> str:
    """Create the next-generation index ``<prefix>-docs-<slug>-<n>`` for ``space``.

    ``with_alias=True`` adds it as the write index of ``<prefix>-docs`` in the same request (first
    creation); a re-embed creates it without and switches later with :func:`switch_alias`.
    """
    put_docs_template(client, prefix)
    existing = list_docs_indices(client, prefix)
    generation = max((index_generation(n) for n in existing), default=0) + 1
    name = docs_index_name(prefix, space, generation)
    body = mapping_for(space)
    kwargs: dict[str, Any] = {"index": name, "settings": body["settings"], "mappings": body["mappings"]}
    if with_alias:
        kwargs["aliases"] = {docs_alias(prefix): {"is_write_index": True}}
    client.indices.create(**kwargs)
    log.info("created Elasticsearch index %s for %s", name, space.key)
    return name


def find_docs_index(client: Elasticsearch, prefix: str, space: EmbeddingSpace) -> str | None:
    """The current documents index checked against ``space``, or None when there is none yet.

    Read-only: creates nothing (reads on a cluster without our index see an empty index).
    Raises :class:`EmbeddingSpaceMismatch` when the current index holds another space.
    """
    current = current_docs_index(client, prefix)
    if current is None:
        return None
    _check_space(client, current, space)
    return current


def ensure_docs_index(client: Elasticsearch, prefix: str, space: EmbeddingSpace, *, create: bool = True) -> str:
    """The current documents index, created for ``space`` when the alias does not exist yet.

    Raises :class:`EmbeddingSpaceMismatch` when the current index holds another space.
    """
    current = current_docs_index(client, prefix)
    if current is None:
        if not create:
            raise IndexBackendError(f"no index behind alias {docs_alias(prefix)}; run `narrawatch index create`")
        try:
            current = create_docs_index(client, prefix, space, with_alias=True)
        except BadRequestError as exc:  # another process created it first
            if "resource_already_exists_exception" not in str(exc):
                raise
            current = current_docs_index(client, prefix)
            if current is None:
                raise
    _check_space(client, current, space)
    return current


def _check_space(client: Elasticsearch, current: str, space: EmbeddingSpace) -> None:
    stored = index_space(client, current)
    if stored is None:
        raise IndexBackendError(f"index {current} has no embedding space in its _meta; not created by narrawatch?")
    if stored.key != space.key:
        raise EmbeddingSpaceMismatch(
            f"Elasticsearch index {current} holds vectors of {stored.key}; the configured embedder is {space.key}."
            " Run `narrawatch index reindex` to re-embed into a new index, or configure the old model."
        )


def alias_switch_actions(alias: str, old: str | None, new: str) -> list[dict[str, Any]]:
    """``_aliases`` actions moving ``alias`` from ``old`` to ``new`` atomically."""
    actions: list[dict[str, Any]] = []
    if old is not None:
        actions.append({"remove": {"index": old, "alias": alias}})
    actions.append({"add": {"index": new, "alias": alias, "is_write_index": True}})
    return actions


def switch_alias(client: Elasticsearch, prefix: str, new: str) -> str | None:
    """Point ``<prefix>-docs`` at ``new`` in one atomic request; returns the previous index."""
    old = current_docs_index(client, prefix)
    client.indices.update_aliases(actions=alias_switch_actions(docs_alias(prefix), old, new))
    log.info("alias %s: %s -> %s", docs_alias(prefix), old, new)
    return old


def prefix_status(client: Elasticsearch, prefix: str) -> dict[str, Any]:
    """What ``narrawatch index status`` prints: server, alias, every generation with its space and counts."""
    info = client.info().body
    current = current_docs_index(client, prefix)
    indices: list[dict[str, Any]] = []
    for name in list_docs_indices(client, prefix):
        space = index_space(client, name)
        stats = client.indices.stats(index=name, metric="store").body
        indices.append(
            {
                "name": name,
                "generation": index_generation(name),
                "current": name == current,
                "documents": int(client.count(index=name).body["count"]),
                "size_bytes": int(stats["_all"]["primaries"]["store"]["size_in_bytes"]),
                "embedding_space": space.to_dict() if space else None,
            }
        )
    return {
        "server": {"version": info.get("version", {}).get("number"), "cluster": info.get("cluster_name")},
        "alias": docs_alias(prefix),
        "current": current,
        "indices": indices,
    }


def drop_prefix(client: Elasticsearch, prefix: str) -> list[str]:
    """Delete every index and the template of this prefix (tests; ``narrawatch index drop``).

    Names are listed first because wildcard deletes are refused by default
    (``action.destructive_requires_name: true`` since 8.0).
    """
    names = list_docs_indices(client, prefix)
    legacy_gates = prefix + _LEGACY_GATES_SUFFIX
    if client.indices.exists(index=legacy_gates):
        names.append(legacy_gates)
    if names:
        client.indices.delete(index=",".join(names), ignore_unavailable=True)
    with contextlib.suppress(NotFoundError):
        client.indices.delete_index_template(name=f"{prefix}-docs")
    return names
