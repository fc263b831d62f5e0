"""Bulk actions, per-item outcomes and the dead-letter file of the Elasticsearch backend (no server).

Bulk response items follow https://www.elastic.co/guide/en/elasticsearch/reference/current/docs-bulk.html
(``{"items": [{"index": {"_id", "status", "result" | "error"}}]}``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from core.documents import Document, IndexedDocument, Passage, document_id_for_telegram
from core.errors import EmbeddingSpaceMismatch
from index.elastic_bulk import (
    DeadLetterLog,
    bulk_actions,
    classify_bulk_errors,
    count_deleted,
    delete_actions,
    document_from_source,
    document_source,
    is_permanent,
    record_bulk_outcome,
    upsert_result,
)
from index.elastic_mappings import vector_field
from index.embed import HashingEmbedder

EMBEDDER = HashingEmbedder(dim=32)
SPACE = EMBEDDER.space


def load_documents(test_data: Path, limit: int = 40) -> list[Document]:
    """Real Telegram posts (tests/data/index/posts.jsonl) as Documents, passages = paragraphs."""
    docs = []
    with (test_data / "index" / "posts.jsonl").open(encoding="utf-8") as fh:
        for line in list(fh)[:limit]:
            post = json.loads(line)
            text = post["text"].strip()
            paras, start = [], 0
            for chunk in text.split("\n\n"):
                if chunk.strip():
                    pos = text.index(chunk, start)
                    paras.append(Passage(len(paras), chunk.strip(), pos))
                    start = pos + len(chunk)
            channel = str(post["channel_id"])
            when = datetime.fromisoformat(post["date"]).astimezone(UTC)
            docs.append(
                Document(
                    id=document_id_for_telegram(channel, post["message_id"]),
                    source_id=f"tg-{abs(post['channel_id']) % 7}",
                    kind="telegram",
                    url=f"https://t.me/c/{abs(post['channel_id'])}/{post['message_id']}",
                    title="",
                    text=text,
                    language="ru",
                    published=when,
                    fetched=when,
                    passages=tuple(paras),
                    content_hash=hashlib.sha256(text.encode()).hexdigest(),
                    fingerprint=(1, 2, 4294967295),
                    outlet=post["channel"],
                    views=1234,
                    media=("photo",),
                    extra={"category_llm": post["category_llm"]},
                )
            )
    return docs


def indexed(docs: list[Document]) -> list[IndexedDocument]:
    return [IndexedDocument(d, EMBEDDER.embed_documents([p.text for p in d.passages])) for d in docs]


def test_bulk_actions_use_document_ids_and_carry_one_vector_per_passage(test_data: Path) -> None:
    items = indexed(load_documents(test_data, 10))
    actions = list(bulk_actions(items, SPACE, "narrawatch-docs"))
    assert [a["_id"] for a in actions] == [i.document.id for i in items]
    assert {a["_op_type"] for a in actions} == {"index"} and {a["_index"] for a in actions} == {"narrawatch-docs"}
    field = vector_field(SPACE)
    for action, item in zip(actions, items, strict=True):
        passages = action["_source"]["passages"]
        assert len(passages) == len(item.document.passages) > 0
        stored = np.array([p[field] for p in passages], dtype=np.float32)
        assert stored.shape == (len(passages), 32)
        assert np.abs(stored - item.vectors).max() <= 1e-7  # 7 decimals + float32 rounding
        json.dumps(action["_source"], ensure_ascii=False)  # serialisable as-is
        assert all(p.get("title", "") == item.document.title for p in passages)


def test_source_round_trips_to_the_same_document(test_data: Path) -> None:
    for item in indexed(load_documents(test_data, 20)):
        src = json.loads(json.dumps(document_source(item, SPACE)))  # through JSON, as ES stores it
        back = document_from_source(src)
        assert back == item.document
        assert back.extra == item.document.extra and back.fingerprint == (1, 2, 4294967295)


def test_wrong_dimension_is_an_embedding_space_mismatch(test_data: Path) -> None:
    (doc,) = load_documents(test_data, 1)
    wrong = IndexedDocument(doc, np.ones((len(doc.passages), 16), np.float32))
    with pytest.raises(EmbeddingSpaceMismatch):
        document_source(wrong, SPACE)


# A bulk response with per-item failures, shaped as in the bulk API reference.
BULK_RESPONSE = {
    "took": 30,
    "errors": True,
    "items": [
        {
            "index": {
                "_index": "nw-docs-x-1",
                "_id": "tg:a/1",
                "_version": 1,
                "result": "created",
                "status": 201,
                "_shards": {"total": 1, "successful": 1, "failed": 0},
                "_seq_no": 0,
                "_primary_term": 1,
            }
        },
        {
            "index": {
                "_index": "nw-docs-x-1",
                "_id": "tg:a/2",
                "status": 400,
                "error": {
                    "type": "mapper_parsing_exception",
                    "reason": "failed to parse field [passages.vec_x] of type [dense_vector]",
                    "caused_by": {
                        "type": "illegal_argument_exception",
                        "reason": "The [dense_vector] field [passages.vec_x] has a different number"
                        " of dimensions [16] than defined in the mapping [32]",
                    },
                },
            }
        },
        {
            "index": {
                "_index": "nw-docs-x-1",
                "_id": "tg:a/3",
                "status": 429,
                "error": {
                    "type": "es_rejected_execution_exception",
                    "reason": "rejected execution of coordinating operation",
                },
            }
        },
        {"index": {"_index": "nw-docs-x-1", "_id": "tg:a/4", "_version": 2, "result": "updated", "status": 200}},
    ],
}


def test_classify_bulk_errors_on_documented_response() -> None:
    acked, failed = classify_bulk_errors(BULK_RESPONSE["items"])
    assert acked == ["tg:a/1", "tg:a/4"]
    assert [(f.id, f.status, f.error_type) for f in failed] == [
        ("tg:a/2", 400, "mapper_parsing_exception"),
        ("tg:a/3", 429, "es_rejected_execution_exception"),
    ]
    assert "different number of dimensions" in failed[0].reason
    # streaming_bulk yields (ok, item) pairs with the same item dicts
    pairs = [(200 <= next(iter(i.values()))["status"] < 300, i) for i in BULK_RESPONSE["items"]]
    assert classify_bulk_errors(pairs) == (acked, failed)


def test_permanent_rejections_are_recorded_and_transient_failures_are_not(test_data: Path, tmp_path: Path) -> None:
    docs = load_documents(test_data, 4)
    ids = [d.id for d in docs]
    items = []
    for i, entry in enumerate(BULK_RESPONSE["items"]):
        ((op, info),) = entry.items()
        items.append((info["status"] < 300, {op: {**info, "_id": ids[i]}}))
    log = DeadLetterLog(tmp_path / "deadletter" / "elasticsearch.jsonl")
    outcome = record_bulk_outcome(items, {d.id: d for d in docs}, log, "nw-docs-x-1")
    assert outcome.acked == (ids[0], ids[3])
    assert outcome.rejected == (ids[1],)  # 400 mapper_parsing_exception: permanent
    assert [f.id for f in outcome.transient] == [ids[2]]  # 429: retried on the next pass, not recorded
    records = log.read()
    assert [r["id"] for r in records] == [ids[1]]
    assert records[0]["status"] == 400 and records[0]["error_type"] == "mapper_parsing_exception"
    assert records[0]["source_id"] == docs[1].source_id and records[0]["content_hash"] == docs[1].content_hash
    assert records[0]["permanent"] is True
    assert records[0]["document"]["text"] == docs[1].text  # replayable, without vectors
    assert all(set(p) == {"index", "text", "start"} for p in records[0]["document"]["passages"])

    # docs[3] existed with another hash (updated), docs[2] existed unchanged, docs[0] new, docs[1] rejected.
    known = {ids[3]: "old", ids[2]: docs[2].content_hash}
    result = upsert_result(indexed(docs), known, outcome.acked, outcome.rejected)
    assert result.new == (ids[0],)
    assert result.updated == (ids[3],)
    assert result.unchanged == (ids[2],)
    assert result.rejected == (ids[1],)
    # A transient failure is in no list: the caller sends it again.
    result = upsert_result(indexed(docs), {}, outcome.acked, outcome.rejected)
    assert ids[2] not in result.new + result.updated + result.unchanged + result.rejected


# Per-item errors as Elasticsearch words them (bulk API item ``error`` objects).
_DATE_BEFORE_EPOCH = {
    "type": "document_parsing_exception",
    "reason": "[1:241] failed to parse field [published] of type [date_nanos] in document with id 'x'",
    "caused_by": {
        "type": "illegal_argument_exception",
        "reason": "date[1969-07-20T20:17:40Z] is before the epoch in 1970 and cannot be stored in nanosecond"
        " resolution",
    },
}
_LONG_OVERFLOW = {
    "type": "mapper_parsing_exception",
    "reason": "failed to parse field [views] of type [long] in document with id 'x'",
    "caused_by": {"type": "input_coercion_exception", "reason": "Numeric value (9223372036854775808) out of range"},
}


@pytest.mark.parametrize(
    ("status", "error", "permanent"),
    [
        (400, _DATE_BEFORE_EPOCH, True),
        (400, _LONG_OVERFLOW, True),
        (400, {"type": "illegal_argument_exception", "reason": "Limit of total fields [1000] has been exceeded"}, True),
        (400, {"type": "strict_dynamic_mapping_exception", "reason": "mapping set to strict"}, True),
        (
            429,
            {"type": "es_rejected_execution_exception", "reason": "rejected execution of coordinating operation"},
            False,
        ),
        (429, {"type": "circuit_breaking_exception", "reason": "[parent] Data too large"}, False),
        (409, {"type": "version_conflict_engine_exception", "reason": "[x]: version conflict"}, False),
        (503, {"type": "unavailable_shards_exception", "reason": "primary shard is not active"}, False),
        (500, {"type": "exception", "reason": "boom"}, False),
        (
            403,
            {"type": "cluster_block_exception", "reason": "index [x] blocked by: [FORBIDDEN/8/index write (api)]"},
            False,
        ),
        (429, {"type": "cluster_block_exception", "reason": "disk usage exceeded flood-stage watermark"}, False),
        (404, {"type": "index_not_found_exception", "reason": "no such index [nw-docs]"}, False),
        (403, {"type": "security_exception", "reason": "action [indices:data/write/bulk[s]] is unauthorized"}, False),
    ],
)
def test_bulk_item_errors_are_classified_permanent_or_transient(
    status: int, error: dict[str, object], permanent: bool
) -> None:
    _, (failure,) = classify_bulk_errors([{"index": {"_id": "tg:a/9", "status": status, "error": error}}])
    assert failure.permanent is permanent
    assert is_permanent(status, str(error["type"])) is permanent


def test_a_rejection_is_recorded_once_and_survives_a_restart(test_data: Path, tmp_path: Path) -> None:
    doc = load_documents(test_data, 1)[0]
    path = tmp_path / "deadletter" / "elasticsearch.jsonl"
    item = (False, {"index": {"_id": doc.id, "status": 400, "error": _DATE_BEFORE_EPOCH}})
    log = DeadLetterLog(path)
    for _ in range(3):  # three passes
        assert record_bulk_outcome([item], {doc.id: doc}, log, "nw-docs-x-1").rejected == (doc.id,)
    assert len(log.read()) == 1
    again = DeadLetterLog(path)  # a new process reads the durable record
    assert again.rejected_hash(doc.id) == doc.content_hash
    assert again.rejected_hash("tg:other/1") is None
    # Changed content is a new candidate: recorded again when it is rejected again.
    changed = dataclasses.replace(doc, content_hash="0" * 64)
    record_bulk_outcome([item], {doc.id: changed}, again, "nw-docs-x-1")
    assert [r["content_hash"] for r in again.read()] == [doc.content_hash, "0" * 64]


def test_records_from_before_the_split_count_only_if_permanent(tmp_path: Path) -> None:
    path = tmp_path / "elasticsearch.jsonl"
    old = [
        {"id": "a", "status": 400, "error_type": "mapper_parsing_exception", "document": {"content_hash": "h1"}},
        {"id": "b", "status": 429, "error_type": "es_rejected_execution_exception", "document": {"content_hash": "h2"}},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in old), encoding="utf-8")
    log = DeadLetterLog(path)
    assert log.rejected_hash("a") == "h1" and log.rejected_hash("b") is None


def test_delete_actions_and_counts() -> None:
    assert list(delete_actions(["a", "b"], "nw-docs")) == [
        {"_op_type": "delete", "_index": "nw-docs", "_id": "a"},
        {"_op_type": "delete", "_index": "nw-docs", "_id": "b"},
    ]
    items = [
        (True, {"delete": {"_id": "a", "status": 200, "result": "deleted"}}),
        (False, {"delete": {"_id": "b", "status": 404, "result": "not_found"}}),
    ]
    assert count_deleted(items) == 1
    assert classify_bulk_errors(items) == (["a", "b"], [])
