"""Bulk write helpers for the Elasticsearch backend: actions, per-item outcomes, dead letters.

Per-item results follow the bulk API response shape
(https://www.elastic.co/guide/en/elasticsearch/reference/current/docs-bulk.html#bulk-api-response-body):
``{"items": [{"index": {"_id": ..., "status": 201, "result": "created"}}, {"index": {"_id": ...,
"status": 400, "error": {"type": "mapper_parsing_exception", "reason": ...}}}]}``.

A rejected document is appended to a dead-letter JSONL file with its id and reason and is *not*
reported as acknowledged; the rest of the batch goes on.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.documents import Document, EmbeddingSpace, IndexedDocument, UpsertResult, utcnow
from core.errors import EmbeddingSpaceMismatch
from core.serialize import document_from_dict, document_to_dict
from index.elastic_mappings import vector_field

__all__ = [
    "RETRY_STATUSES",
    "BulkFailure",
    "DeadLetterLog",
    "bulk_actions",
    "classify_bulk_errors",
    "count_deleted",
    "delete_actions",
    "document_from_source",
    "document_source",
    "record_bulk_outcome",
    "upsert_result",
    "vectors_as_json",
]

log = logging.getLogger(__name__)

RETRY_STATUSES = (429, 502, 503, 504)
"""Per-item and whole-request statuses retried with exponential backoff by ``streaming_bulk``."""


def vectors_as_json(vectors: np.ndarray) -> list[list[float]]:
    """Float32 rows as JSON lists, rounded to 7 decimals (|error| <= 5e-8, a third of the bytes)."""
    out: list[list[float]] = np.asarray(vectors, dtype=np.float64).round(7).tolist()
    return out


def document_source(item: IndexedDocument, space: EmbeddingSpace) -> dict[str, Any]:
    """The ``_source`` stored for one document: :func:`core.serialize.document_to_dict` plus, per
    passage, the document title and ``vec_<slug>``. Raises :class:`EmbeddingSpaceMismatch` on a
    wrong dimension."""
    doc = item.document
    if item.vectors.shape[1:] != (space.dim,) and len(doc.passages):
        raise EmbeddingSpaceMismatch(
            f"{doc.id}: vectors of dimension {item.vectors.shape[1:]} offered to an index of {space.dim}-d {space.key}"
        )
    src = document_to_dict(doc)
    field = vector_field(space)
    for entry, vec in zip(src["passages"], vectors_as_json(item.vectors), strict=True):
        if doc.title:
            entry["title"] = doc.title  # searched with the passage (title + passage, as the embedded backend)
        entry[field] = vec
    return src


def document_from_source(src: Mapping[str, Any]) -> Document:
    """Rebuild a :class:`Document` from a stored ``_source`` (vector fields are ignored)."""
    data = dict(src)
    data.setdefault("text", "\n\n".join(p.get("text", "") for p in data.get("passages", [])))
    doc = document_from_dict(data)
    passages = tuple(sorted(doc.passages, key=lambda p: p.index))
    return doc if passages == doc.passages else dataclasses.replace(doc, passages=passages)


def bulk_actions(docs: Iterable[IndexedDocument], space: EmbeddingSpace, index: str) -> Iterator[dict[str, Any]]:
    """``index`` actions for ``elasticsearch.helpers.streaming_bulk``; ``_id`` is the document id,
    so a retried or repeated write replaces instead of duplicating."""
    for item in docs:
        yield {
            "_op_type": "index",
            "_index": index,
            "_id": item.document.id,
            "_source": document_source(item, space),
        }


def delete_actions(doc_ids: Iterable[str], index: str) -> Iterator[dict[str, Any]]:
    """``delete`` actions for ``streaming_bulk``."""
    for doc_id in doc_ids:
        yield {"_op_type": "delete", "_index": index, "_id": doc_id}


@dataclass(frozen=True)
class BulkFailure:
    """One rejected bulk item."""

    id: str
    status: int
    error_type: str
    reason: str

    def describe(self) -> str:
        """``400 mapper_parsing_exception: failed to parse ...``."""
        return f"{self.status} {self.error_type}: {self.reason}"


def _reason(error: Any) -> tuple[str, str]:
    if isinstance(error, Mapping):
        etype = str(error.get("type", "error"))
        reason = str(error.get("reason", ""))
        caused = error.get("caused_by")
        if isinstance(caused, Mapping) and caused.get("reason"):
            reason = f"{reason} (caused by {caused.get('type', '')}: {caused.get('reason')})"
        return etype, reason
    return "error", str(error or "")


def classify_bulk_errors(items: Iterable[Any]) -> tuple[list[str], list[BulkFailure]]:
    """Split bulk response items into acknowledged ids and failures, in input order.

    Accepts raw response items (``{"index": {...}}``) or ``streaming_bulk`` yields
    (``(ok, {"index": {...}})``). A 2xx status is acknowledged; for ``delete`` a 404
    (``not_found``) is acknowledged too (the document is gone either way).
    """
    acked: list[str] = []
    failed: list[BulkFailure] = []
    for item in items:
        entry = item[1] if isinstance(item, tuple) else item
        ((op, info),) = entry.items()
        status = int(info.get("status", 500))
        doc_id = str(info.get("_id", ""))
        if 200 <= status < 300 or (op == "delete" and status == 404 and "error" not in info):
            acked.append(doc_id)
        else:
            etype, reason = _reason(info.get("error") or info.get("exception"))
            failed.append(BulkFailure(doc_id, status, etype, reason))
    return acked, failed


class DeadLetterLog:
    """Append-only JSONL of documents Elasticsearch rejected (``<data_dir>/deadletter/elasticsearch.jsonl``).

    Each line: ``time``, ``index``, ``id``, ``status``, ``error_type``, ``reason`` and the document
    without vectors (so it can be inspected and replayed). ``path=None`` logs only.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()

    def append(self, failure: BulkFailure, index: str, doc: Document | None) -> None:
        """Record one rejection (and log it at WARNING)."""
        log.warning("elasticsearch rejected %s in %s: %s", failure.id, index, failure.describe())
        if self.path is None:
            return
        record = {
            "time": utcnow().isoformat(),
            "index": index,
            "id": failure.id,
            "status": failure.status,
            "error_type": failure.error_type,
            "reason": failure.reason,
            "document": document_to_dict(doc) if doc is not None else None,
        }
        line = json.dumps(record, ensure_ascii=False, default=str)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")

    def read(self) -> list[dict[str, Any]]:
        """Every record so far (for tests and the CLI)."""
        if self.path is None or not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]


def record_bulk_outcome(
    results: Iterable[Any], docs_by_id: Mapping[str, Document], deadletter: DeadLetterLog, index: str
) -> list[str]:
    """Classify ``streaming_bulk`` results, dead-letter each failure, return the acknowledged ids."""
    acked, failed = classify_bulk_errors(results)
    for failure in failed:
        deadletter.append(failure, index, docs_by_id.get(failure.id))
    return acked


def upsert_result(latest: Iterable[IndexedDocument], known: Mapping[str, str], acked: Iterable[str]) -> UpsertResult:
    """The :class:`UpsertResult` of an upsert: ``unchanged`` when the stored content hash is the same,
    else ``new``/``updated`` *only if acknowledged*; rejected documents appear nowhere."""
    ok = set(acked)
    new: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []
    for item in latest:
        doc = item.document
        if known.get(doc.id) == doc.content_hash:
            unchanged.append(doc.id)
        elif doc.id in ok:
            (updated if doc.id in known else new).append(doc.id)
    return UpsertResult(new=tuple(new), updated=tuple(updated), unchanged=tuple(unchanged))


def count_deleted(results: Iterable[Any]) -> int:
    """How many ``delete`` items actually removed a document (``result: deleted``)."""
    n = 0
    for item in results:
        entry = item[1] if isinstance(item, tuple) else item
        info = entry.get("delete", {})
        n += int(info.get("result") == "deleted")
    return n
