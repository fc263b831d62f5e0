"""Narratives' keyword gates as Elasticsearch percolator queries (``<prefix>-narrative-gates``).

A gate is "any of these phrases appears in the title or text" (``match_phrase`` with the
language-neutral ``nw_folded`` analyzer: case-, accent- and ё/е-insensitive). Percolating a
document before or while it is indexed tells which narratives are worth matching semantically.
Reference: https://www.elastic.co/guide/en/elasticsearch/reference/current/query-dsl-percolate-query.html
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from elasticsearch import Elasticsearch
from elasticsearch.helpers import streaming_bulk

from core.documents import Document
from core.errors import IndexBackendError
from index.elastic_bulk import classify_bulk_errors
from index.elastic_mappings import gates_index_name
from index.elastic_query import build_percolate_body, gate_query, parse_percolate_response

__all__ = ["gate_actions", "register_gates", "run_percolate"]

log = logging.getLogger(__name__)


def gate_actions(index: str, gates: Mapping[str, Sequence[str]], stale: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
    """Bulk actions: index one percolator document per narrative with keywords, delete the others."""
    for narrative_id, keywords in sorted(gates.items()):
        phrases = [k.strip() for k in keywords if k.strip()]
        if phrases:
            yield {
                "_op_type": "index",
                "_index": index,
                "_id": narrative_id,
                "_source": {"narrative_id": narrative_id, "keywords": phrases, "query": gate_query(phrases)},
            }
        else:
            yield {"_op_type": "delete", "_index": index, "_id": narrative_id}
    for narrative_id in stale:
        yield {"_op_type": "delete", "_index": index, "_id": narrative_id}


def _existing_ids(client: Elasticsearch, index: str) -> list[str]:
    resp = client.search(index=index, body={"size": 10_000, "_source": False, "query": {"match_all": {}}})
    return [h["_id"] for h in resp.body["hits"]["hits"]]


def register_gates(client: Elasticsearch, index: str, gates: Mapping[str, Sequence[str]], *, replace: bool) -> int:
    """Write the gates (``refresh=wait_for``); returns how many narratives now have a gate."""
    stale = [i for i in _existing_ids(client, index) if i not in gates] if replace else []
    results = list(streaming_bulk(client, gate_actions(index, gates, stale), raise_on_error=False, refresh="wait_for"))
    _, failed = classify_bulk_errors(results)
    if failed:
        raise IndexBackendError("keyword gates rejected: " + "; ".join(f"{f.id}: {f.describe()}" for f in failed))
    stored = sum(1 for k in gates.values() if any(x.strip() for x in k))
    log.info("registered %d keyword gates in %s (%d removed)", stored, index, len(stale))
    return stored


def run_percolate(client: Elasticsearch, prefix: str, doc: Document) -> list[str]:
    """Narrative ids whose gate matches ``doc``; empty when no gate index exists."""
    index = gates_index_name(prefix)
    if not client.indices.exists(index=index):
        return []
    resp = client.search(index=index, body=build_percolate_body(doc.title, doc.text))
    return parse_percolate_response(resp.body)
