"""DocumentIndex contract: behaviour every backend must show, written only against the protocol."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta

import numpy as np
import pytest

from core.documents import EmbeddingSpace, SearchFilters, SearchQuery
from core.errors import EmbeddingSpaceMismatch
from index.base import DocumentIndex, in_filters
from index.embed import HashingEmbedder
from tests.contract import embed, load_corpus, make_document
from tests.contract.conftest import IndexFactory

EMB = HashingEmbedder(256)
DOCS = load_corpus()
BY_ID = {d.id: d for d in DOCS}
INDEXED = embed(DOCS, EMB)


def _filled(make_index: IndexFactory) -> DocumentIndex:
    index = make_index(EMB.space)
    result = index.upsert(INDEXED)
    assert sorted(result.new) == sorted(BY_ID)
    return index


def _ids(hits: list) -> list[str]:  # type: ignore[type-arg]
    return [h.document_id for h in hits]


def _semantic_all(index: DocumentIndex, filters: SearchFilters) -> set[str]:
    q = SearchQuery(vector=EMB.embed_query("Москва"), mode="semantic", k=len(DOCS) + 10, filters=filters)
    return set(_ids(index.search(q)))


def _reference(filters: SearchFilters) -> set[str]:
    return {d.id for d in DOCS if in_filters(d, filters)}


def _with_word(pattern: str) -> set[str]:
    rx = re.compile(pattern, re.IGNORECASE)
    return {d.id for d in DOCS if rx.search(d.title + "\n" + d.text)}


# -- upsert and get -----------------------------------------------------------------------------


def test_upsert_is_idempotent_and_replaces_updated_documents(make_index: IndexFactory) -> None:
    index = _filled(make_index)
    again = index.upsert(INDEXED[:50])
    assert again.new == () and again.updated == () and sorted(again.unchanged) == sorted(d.id for d in DOCS[:50])

    old = DOCS[7]
    marker = "Лжедмитриевщина"
    assert marker.lower() not in old.text.lower()
    changed = make_document(
        doc_id=old.id,
        source_id=old.source_id,
        kind=old.kind,
        url=old.url,
        title=old.title,
        text=f"{marker} в новостях.\n\nВторой абзац обновлённой версии.",
        language=old.language,
        published=old.published,
    )
    result = index.upsert([*embed([changed], EMB), INDEXED[8]])
    assert result.updated == (old.id,) and result.unchanged == (DOCS[8].id,) and result.new == ()
    got = index.get(old.id)
    assert got is not None and got.text == changed.text and len(got.passages) == 2
    assert index.content_hashes([old.id, "missing"]) == {old.id: changed.content_hash}
    assert _ids(index.search(SearchQuery(text=marker.lower(), mode="keyword")))[:1] == [old.id]
    # The replaced passages are gone from keyword and vector search.
    old_words = old.passages[-1].text
    hits = index.search(SearchQuery(vector=EMB.embed_query(old_words), mode="semantic", k=3, group_by_document=False))
    assert all(h.snippet != old_words for h in hits)
    stats = index.stats()
    assert stats.documents == len(DOCS)
    assert stats.passages == sum(len(d.passages) for d in DOCS) - len(old.passages) + 2


def test_get_round_trips_every_field(make_index: IndexFactory) -> None:
    index = _filled(make_index)
    for doc in (DOCS[3], DOCS[4], DOCS[-1]):
        got = index.get(doc.id)
        assert got == doc
        assert got is not None and got.extra == doc.extra
        assert got.published.utcoffset() == timedelta(0) and got.fetched == doc.fetched
        assert got.fingerprint == doc.fingerprint and got.links == doc.links
    assert index.get(DOCS[3].id).forwarded_from == "rian_ru"  # type: ignore[union-attr]
    assert index.get("tg:nope/1") is None


# -- keyword ------------------------------------------------------------------------------------


def test_keyword_search_folds_case_and_yo(make_index: IndexFactory) -> None:
    index = _filled(make_index)
    for word in ("режиссёра", "козлёнком"):
        expected = _with_word(word)
        assert len(expected) == 1
        for query in (word.replace("ё", "е"), word.upper(), word.replace("ё", "е").upper()):
            hits = index.search(SearchQuery(text=query, mode="keyword", k=5))
            assert _ids(hits)[:1] == list(expected), query
            assert hits[0].keyword_rank == 1 and hits[0].semantic_rank is None


def test_keyword_search_stems_russian_and_english(make_index: IndexFactory) -> None:
    if not make_index.stems_russian:
        pytest.skip(f"{make_index.name} does not claim stemming")
    index = _filled(make_index)
    only_genitive = _with_word(r"\bвыборов\b") - _with_word(r"\bвыборы\b")
    assert only_genitive
    found = set(_ids(index.search(SearchQuery(text="выборы", mode="keyword", k=50))))
    assert only_genitive <= found
    assert found <= _with_word(r"\bвыбор")
    en = _with_word(r"\bsigned\b") - _with_word(r"\bsign\b")
    assert en and en <= set(_ids(index.search(SearchQuery(text="sign", mode="keyword", k=50))))


def test_keyword_hits_carry_document_fields_and_best_passage(make_index: IndexFactory) -> None:
    index = _filled(make_index)
    doc = next(d for d in DOCS if d.language == "en" and "Napoli" in d.title)
    hit = index.search(SearchQuery(text="Fenerbahce Koulibaly", mode="keyword", k=3))[0]
    assert (hit.document_id, hit.url, hit.title, hit.source_id, hit.language, hit.published) == (
        doc.id,
        doc.url,
        doc.title,
        doc.source_id,
        "en",
        doc.published,
    )
    assert "Fenerbahce" in hit.snippet and hit.snippet == doc.passages[hit.passage_index].text
    assert hit.score > 0


# -- semantic and hybrid ------------------------------------------------------------------------


def test_semantic_search_returns_the_nearest_passage(make_index: IndexFactory) -> None:
    # semantic_score is the cosine of the query and the stored float passage vector on every
    # backend. Elasticsearch scores nested kNN inner_hits on int8-quantised vectors (errors
    # ~1e-2, elasticsearch#156332), so its backend recomputes the cosine client-side from the
    # stored float vectors; 1e-4 covers float16 storage (embedded-float16 rescoring is exact)
    # and the 7-decimal rounding of vectors sent to Elasticsearch (|error| <= 5e-8 per element).
    index = _filled(make_index)
    for doc in (DOCS[10], DOCS[120], DOCS[-3]):
        p = doc.passages[-1]
        query = EMB.embed_query(p.text)
        hits = index.search(SearchQuery(vector=query, mode="semantic", k=5, group_by_document=False))
        assert hits[0].document_id == doc.id and hits[0].snippet == p.text
        assert hits[0].semantic_rank == 1 and hits[0].semantic_score == pytest.approx(1.0, abs=1e-4)
        for h in hits:  # not only the top one: every reported score is the exact cosine
            exact = float(EMB.embed_query(BY_ID[h.document_id].passages[h.passage_index].text) @ query)
            assert h.semantic_score == pytest.approx(exact, abs=1e-4)
        hits = index.search(SearchQuery(vector=query, mode="semantic", k=5))
        assert hits[0].document_id == doc.id and hits[0].snippet == p.text
        assert hits[0].semantic_rank == 1 and hits[0].semantic_score == pytest.approx(1.0, abs=1e-4)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert len(set(_ids(hits))) == len(hits)


def test_hybrid_fuses_keyword_and_semantic(make_index: IndexFactory) -> None:
    index = _filled(make_index)
    kw_doc = next(iter(_with_word("козлёнком")))
    sem_doc = DOCS[120]
    vector = EMB.embed_query(sem_doc.passages[-1].text)
    hits = index.search(SearchQuery(text="козленком", vector=vector, mode="hybrid", k=10))
    ids = _ids(hits)
    assert kw_doc in ids[:2] and sem_doc.id in ids[:2]
    by_id = {h.document_id: h for h in hits}
    assert by_id[kw_doc].keyword_rank == 1 and by_id[sem_doc.id].semantic_rank == 1
    # A document first in both rankings wins the fusion outright.
    passage = next(p.text for p in BY_ID[kw_doc].passages if "козлёнком" in p.text)
    both = index.search(SearchQuery(text="козленком", vector=EMB.embed_query(passage), mode="hybrid", k=5))
    assert both[0].document_id == kw_doc and both[0].keyword_rank == 1 and both[0].semantic_rank == 1
    assert both[0].score > both[1].score


def test_group_by_document(make_index: IndexFactory) -> None:
    index = _filled(make_index)
    doc = max(DOCS, key=lambda d: len(d.passages))
    vector = EMB.embed_query(doc.text)
    flat = index.search(SearchQuery(vector=vector, mode="semantic", k=10, group_by_document=False))
    mine = [h for h in flat if h.document_id == doc.id]
    assert len(mine) >= 2
    assert len({(h.document_id, h.passage_index) for h in flat}) == len(flat)
    grouped = index.search(SearchQuery(vector=vector, mode="semantic", k=10))
    assert len(set(_ids(grouped))) == len(grouped) == 10
    assert (grouped[0].document_id, grouped[0].passage_index) == (flat[0].document_id, flat[0].passage_index)
    best = next(h for h in grouped if h.document_id == doc.id)
    assert best.passage_index == mine[0].passage_index and best.score == pytest.approx(mine[0].score)
    # Grouped order is the order of each document's first passage in the flat ranking.
    first_seen = list(dict.fromkeys(_ids(flat)))
    assert _ids(grouped)[: len(first_seen)] == first_seen


# -- filters ------------------------------------------------------------------------------------


def test_each_filter_and_their_combination(make_index: IndexFactory) -> None:
    index = _filled(make_index)
    sources = Counter(d.source_id for d in DOCS if d.kind == "telegram")
    top_source = sources.most_common(1)[0][0]
    middle = sorted(d.published for d in DOCS if d.language == "ru")[100]
    picked = tuple(d.id for d in DOCS[::9])
    cases = [
        SearchFilters(sources=(top_source, "koreatimes")),
        SearchFilters(languages=("en",)),
        SearchFilters(kinds=("telegram",)),
        SearchFilters(since=middle),
        SearchFilters(until=middle),
        SearchFilters(document_ids=picked),
        SearchFilters(sources=("no-such-source",)),
        SearchFilters(languages=("ru",), kinds=("telegram",), since=middle - timedelta(days=30), until=middle),
        SearchFilters(sources=(top_source,), document_ids=(*picked, DOCS[0].id)),
    ]
    for filters in cases:
        expected = _reference(filters)
        assert _semantic_all(index, filters) == expected, filters
        kw = index.search(SearchQuery(text="москва Korea", mode="keyword", k=300, filters=filters))
        assert set(_ids(kw)) <= expected, filters
        assert set(_ids(kw)) == expected & (_with_word(r"\bмоскв(а|ы|е|у|ой)\b") | _with_word(r"\bkorea\b")), filters
        hy = index.search(SearchQuery(text="москва", vector=EMB.embed_query("Korea"), k=300, filters=filters))
        assert set(_ids(hy)) <= expected, filters


def test_since_until_are_half_open(make_index: IndexFactory) -> None:
    index = _filled(make_index)
    doc = DOCS[50]
    at = doc.published
    assert doc.id in _semantic_all(index, SearchFilters(since=at, until=at + timedelta(microseconds=1)))
    assert doc.id not in _semantic_all(index, SearchFilters(until=at))
    assert doc.id in _semantic_all(index, SearchFilters(since=at))
    assert index.count("day", SearchFilters(since=at, until=at)) == {}


# -- counts, stats, delete, iteration -------------------------------------------------------------


def test_counts_and_stats(make_index: IndexFactory) -> None:
    index = _filled(make_index)
    assert index.count("source") == dict(Counter(d.source_id for d in DOCS))
    assert index.count("language") == {"ru": 200, "en": 25}
    assert index.count("kind") == {"telegram": 200, "feed": 25}
    days = Counter(d.published.strftime("%Y-%m-%d") for d in DOCS if d.language == "ru")
    assert index.count("day", SearchFilters(languages=("ru",))) == dict(days)
    stats = index.stats()
    assert stats.documents == 225 and stats.passages == sum(len(d.passages) for d in DOCS)
    assert stats.by_language == {"ru": 200, "en": 25} and stats.by_source == index.count("source")
    assert stats.size_bytes > 0 and stats.embedding_space == EMB.space


def test_delete(make_index: IndexFactory) -> None:
    index = _filled(make_index)
    gone = [DOCS[1].id, DOCS[2].id, DOCS[-1].id]
    assert index.delete([*gone, "tg:missing/1"]) == 3
    assert index.delete(gone) == 0
    assert all(index.get(i) is None for i in gone)
    assert not set(gone) & _semantic_all(index, SearchFilters())
    p = DOCS[1].passages[0].text
    assert DOCS[1].id not in _ids(index.search(SearchQuery(text=p, vector=EMB.embed_query(p), k=20)))
    assert index.stats().documents == 222
    assert not set(gone) & set(index.passage_vectors().document_ids)
    assert index.count("language")["en"] == 24


def test_iter_documents_oldest_first(make_index: IndexFactory) -> None:
    index = _filled(make_index)
    docs = list(index.iter_documents(batch=7))
    assert sorted(d.id for d in docs) == sorted(BY_ID)
    assert [d.published for d in docs] == sorted(d.published for d in DOCS)
    assert docs[0].passages == BY_ID[docs[0].id].passages
    f = SearchFilters(languages=("en",), since=DOCS[-10].published)
    assert [d.id for d in index.iter_documents(f, batch=3)] == [d.id for d in DOCS[-10:]]


def test_passage_vectors_are_aligned(make_index: IndexFactory) -> None:
    index = _filled(make_index)
    pv = index.passage_vectors()
    assert len(pv) == sum(len(d.passages) for d in DOCS) == pv.vectors.shape[0]
    for i in range(0, len(pv), 17):
        passage = BY_ID[pv.document_ids[i]].passages[pv.passage_indexes[i]]
        assert np.allclose(pv.vectors[i], EMB.embed_query(passage.text), atol=1e-6)
    en = index.passage_vectors(SearchFilters(languages=("en",)))
    assert set(en.document_ids) == {d.id for d in DOCS if d.language == "en"}
    assert len(en) == sum(len(d.passages) for d in DOCS if d.language == "en")


# -- embedding space and persistence --------------------------------------------------------------


def test_embedding_space_mismatch_is_refused(make_index: IndexFactory) -> None:
    index = _filled(make_index)
    other = HashingEmbedder(128)
    with pytest.raises(EmbeddingSpaceMismatch):
        index.upsert(embed([DOCS[0]], other))
    with pytest.raises(EmbeddingSpaceMismatch):
        index.search(SearchQuery(vector=other.embed_query("Москва"), mode="semantic"))
    same_dim = EmbeddingSpace(model="another-model", dim=256)
    with pytest.raises(EmbeddingSpaceMismatch) as err:
        make_index.reopen(index, same_dim)
    assert "another-model" in str(err.value) and "hashing" in str(err.value)


def test_reopen_persists(make_index: IndexFactory) -> None:
    index = _filled(make_index)
    index = make_index.reopen(index)
    assert index.embedding_space == EMB.space
    assert index.get(DOCS[5].id) == DOCS[5]
    assert _ids(index.search(SearchQuery(text="козленком", mode="keyword", k=1))) == list(_with_word("козлёнком"))
    p = DOCS[60].passages[0].text
    assert index.search(SearchQuery(vector=EMB.embed_query(p), mode="semantic", k=1))[0].document_id == DOCS[60].id
    assert index.upsert(INDEXED[:5]).unchanged == tuple(d.id for d in DOCS[:5])
