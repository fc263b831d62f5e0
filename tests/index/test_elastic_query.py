"""Search / count / scan bodies and response parsing of the Elasticsearch backend (no server).

Response fixtures follow the shapes in Elastic's reference, with our field names:
* nested kNN with inner_hits: https://www.elastic.co/guide/en/elasticsearch/reference/current/knn-search.html#nested-knn-search
* nested query inner_hits: https://www.elastic.co/guide/en/elasticsearch/reference/current/inner-hits.html#nested-inner-hits
* date_histogram: https://www.elastic.co/guide/en/elasticsearch/reference/current/search-aggregations-bucket-datehistogram-aggregation.html
* point in time + search_after: https://www.elastic.co/guide/en/elasticsearch/reference/current/paginate-search-results.html
* nested kNN inner_hits are scored on quantised vectors unless the query phase rescores:
  https://github.com/elastic/elasticsearch/pull/156332
"""

from __future__ import annotations

import base64
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.documents import EmbeddingSpace, SearchFilters, SearchQuery
from core.errors import EmbeddingSpaceMismatch
from index.base import RRF_K, in_filters
from index.elastic_bulk import document_source
from index.elastic_mappings import vector_field
from index.elastic_query import (
    build_count_body,
    build_keyword_body,
    build_knn_body,
    build_scan_body,
    build_search_bodies,
    candidates_from_response,
    cosine_from_knn_score,
    exact_candidates,
    filter_clauses,
    fuse_hits,
    parse_count_response,
    parse_search_response,
)
from index.embed import HashingEmbedder
from tests.index.test_elastic_bulk import indexed, load_documents

SPACE = EmbeddingSpace(model="hashing", dim=8, backend="narrawatch", pooling="sum")
VEC = np.full(8, 1 / np.sqrt(8), dtype=np.float32)


def _hit(doc_id: str, score: float, passages: list[str], inner: list[tuple[int, float]], **src: Any) -> dict[str, Any]:
    return {
        "_index": "narrawatch-docs-hashing_8_x-1",
        "_id": doc_id,
        "_score": score,
        "_source": {
            "id": doc_id,
            "source_id": src.get("source_id", "ria"),
            "kind": "telegram",
            "url": f"https://t.me/{doc_id}",
            "title": src.get("title", ""),
            "language": src.get("language", "ru"),
            "published": src.get("published", "2024-11-30T19:39:32+00:00"),
            "passages": [{"index": i, "text": t, "start": 0} for i, t in enumerate(passages)],
        },
        "inner_hits": {
            "passages": {
                "hits": {
                    "total": {"value": len(inner), "relation": "eq"},
                    "max_score": inner[0][1] if inner else None,
                    "hits": [
                        {
                            "_index": "narrawatch-docs-hashing_8_x-1",
                            "_id": doc_id,
                            "_nested": {"field": "passages", "offset": off},
                            "_score": s,
                        }
                        for off, s in inner
                    ],
                }
            }
        },
    }


def _response(*hits: dict[str, Any]) -> dict[str, Any]:
    return {
        "took": 3,
        "timed_out": False,
        "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
        "hits": {"max_score": hits[0]["_score"] if hits else None, "hits": list(hits)},
    }


KNN_RESPONSE = _response(
    _hit("tg:a/1", 0.95, ["Минобороны сообщило о наступлении", "Второй абзац"], [(0, 0.95), (1, 0.80)]),
    _hit("tg:b/2", 0.90, ["Первый", "Киев заявил о контрнаступлении"], [(1, 0.90), (0, 0.85)]),
)


# -- filters -----------------------------------------------------------------------------------


def _matches(clause: dict[str, Any], src: dict[str, Any]) -> bool:
    """Evaluate our DSL subset (terms, range on published) on a _source dict."""
    if "terms" in clause:
        ((field, values),) = clause["terms"].items()
        return src[field] in values
    ((field, rng),) = clause["range"].items()
    value = datetime.fromisoformat(src[field])
    ok = True
    if "gte" in rng:
        ok &= value >= datetime.fromisoformat(rng["gte"])
    if "lt" in rng:
        ok &= value < datetime.fromisoformat(rng["lt"])
    return ok


def test_filter_clauses_agree_with_reference_semantics(test_data: Path) -> None:
    docs = load_documents(test_data, limit=120)
    sources = sorted({d.source_id for d in docs})
    dates = sorted(d.published for d in docs)
    rnd = random.Random(7)
    checked = 0
    for _ in range(60):
        filters = SearchFilters(
            sources=tuple(rnd.sample(sources, rnd.randint(0, 3))),
            languages=tuple(rnd.sample(["ru", "uk", "en"], rnd.randint(0, 2))),
            kinds=("telegram",) if rnd.random() < 0.3 else (),
            since=rnd.choice([None, *dates]),
            until=rnd.choice([None, *dates]),
            document_ids=tuple(d.id for d in rnd.sample(docs, 5)) if rnd.random() < 0.2 else (),
        )
        clauses = filter_clauses(filters)
        for d in docs:
            src = {
                "source_id": d.source_id,
                "language": d.language,
                "kind": d.kind,
                "id": d.id,
                "published": d.published.isoformat(),
            }
            assert all(_matches(c, src) for c in clauses) == in_filters(d, filters)
            checked += in_filters(d, filters)
    assert checked > 0  # some filters matched something
    assert filter_clauses(None) == [] and filter_clauses(SearchFilters()) == []


def test_until_is_exclusive_and_since_inclusive() -> None:
    t = datetime(2024, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)
    (clause,) = filter_clauses(SearchFilters(since=t, until=t + timedelta(days=1)))
    assert clause == {
        "range": {"published": {"gte": "2024-11-30T12:00:00.123456+00:00", "lt": "2024-12-01T12:00:00.123456+00:00"}}
    }


# -- request bodies -----------------------------------------------------------------------------


def test_knn_body_puts_filters_inside_knn() -> None:
    q = SearchQuery(vector=VEC, k=7, mode="semantic", filters=SearchFilters(languages=("ru",), sources=("ria",)))
    body = build_knn_body(q, SPACE)
    knn = body["knn"]
    assert knn["field"] == f"passages.{vector_field(SPACE)}"
    assert knn["k"] == 7 and knn["num_candidates"] >= 7 and knn["num_candidates"] <= 10_000
    assert len(knn["query_vector"]) == 8 and knn["query_vector"][0] == pytest.approx(1 / np.sqrt(8), abs=1e-7)
    assert knn["filter"] == {"bool": {"filter": [{"terms": {"source_id": ["ria"]}}, {"terms": {"language": ["ru"]}}]}}
    assert knn["inner_hits"]["size"] == 1  # grouped: best passage only
    assert "query" not in body  # the filter is a pre-filter, not a post-filter
    json.dumps(body)  # serialisable


def test_knn_rescores_quantised_candidates_only_on_servers_that_support_it() -> None:
    q = SearchQuery(vector=VEC, k=3, mode="semantic")
    assert "rescore_vector" not in build_knn_body(q, SPACE, server_version=(8, 17))["knn"]
    assert "rescore_vector" not in build_knn_body(q, SPACE)["knn"]  # unknown version: the safe shape
    assert build_knn_body(q, SPACE, server_version=(9, 1))["knn"]["rescore_vector"] == {"oversample": 2.0}


def _int8_cosine(query: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Cosine over scalar-quantised vectors (one min/max per segment, 8 bits), as int8_hnsw scores them."""
    lo, hi = float(vectors.min()), float(vectors.max())
    scale = (hi - lo) / 255.0
    deq = np.round((vectors - lo) / scale) * scale + lo
    deq /= np.linalg.norm(deq, axis=1, keepdims=True)
    return np.asarray(deq @ query, dtype=np.float64)


def _knn_response_of(docs: list[Any], query: np.ndarray, space: EmbeddingSpace, inner: int) -> dict[str, Any]:
    """A nested-kNN response for real documents: ``_source`` as the bulk writer stores it (float
    vectors included), inner hits and ``_score`` from the int8-quantised cosine (elasticsearch#156332)."""
    hits = []
    for item in docs:
        quant = _int8_cosine(query, item.vectors)
        order = np.argsort(-quant, kind="stable")[:inner]
        src = json.loads(json.dumps(document_source(item, space)))
        hits.append(
            {
                "_id": item.document.id,
                "_score": (1 + float(quant[order[0]])) / 2,
                "_source": src,
                "inner_hits": {
                    "passages": {
                        "hits": {
                            "hits": [
                                {
                                    "_nested": {"field": "passages", "offset": int(o)},
                                    "_score": (1 + float(quant[o])) / 2,
                                }
                                for o in order
                            ]
                        }
                    }
                },
            }
        )
    hits.sort(key=lambda h: -h["_score"])
    return _response(*hits)


def test_semantic_scores_are_exact_cosines_not_the_quantised_inner_hit_scores(test_data: Path) -> None:
    emb = HashingEmbedder(dim=32)
    items = indexed(load_documents(test_data, 30))
    target = items[7].document.passages[-1]
    query = emb.embed_query(target.text)
    resp = _knn_response_of(items, query, emb.space, inner=1)
    exact = {
        (it.document.id, p.index): float(it.vectors[i].astype(np.float64) @ query.astype(np.float64))
        for it in items
        for i, p in enumerate(it.document.passages)
    }
    approx = [
        cosine_from_knn_score(h["inner_hits"]["passages"]["hits"]["hits"][0]["_score"]) for h in resp["hits"]["hits"]
    ]
    best_exact = [max(v for (d, _), v in exact.items() if d == h["_id"]) for h in resp["hits"]["hits"]]
    assert max(abs(a - b) for a, b in zip(approx, best_exact, strict=True)) > 1e-3  # int8 error is real

    for grouped in (True, False):
        cands = exact_candidates(resp, query, emb.space, group_by_document=grouped)
        hits = parse_search_response(resp, mode="semantic", group_by_document=grouped, k=200, candidates=cands)
        for h in hits:
            assert h.semantic_score == pytest.approx(exact[(h.document_id, h.passage_index)], abs=1e-6)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert (hits[0].document_id, hits[0].passage_index) == (items[7].document.id, target.index)
        assert hits[0].semantic_score == pytest.approx(1.0, abs=1e-6) and hits[0].snippet == target.text
    grouped_hits = exact_candidates(resp, query, emb.space, group_by_document=True)
    assert len({c.document_id for c in grouped_hits}) == len(grouped_hits) == len(items)
    # Ungrouped: every passage of every candidate document, not only the (one) inner hit each.
    assert len(exact_candidates(resp, query, emb.space, group_by_document=False)) == len(exact)


def test_exact_candidates_decode_base64_vectors_and_fall_back_without_vectors(test_data: Path) -> None:
    emb = HashingEmbedder(dim=32)
    items = indexed(load_documents(test_data, 3))
    query = emb.embed_query(items[0].document.passages[0].text)
    resp = _knn_response_of(items, query, emb.space, inner=1)
    field = vector_field(emb.space)
    for p in resp["hits"]["hits"][0]["_source"]["passages"]:  # ES 9 rehydrated vectors: base64 >f4
        p[field] = base64.b64encode(np.asarray(p[field], dtype=">f4").tobytes()).decode()
    del resp["hits"]["hits"][1]["_source"]["passages"][0][field]
    cands = {c.document_id: c for c in exact_candidates(resp, query, emb.space, group_by_document=True)}
    first = resp["hits"]["hits"][0]["_id"]
    assert cosine_from_knn_score(cands[first].score) == pytest.approx(
        max(float(v @ query) for v in next(i for i in items if i.document.id == first).vectors), abs=1e-6
    )
    second = resp["hits"]["hits"][1]
    assert cands[second["_id"]].score == second["inner_hits"]["passages"]["hits"]["hits"][0]["_score"]


def test_knn_body_asks_for_the_float_vectors() -> None:
    q = SearchQuery(vector=VEC, k=3, mode="semantic")
    field = f"passages.{vector_field(SPACE)}"
    assert field in build_knn_body(q, SPACE, server_version=(8, 18))["_source"]["includes"]
    assert "exclude_vectors" not in build_knn_body(q, SPACE, server_version=(9, 1))["_source"]
    assert build_knn_body(q, SPACE, server_version=(9, 2))["_source"]["exclude_vectors"] is False


def test_knn_body_rejects_wrong_dimension_and_missing_vector() -> None:
    with pytest.raises(EmbeddingSpaceMismatch):
        build_knn_body(SearchQuery(vector=np.ones(16, np.float32), mode="semantic"), SPACE)
    with pytest.raises(ValueError):
        build_knn_body(SearchQuery(text="x", mode="semantic"), SPACE)


def test_keyword_body_is_nested_bm25_with_filters_and_highlight() -> None:
    q = SearchQuery(
        text="контрнаступление",
        k=5,
        mode="keyword",
        group_by_document=False,
        filters=SearchFilters(kinds=("telegram",)),
    )
    body = build_keyword_body(q)
    b = body["query"]["bool"]
    assert b["filter"] == [{"terms": {"kind": ["telegram"]}}]
    nested = b["must"][0]["nested"]
    assert nested["path"] == "passages" and nested["score_mode"] == "max"
    # passage text and the title repeated on each passage, each folded and stemmed
    assert nested["query"]["multi_match"]["fields"] == [
        "passages.text",
        "passages.text.stem",
        "passages.title",
        "passages.title.stem",
    ]
    assert nested["inner_hits"]["size"] == 5  # every passage of a top-5 document can be a top-5 passage
    assert "passages.text" in nested["inner_hits"]["highlight"]["fields"]


def test_search_bodies_per_mode() -> None:
    assert set(build_search_bodies(SearchQuery(text="x", vector=VEC, mode="hybrid", k=10), SPACE)) == {
        "keyword",
        "semantic",
    }
    hybrid = build_search_bodies(SearchQuery(text="x", vector=VEC, mode="hybrid", k=10), SPACE)
    assert hybrid["keyword"]["size"] == hybrid["semantic"]["size"] == 50  # max(5k, 50) deep lists
    assert set(build_search_bodies(SearchQuery(text="x", mode="hybrid"), SPACE)) == {"keyword"}
    assert set(build_search_bodies(SearchQuery(text="  ", vector=VEC, mode="hybrid"), SPACE)) == {"semantic"}
    assert build_search_bodies(SearchQuery(text="", mode="keyword"), SPACE) == {}


def test_scan_body_pages_oldest_first() -> None:
    body = build_scan_body(
        SearchFilters(languages=("uk",)),
        size=100,
        search_after=[1732995572000000000, "tg:a/1"],
        includes=["id"],
        exclude_vectors=False,
    )
    assert body["sort"] == [{"published": "asc"}, {"id": "asc"}]
    assert body["search_after"] == [1732995572000000000, "tg:a/1"]
    assert body["_source"] == {"includes": ["id"], "exclude_vectors": False}
    assert build_scan_body(None, size=10)["query"] == {"match_all": {}}
    assert "exclude_vectors" not in json.dumps(build_scan_body(None, size=10))  # 8.x servers reject the key


def test_scan_body_reads_a_point_in_time_with_the_shard_doc_tiebreak() -> None:
    body = build_scan_body(None, size=50, pit_id="46ToAwMDaWR5BXV1aWQy", keep_alive="5m", search_after=[1, "x", 7])
    assert body["pit"] == {"id": "46ToAwMDaWR5BXV1aWQy", "keep_alive": "5m"}
    assert body["sort"] == [{"published": "asc"}, {"id": "asc"}, {"_shard_doc": "asc"}]
    assert body["search_after"] == [1, "x", 7]
    assert "index" not in body  # the PIT names the index


# -- parsing -----------------------------------------------------------------------------------


def test_cosine_from_knn_score_inverts_documented_formula() -> None:
    for cos in (-1.0, 0.0, 0.42, 1.0):
        assert cosine_from_knn_score((1 + cos) / 2) == pytest.approx(cos)


def test_parse_semantic_grouped() -> None:
    hits = parse_search_response(KNN_RESPONSE, mode="semantic", group_by_document=True, k=10)
    assert [h.document_id for h in hits] == ["tg:a/1", "tg:b/2"]
    assert [h.passage_index for h in hits] == [0, 1]
    assert hits[1].snippet == "Киев заявил о контрнаступлении"
    assert hits[0].score == pytest.approx(0.9) and hits[0].semantic_score == pytest.approx(0.9)
    assert [h.semantic_rank for h in hits] == [1, 2] and hits[0].keyword_rank is None
    assert hits[0].published == datetime(2024, 11, 30, 19, 39, 32, tzinfo=UTC)


def test_parse_semantic_passages_orders_across_documents() -> None:
    hits = parse_search_response(KNN_RESPONSE, mode="semantic", group_by_document=False, k=3)
    assert [(h.document_id, h.passage_index) for h in hits] == [("tg:a/1", 0), ("tg:b/2", 1), ("tg:b/2", 0)]


def test_parse_keyword_uses_bm25_scores_and_keeps_plain_snippet() -> None:
    resp = _response(_hit("u:1", 7.5, ["Зеленский заявил", "Мирный план"], [(1, 7.5)]))
    resp["hits"]["hits"][0]["inner_hits"]["passages"]["hits"]["hits"][0]["highlight"] = {
        "passages.text": ["<em>Мирный</em> план"]
    }
    (hit,) = parse_search_response(resp, mode="keyword", group_by_document=True, k=5)
    assert hit.score == 7.5 and hit.keyword_rank == 1 and hit.passage_index == 1
    assert hit.snippet == "Мирный план"  # plain text; the highlight is kept separately
    (cand,) = candidates_from_response(resp, group_by_document=True)
    assert cand.highlight == "<em>Мирный</em> план"


def test_passage_index_comes_from_source_not_offset() -> None:
    resp = _response(_hit("u:2", 1.0, ["a", "b"], [(1, 1.0)]))
    resp["hits"]["hits"][0]["_source"]["passages"] = [{"index": 3, "text": "a"}, {"index": 7, "text": "b"}]
    (hit,) = parse_search_response(resp, mode="keyword", group_by_document=True, k=1)
    assert (hit.passage_index, hit.snippet) == (7, "b")


def test_hybrid_fusion_is_reciprocal_rank_fusion() -> None:
    kw = candidates_from_response(
        _response(
            _hit("d1", 9.0, ["x"], [(0, 9.0)]),
            _hit("d2", 5.0, ["y"], [(0, 5.0)]),
        ),
        group_by_document=False,
    )
    sem = candidates_from_response(
        _response(
            _hit("d2", 0.9, ["y"], [(0, 0.9)]),
            _hit("d3", 0.8, ["z"], [(0, 0.8)]),
        ),
        group_by_document=False,
    )
    hits = fuse_hits(kw, sem, group_by_document=True, k=10)
    assert [h.document_id for h in hits] == ["d2", "d1", "d3"]
    assert hits[0].score == pytest.approx(1 / (RRF_K + 2) + 1 / (RRF_K + 1))
    assert hits[1].score == pytest.approx(1 / (RRF_K + 1))
    assert hits[2].score == pytest.approx(1 / (RRF_K + 2))
    assert (hits[0].keyword_rank, hits[0].semantic_rank) == (2, 1)
    assert hits[0].semantic_score == pytest.approx(0.8)
    assert hits[1].semantic_rank is None and hits[1].semantic_score is None
    assert len(fuse_hits(kw, sem, group_by_document=True, k=2)) == 2


def test_hybrid_groups_after_fusing_passages() -> None:
    kw = candidates_from_response(
        _response(_hit("d1", 9.0, ["p0", "p1"], [(0, 9.0), (1, 3.0)])), group_by_document=False
    )
    sem = candidates_from_response(
        _response(_hit("d1", 0.9, ["p0", "p1"], [(1, 0.9), (0, 0.7)])), group_by_document=False
    )
    grouped = fuse_hits(kw, sem, group_by_document=True, k=10)
    assert len(grouped) == 1 and grouped[0].keyword_rank == 1 and grouped[0].semantic_rank == 1
    passages = fuse_hits(kw, sem, group_by_document=False, k=10)
    assert sorted(h.passage_index for h in passages) == [0, 1]
    assert passages[0].score == pytest.approx(1 / (RRF_K + 1) + 1 / (RRF_K + 2))


def test_hybrid_with_one_empty_side_keeps_that_sides_scores() -> None:
    sem = candidates_from_response(KNN_RESPONSE, group_by_document=False)
    hits = fuse_hits([], sem, group_by_document=True, k=5)
    assert hits[0].score == pytest.approx(0.9) and hits[0].keyword_rank is None


def test_count_bodies_and_date_histogram_response() -> None:
    body = build_count_body("day", SearchFilters(sources=("ria",)))
    hist = body["aggs"]["by"]["date_histogram"]
    assert hist["calendar_interval"] == "day" and hist["format"] == "yyyy-MM-dd" and hist["time_zone"] == "UTC"
    assert body["size"] == 0 and body["query"] == {"bool": {"filter": [{"terms": {"source_id": ["ria"]}}]}}
    assert build_count_body("language", None)["aggs"]["by"] == {"terms": {"field": "language", "size": 10_000}}
    with pytest.raises(ValueError):
        build_count_body("author", None)  # type: ignore[arg-type]
    # Response shape from the date_histogram reference page.
    resp = {
        "aggregations": {
            "by": {
                "buckets": [
                    {"key_as_string": "2024-11-29", "key": 1732838400000, "doc_count": 3},
                    {"key_as_string": "2024-11-30", "key": 1732924800000, "doc_count": 2},
                ]
            }
        }
    }
    assert parse_count_response(resp) == {"2024-11-29": 3, "2024-11-30": 2}
    terms = {
        "aggregations": {
            "by": {
                "doc_count_error_upper_bound": 0,
                "sum_other_doc_count": 0,
                "buckets": [{"key": "ru", "doc_count": 10}, {"key": "uk", "doc_count": 4}],
            }
        }
    }
    assert parse_count_response(terms) == {"ru": 10, "uk": 4}
