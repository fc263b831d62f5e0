"""Elasticsearch-only behaviour against a live server (NARRAWATCH_ES_URL; CI service container).

The shared DocumentIndex behaviour is in tests/contract; here: alias re-embed, space mismatch,
recording a document the server rejects permanently (once, never resent), status.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import EmbeddingSpaceMismatch
from index.elastic import ElasticsearchIndex
from index.embed import HashingEmbedder
from tests.index.test_elastic_bulk import indexed, load_documents

pytestmark = pytest.mark.elasticsearch

URL = os.environ.get("NARRAWATCH_ES_URL", "")


@pytest.fixture
def es_index() -> Iterator[ElasticsearchIndex]:
    if not URL:
        pytest.skip("NARRAWATCH_ES_URL not set")
    index = ElasticsearchIndex.for_tests(URL, HashingEmbedder(dim=32).space, f"nwtest-{uuid.uuid4().hex[:10]}")
    try:
        yield index
    finally:
        index.drop()
        index.close()


def test_upsert_is_idempotent_and_rejections_are_dead_lettered(es_index: ElasticsearchIndex, test_data: Path) -> None:
    docs = load_documents(test_data, 12)
    bad = dataclasses.replace(docs[-1], views=2**70)  # overflows the `long` field: mapper_parsing_exception
    items = indexed([*docs[:-1], bad])
    first = es_index.upsert(items)
    assert set(first.new) == {d.id for d in docs[:-1]}
    assert first.rejected == (bad.id,)
    records = es_index.deadletter.read()
    assert records and records[-1]["id"] == bad.id and records[-1]["status"] == 400 and records[-1]["permanent"]
    assert es_index.upsert(items[-1:]).rejected == (bad.id,)  # refused again without a new record
    assert len(es_index.deadletter.read()) == len(records)
    again = es_index.upsert(items[:-1])
    assert set(again.unchanged) == {d.id for d in docs[:-1]} and not again.new
    assert es_index.get(docs[0].id) == docs[0]
    assert es_index.stats().documents == len(docs) - 1


def test_reopen_with_another_space_is_refused(es_index: ElasticsearchIndex) -> None:
    with pytest.raises(EmbeddingSpaceMismatch):
        ElasticsearchIndex.for_tests(URL, HashingEmbedder(dim=64).space, es_index.prefix)


def test_reindex_switches_alias_atomically(es_index: ElasticsearchIndex, test_data: Path) -> None:
    docs = load_documents(test_data, 10)
    es_index.upsert(indexed(docs))
    result = es_index.reindex(HashingEmbedder(dim=64))
    assert result.documents == len(docs) and result.failed == 0
    assert result.new_index.endswith("-2") and result.old_index == es_index.index_name
    reopened = ElasticsearchIndex.for_tests(URL, HashingEmbedder(dim=64).space, es_index.prefix)
    try:
        assert reopened.index_name == result.new_index
        assert reopened.passage_vectors().vectors.shape[1] == 64
        status = reopened.status()
        assert [i["current"] for i in status["indices"]] == [False, True]
    finally:
        reopened.close()
