"""DocumentIndex.update_reach contract: views and reach counters change, nothing else does, on every backend."""

from __future__ import annotations

from core.documents import SearchFilters, SearchQuery
from index.base import DocumentIndex, ReachUpdate
from index.embed import HashingEmbedder
from tests.contract import embed, load_corpus
from tests.contract.conftest import IndexFactory

EMB = HashingEmbedder(256)
DOCS = load_corpus()
INDEXED = embed(DOCS, EMB)


def _filled(make_index: IndexFactory) -> DocumentIndex:
    index = make_index(EMB.space)
    assert len(index.upsert(INDEXED).new) == len(DOCS)
    return index


def test_update_reach_sets_counters_and_keeps_text_vectors_and_hash(make_index: IndexFactory) -> None:
    index = _filled(make_index)
    doc, other = DOCS[3], DOCS[4]
    before_hashes = index.content_hashes([d.id for d in DOCS])
    before_vectors = index.passage_vectors(SearchFilters(document_ids=(doc.id,)))
    done = index.update_reach(
        [
            ReachUpdate(
                doc.id,
                doc.source_id,
                123_456,
                {"reactions": {"👍": 40, "paid": 2}, "reach_at": "2024-12-01T10:00:00+00:00"},
            ),
            ReachUpdate(other.id, "some-other-source", 9, {}),  # not its owner: left alone
            ReachUpdate("tg:absent/1", doc.source_id, 5, {}),
        ]
    )
    assert done == [doc.id]
    got = index.get(doc.id)
    assert got is not None and got.views == 123_456
    assert got.extra["reactions"] == {"👍": 40, "paid": 2} and got.extra["reach_at"] == "2024-12-01T10:00:00+00:00"
    for key, value in doc.extra.items():  # every other extra key kept
        assert got.extra[key] == value
    assert (got.text, got.title, got.passages, got.content_hash) == (
        doc.text,
        doc.title,
        doc.passages,
        doc.content_hash,
    )
    assert index.content_hashes([d.id for d in DOCS]) == before_hashes
    after_vectors = index.passage_vectors(SearchFilters(document_ids=(doc.id,)))
    assert after_vectors.document_ids == before_vectors.document_ids
    assert (after_vectors.vectors == before_vectors.vectors).all()
    assert index.get(other.id) == other and index.get(other.id).views == other.views  # type: ignore[union-attr]
    # Still found by its words; a second update with views None keeps the views, replaces reactions.
    assert doc.id in [
        h.document_id for h in index.search(SearchQuery(text=doc.passages[0].text[:60], mode="keyword", k=10))
    ]
    assert index.update_reach([ReachUpdate(doc.id, doc.source_id, None, {"reactions": {"👍": 41}})]) == [doc.id]
    again = index.get(doc.id)
    assert again is not None and again.views == 123_456 and again.extra["reactions"] == {"👍": 41}
    # Re-upserting the same text stays "unchanged" (the hash did not move).
    assert index.upsert(embed([doc], EMB)).unchanged == (doc.id,)
    assert index.update_reach([]) == []


def test_update_reach_is_durable(make_index: IndexFactory) -> None:
    index = _filled(make_index)
    doc = DOCS[0]
    assert index.update_reach([ReachUpdate(doc.id, doc.source_id, 77, {"forwards": 3})]) == [doc.id]
    reopened = make_index.reopen(index)
    got = reopened.get(doc.id)
    assert got is not None and got.views == 77 and got.extra["forwards"] == 3
