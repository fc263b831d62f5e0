"""The query syntax as Elasticsearch request bodies (pure functions; the live contract suite
``tests/contract/test_query_syntax.py`` runs them on a cluster where ``NARRAWATCH_ES_URL`` is set)."""

from __future__ import annotations

from datetime import UTC, datetime

from core.documents import SearchQuery
from core.query import parse_query
from index.elastic_query import (
    KEYWORD_FIELDS,
    Candidate,
    build_keyword_body,
    expr_clause,
    floor_candidates,
    knn_score_from_cosine,
)

FIELDS = list(KEYWORD_FIELDS)


def _mm(text: str, kind: str = "most_fields") -> dict[str, object]:
    return {"multi_match": {"query": text, "fields": FIELDS, "type": kind}}


def test_terms_phrases_and_or_not_become_a_bool_query() -> None:
    parsed = parse_query('"ядерного оружия" nato OR otan -учения')
    assert expr_clause(parsed.text) == {  # type: ignore[arg-type]
        "bool": {
            "must": [
                _mm("ядерного оружия", "phrase"),
                {"bool": {"should": [_mm("nato"), _mm("otan")], "minimum_should_match": 1}},
            ],
            "must_not": [_mm("учения")],
        }
    }


def test_the_expression_is_matched_per_passage_inside_the_nested_query() -> None:
    parsed = parse_query("zorb vlem")
    body = build_keyword_body(SearchQuery(text=parsed.positive_text, expr=parsed.text, mode="keyword", k=5))
    nested = body["query"]["bool"]["must"][0]["nested"]
    assert nested["path"] == "passages"
    assert nested["query"] == {"bool": {"must": [_mm("zorb"), _mm("vlem")]}}
    # without an expression: any word (the old meaning, used by matching)
    plain = build_keyword_body(SearchQuery(text="zorb vlem", mode="keyword", k=5))
    assert plain["query"]["bool"]["must"][0]["nested"]["query"] == _mm("zorb vlem")


def test_floor_keeps_candidates_at_or_above_the_cosine() -> None:
    when = datetime(2024, 1, 1, tzinfo=UTC)
    cands = [
        Candidate(f"d{i}", 0, knn_score_from_cosine(cos), "", "", "s", "en", when, "")
        for i, cos in enumerate((0.5, 0.26, 0.2))
    ]
    assert [c.document_id for c in floor_candidates(cands, 0.26)] == ["d0", "d1"]
    assert floor_candidates(cands, None) == cands
