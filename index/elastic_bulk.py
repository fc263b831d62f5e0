"""Bulk write helpers for the Elasticsearch backend: actions, per-item outcomes, rejections.

Per-item results follow the bulk API response shape
(https://www.elastic.co/guide/en/elasticsearch/reference/current/docs-bulk.html#bulk-api-response-body):
``{"items": [{"index": {"_id": ..., "status": 201, "result": "created"}}, {"index": {"_id": ...,
"status": 400, "error": {"type": "mapper_parsing_exception", "reason": ...}}}]}``.

A failed item is either **permanent** (the document itself is unacceptable: a 400-class
``mapper_parsing_exception`` / ``document_parsing_exception`` / ``illegal_argument_exception``,
e.g. a date before 1970 in a ``date_nanos`` field or a number past 2^63 in a ``long``) or
**transient** (429, 5xx, version conflicts, cluster blocks, missing index or privileges: the
cluster, not the document). A permanent rejection is recorded once in the rejection log (JSONL)
and reported as ``rejected``; the same content is never sent again. A transient failure is only
logged and left unacknowledged, so the caller retries it on its next pass.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.documents import Document, EmbeddingSpace, IndexedDocument, UpsertResult, utcnow
from core.errors import EmbeddingSpaceMismatch
from core.files import private_file
from core.serialize import document_from_dict, document_to_dict
from index.elastic_mappings import vector_field

__all__ = [
    "PERMANENT_ERROR_TYPES",
    "RETRY_STATUSES",
    "TRANSIENT_ERROR_TYPES",
    "BulkFailure",
    "BulkOutcome",
    "DeadLetterLog",
    "bulk_actions",
    "classify_bulk_errors",
    "count_deleted",
    "delete_actions",
    "document_from_source",
    "document_source",
    "is_permanent",
    "record_bulk_outcome",
    "upsert_result",
    "vectors_as_json",
]

log = logging.getLogger(__name__)

RETRY_STATUSES = (429, 502, 503, 504)
"""Per-item and whole-request statuses retried with exponential backoff by ``streaming_bulk``
(the only layer that retries on a status: the transport retries connection failures only)."""

PERMANENT_ERROR_TYPES = frozenset(
    {
        "mapper_parsing_exception",
        "document_parsing_exception",  # 8.x name of a per-document parse failure
        "illegal_argument_exception",
        "strict_dynamic_mapping_exception",
        "parse_exception",
        "x_content_parse_exception",
        "json_parse_exception",
        "document_source_missing_exception",
    }
)
"""Error types that describe the document itself: sending it again gives the same answer."""

TRANSIENT_ERROR_TYPES = frozenset(
    {
        "es_rejected_execution_exception",
        "circuit_breaking_exception",
        "cluster_block_exception",  # e.g. flood-stage disk watermark (index read-only)
        "version_conflict_engine_exception",
        "unavailable_shards_exception",
        "no_shard_available_action_exception",
        "index_not_found_exception",
        "security_exception",
        "process_cluster_event_timeout_exception",
        "timeout_exception",
    }
)
"""Error types that describe the cluster's state, whatever their status: retry later."""


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


def is_permanent(status: int, error_type: str) -> bool:
    """True when a failed bulk item will fail the same way however often it is sent.

    Transient: 429, every 5xx, 408/409 (timeouts, version conflicts), 401/403/404 (credentials,
    privileges, a missing index: fixable on the cluster) and the types in
    :data:`TRANSIENT_ERROR_TYPES`. Permanent: the types in :data:`PERMANENT_ERROR_TYPES` and any
    other 400 or 413 (the request entity itself). Anything else is transient (retrying an
    unknown failure costs a request; dropping a document silently would lose it).
    """
    if error_type in TRANSIENT_ERROR_TYPES or status == 429 or status >= 500:
        return False
    if status in (401, 403, 404, 408, 409):
        return False
    return error_type in PERMANENT_ERROR_TYPES or status in (400, 413)


@dataclass(frozen=True)
class BulkFailure:
    """One failed bulk item."""

    id: str
    status: int
    error_type: str
    reason: str

    @property
    def permanent(self) -> bool:
        """See :func:`is_permanent`."""
        return is_permanent(self.status, self.error_type)

    def describe(self) -> str:
        """``400 mapper_parsing_exception: failed to parse ...``."""
        return f"{self.status} {self.error_type}: {self.reason}"


@dataclass(frozen=True)
class BulkOutcome:
    """What one bulk write did: acknowledged ids, permanently rejected ids, transient failures."""

    acked: tuple[str, ...] = ()
    rejected: tuple[str, ...] = ()
    transient: tuple[BulkFailure, ...] = ()


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
    """Durable record of documents Elasticsearch rejected permanently
    (``<data_dir>/deadletter/elasticsearch.jsonl``, append-only, fsynced).

    Each line: ``time``, ``index``, ``id``, ``source_id``, ``content_hash``, ``status``,
    ``error_type``, ``reason``, ``permanent`` and the document without vectors (so it can be
    inspected, fixed and replayed). A document is recorded once per content hash:
    :meth:`rejected_hash` tells the backend not to send the same content again. Transient
    failures are not recorded here (they are retried). ``path=None`` keeps the record in memory.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._hashes: dict[str, str] | None = None

    def _known(self) -> dict[str, str]:
        if self._hashes is None:
            hashes: dict[str, str] = {}
            for record in self.read():
                permanent = record.get("permanent")
                if permanent is None:  # a record from before the permanent/transient split
                    permanent = is_permanent(int(record.get("status", 500)), str(record.get("error_type", "")))
                doc = record.get("document") or {}
                content_hash = record.get("content_hash") or doc.get("content_hash")
                if permanent and content_hash:
                    hashes[str(record["id"])] = str(content_hash)
            self._hashes = hashes
        return self._hashes

    def rejected_hash(self, doc_id: str) -> str | None:
        """The content hash with which ``doc_id`` was rejected permanently, or None."""
        with self._lock:
            return self._known().get(doc_id)

    def append(self, failure: BulkFailure, index: str, doc: Document | None) -> bool:
        """Record one permanent rejection (logged at WARNING); False when it was already recorded."""
        content_hash = doc.content_hash if doc is not None else ""
        with self._lock:
            known = self._known()
            if content_hash and known.get(failure.id) == content_hash:
                return False
            log.warning(
                "elasticsearch rejected %s (source %s) in %s permanently: %s",
                failure.id,
                doc.source_id if doc is not None else "?",
                index,
                failure.describe(),
            )
            if content_hash:
                known[failure.id] = content_hash
            if self.path is None:
                return True
            record = {
                "time": utcnow().isoformat(),
                "index": index,
                "id": failure.id,
                "source_id": doc.source_id if doc is not None else None,
                "content_hash": content_hash or None,
                "status": failure.status,
                "error_type": failure.error_type,
                "reason": failure.reason,
                "permanent": failure.permanent,
                "document": document_to_dict(doc) if doc is not None else None,
            }
            line = json.dumps(record, ensure_ascii=False, default=str)
            private_file(self.path, sqlite=False)  # holds copies of documents: 0600, dir 0700
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            return True

    def read(self) -> list[dict[str, Any]]:
        """Every record so far (for tests and the CLI)."""
        if self.path is None or not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]


def record_bulk_outcome(
    results: Iterable[Any], docs_by_id: Mapping[str, Document], deadletter: DeadLetterLog, index: str
) -> BulkOutcome:
    """Classify ``streaming_bulk`` results: record permanent rejections once, log transient ones."""
    acked, failed = classify_bulk_errors(results)
    rejected: list[str] = []
    transient: list[BulkFailure] = []
    for failure in failed:
        if failure.permanent:
            deadletter.append(failure, index, docs_by_id.get(failure.id))
            rejected.append(failure.id)
        else:
            log.warning("elasticsearch did not index %s in %s (will retry): %s", failure.id, index, failure.describe())
            transient.append(failure)
    return BulkOutcome(tuple(acked), tuple(rejected), tuple(transient))


def upsert_result(
    latest: Iterable[IndexedDocument],
    known: Mapping[str, str],
    acked: Iterable[str],
    rejected: Iterable[str] = (),
) -> UpsertResult:
    """The :class:`UpsertResult` of an upsert: ``unchanged`` when the stored content hash is the same,
    else ``new``/``updated`` *only if acknowledged*, ``rejected`` when refused permanently;
    documents that failed transiently appear nowhere (the caller retries them)."""
    ok = set(acked)
    refused = set(rejected)
    new: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []
    rej: list[str] = []
    for item in latest:
        doc = item.document
        if known.get(doc.id) == doc.content_hash:
            unchanged.append(doc.id)
        elif doc.id in ok:
            (updated if doc.id in known else new).append(doc.id)
        elif doc.id in refused:
            rej.append(doc.id)
    return UpsertResult(new=tuple(new), updated=tuple(updated), unchanged=tuple(unchanged), rejected=tuple(rej))


def count_deleted(results: Iterable[Any]) -> int:
    """How many ``delete`` items actually removed a document (``result: deleted``)."""
    n = 0
    for item in results:
        entry = item[1] if isinstance(item, tuple) else item
        info = entry.get("delete", {})
        n += int(info.get("result") == "deleted")
    return n
