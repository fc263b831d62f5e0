"""Search as researchers use it, held to the same behaviour on every DocumentIndex backend.

The query syntax (core.query) as each backend translates it (``SearchQuery.expr``: tantivy
queries, ``to_tsquery``, a bool/match_phrase query), the semantic floor
(``SearchQuery.min_similarity``) and, through the read model on top of each backend, honest
totals, pages that end, sorts, copies grouped under their first appearance, facets and unknown
filter values refused. Documents are planted with made-up words so the expected sets are exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.documents import Document, SearchFilters, SearchQuery
from core.errors import QuerySyntaxError, UnknownFilterValue
from core.query import parse_query
from core.settings import load_config
from index.base import DocumentIndex
from index.embed import HashingEmbedder
from narrawatch.app import App
from narrawatch.builtins import register_builtins
from narrawatch.read import search
from narrawatch.read.params import SearchParams
from tests.contract import embed, make_document
from tests.contract.conftest import IndexFactory

EMB = HashingEmbedder(256)
T0 = datetime(2024, 11, 1, 8, 0, tzinfo=UTC)

# (id, source, language, text, hours after T0, views)
PLANTED: list[tuple[str, str, str, str, int, int | None]] = [
    ("d1", "src-a", "en", "The zorb quix vlem report was read aloud.", 1, 10),
    ("d2", "src-a", "en", "A zorb and a vlem walked in.", 2, 500),
    ("d3", "src-b", "en", "Only quix zorb here, reversed order.", 3, None),
    ("d4", "src-c", "ru", "Жувак сказал: zorb, и все замолчали.", 4, 40),
    ("d5", "src-c", "ru", "Жувак и пелмо снова вместе.", 5, 7),
    ("d6", "src-b", "ru", "Пелмо без него.", 6, 3),
    # d7 and its copies d8 (later, another source) and d9 (later still): one text
    ("d7", "src-a", "en", "Blorptide story about the harbour fire.", 7, 100),
    ("d8", "src-b", "en", "Blorptide story about the harbour fire.", 9, 900),
    ("d9", "src-c", "en", "Blorptide story about the harbour fire.", 11, 5),
]
PAGED = 23
"""Documents that share the word ``pagetok`` (for totals and pages)."""


def _documents() -> list[Document]:
    docs = []
    for doc_id, source, lang, text, hours, views in PLANTED:
        docs.append(
            make_document(
                doc_id=f"u:{doc_id}",
                source_id=source,
                kind="feed",
                url=f"https://example.org/{doc_id}",
                title="",
                text=text,
                language=lang,
                published=T0 + timedelta(hours=hours),
                outlet=f"{source}.example.org",
                views=views,
            )
        )
    for i in range(PAGED):
        docs.append(
            make_document(
                doc_id=f"u:p{i:02d}",
                source_id=("src-a", "src-b")[i % 2],
                kind="feed",
                url=f"https://example.org/p{i}",
                title="",
                text=f"Pagetok bulletin number {i} with its own words w{i}x{i}.",
                language="en",
                published=T0 + timedelta(days=1, hours=i),
                outlet=("src-a", "src-b")[i % 2] + ".example.org",
                views=i * 10,
            )
        )
    return docs


DOCS = _documents()


def _filled(make_index: IndexFactory) -> DocumentIndex:
    index = make_index(EMB.space)
    index.upsert(embed(DOCS, EMB))
    return index


def _kw(index: DocumentIndex, query: str) -> set[str]:
    parsed = parse_query(query)
    q = SearchQuery(text=parsed.positive_text, expr=parsed.text, mode="keyword", k=100)
    return {h.document_id.removeprefix("u:") for h in index.search(q)}


# -- the syntax, translated by each backend --------------------------------------------------------


def test_words_are_all_required_phrases_keep_order_or_and_not(make_index: IndexFactory) -> None:
    index = _filled(make_index)
    assert _kw(index, "zorb vlem") == {"d1", "d2"}  # implicit AND
    assert _kw(index, "zorb AND vlem") == {"d1", "d2"}
    assert _kw(index, '"zorb quix"') == {"d1"}  # the phrase, in this order (d3 has "quix zorb")
    assert _kw(index, '"quix zorb"') == {"d3"}
    assert _kw(index, "zorb -vlem") == {"d3", "d4"}
    assert _kw(index, "zorb NOT (vlem OR quix)") == {"d4"}
    assert _kw(index, "vlem OR пелмо") == {"d1", "d2", "d5", "d6"}
    assert _kw(index, "(vlem OR пелмо) жувак") == {"d5"}
    # Russian words are stemmed in Russian passages: "жувака" finds "Жувак" (and back)
    if make_index.stems_russian:
        assert _kw(index, "жувака") == {"d4", "d5"}


def test_without_an_expression_any_word_still_matches(make_index: IndexFactory) -> None:
    # SearchQuery.text alone keeps its old meaning (any word, BM25): matching and monitors use it
    index = _filled(make_index)
    found = {h.document_id for h in index.search(SearchQuery(text="vlem пелмо", mode="keyword", k=50))}
    assert found == {"u:d1", "u:d2", "u:d5", "u:d6"}


def test_semantic_floor_drops_passages_below_it(make_index: IndexFactory) -> None:
    index = _filled(make_index)
    vector = EMB.embed_query("zorb quix")
    everything = index.search(SearchQuery(vector=vector, mode="semantic", k=100))
    assert len(everything) == len(DOCS)  # without a floor, semantic search ranks the whole corpus
    floored = index.search(SearchQuery(vector=vector, mode="semantic", k=100, min_similarity=0.3))
    assert floored and all(h.semantic_score is not None and h.semantic_score >= 0.3 for h in floored)
    assert {h.document_id for h in floored} <= {"u:d1", "u:d2", "u:d3", "u:d4"}
    hybrid = index.search(SearchQuery(text="pagetok", vector=vector, mode="hybrid", k=100, min_similarity=0.3))
    ids = {h.document_id for h in hybrid}
    assert {f"u:p{i:02d}" for i in range(PAGED)} <= ids and "u:d7" not in ids and "u:d5" not in ids


# -- the read model on top of each backend ------------------------------------------------------------


@pytest.fixture
def app(make_index: IndexFactory, tmp_path: Path) -> Iterator[App]:
    register_builtins()
    cfg = tmp_path / "config"
    cfg.mkdir()
    (cfg / "service.yaml").write_text("embedding: {model: hashing}\n", encoding="utf-8")
    (cfg / "sources.yaml").write_text(
        "sources:\n"
        '  - {id: src-a, kind: feed, url: "http://127.0.0.1:9/a", actor: state_media, country: RU, tags: [wire]}\n'
        '  - {id: src-b, kind: feed, url: "http://127.0.0.1:9/b", actor: independent, country: LV}\n'
        '  - {id: src-c, kind: feed, url: "http://127.0.0.1:9/c", actor: anonymous_channel, tags: [Wire, tg]}\n',
        encoding="utf-8",
    )
    config = load_config(cfg)
    app = App(config, index=_filled(make_index), embedder=EMB)
    try:
        yield app
    finally:
        app.close()


def _page(app: App, **kw: object) -> search.SearchPage:
    return search.search(app, SearchParams.model_validate(kw))


def _ids(page: search.SearchPage) -> list[str]:
    return [r.hit.document_id.removeprefix("u:") for r in page.results]


def test_total_is_honest_and_pages_end(app: App) -> None:
    first = _page(app, q="pagetok", mode="keyword", page_size=10)
    assert (first.total, first.total_documents, first.total_is_lower_bound) == (PAGED, PAGED, False)
    assert first.pages == 3 and first.has_more and len(first.results) == 10
    last = _page(app, q="pagetok", mode="keyword", page_size=10, page=3)
    assert len(last.results) == 3 and not last.has_more
    past = _page(app, q="pagetok", mode="keyword", page_size=10, page=4)
    assert past.results == () and past.total == PAGED and not past.has_more
    seen = _ids(first) + _ids(_page(app, q="pagetok", mode="keyword", page_size=10, page=2)) + _ids(last)
    assert sorted(seen) == sorted(f"p{i:02d}" for i in range(PAGED))  # every result once
    assert _page(app, q="pagetok", mode="keyword", k=5).page_size == 5  # k: the CLI's -k


def test_sorts_by_date_and_views(app: App) -> None:
    newest = _ids(_page(app, q="pagetok", mode="keyword", sort="newest", page_size=100))
    assert newest == [f"p{i:02d}" for i in reversed(range(PAGED))]
    oldest = _ids(_page(app, q="pagetok", mode="keyword", sort="oldest", page_size=100))
    assert oldest == newest[::-1]
    views = [r.views for r in _page(app, q="zorb", mode="keyword", sort="views").results]
    assert views == [500, 40, 10, None]


def test_copies_are_grouped_under_their_first_appearance(app: App) -> None:
    page = _page(app, q="blorptide", mode="keyword")
    assert page.total == 1 and page.total_documents == 3
    (result,) = page.results
    assert result.hit.document_id == "u:d7"  # the first appearance, not the most viewed copy
    assert [c.document_id for c in result.copies] == ["u:d8", "u:d9"]
    assert result.as_dict()["copies"]["count"] == 2


def test_facets_count_the_hits_and_a_facet_narrows_to_its_count(app: App) -> None:
    page = _page(app, q="zorb OR blorptide", mode="keyword")
    facets = dict(page.facets)
    assert sum(n for _, n in facets["language"]) == page.total_documents == 7
    by_source = dict(facets["source"])
    assert by_source == {"src-a": 3, "src-b": 2, "src-c": 2}
    narrowed = _page(app, q="zorb OR blorptide", mode="keyword", sources=["src-b"])
    assert narrowed.total_documents == by_source["src-b"]
    assert dict(facets["day"]) == {"2024-11-01": 7}
    assert dict(facets["outlet"])["src-c.example.org"] == 2


def test_field_filters_resolve_through_source_metadata(app: App) -> None:
    def kw(q: str) -> set[str]:
        return set(_ids(_page(app, q=q, mode="keyword", page_size=100)))

    assert kw("zorb lang:ru") == {"d4"}
    assert kw("zorb -lang:ru") == {"d1", "d2", "d3"}
    assert kw("zorb source:src-a") == {"d1", "d2"}
    assert kw("zorb actor:independent") == {"d3"}
    assert kw("zorb country:RU") == {"d1", "d2"}
    assert kw("zorb tag:wire") == {"d1", "d2", "d4"}  # tags compare case-insensitively
    assert kw("zorb -tag:tg") == {"d1", "d2", "d3"}
    assert kw("zorb outlet:src-c.example.org") == {"d4"}
    assert kw("zorb kind:feed") == {"d1", "d2", "d3", "d4"}
    assert kw("zorb actor:official") == set()  # a known actor type no source has: empty, not an error
    only_filters = _page(app, q="source:src-c", sort="newest")  # filters only: the newest documents
    assert _ids(only_filters)[0] == "d9" and only_filters.total == 3  # d9 is a copy of d7 (src-a)


@pytest.mark.parametrize(
    ("kw", "what", "known"),
    [
        ({"q": "zorb", "sources": ["nope"]}, "source", "src-a, src-b, src-c"),
        ({"q": "zorb source:nope"}, "source", "src-a"),
        ({"q": "zorb", "languages": ["xx"]}, "language", "en, ru"),
        ({"q": "zorb lang:xx"}, "language", "en, ru"),
        ({"q": "zorb", "kinds": ["fax"]}, "kind", "feed"),
        ({"q": "zorb actor:spy"}, "actor", "state_media"),
        ({"q": "zorb country:FR"}, "country", "LV, RU"),
        ({"q": "zorb tag:nope"}, "tag", "wire"),
    ],
)
def test_unknown_filter_values_are_refused_with_the_known_ones(
    app: App, kw: dict[str, object], what: str, known: str
) -> None:
    with pytest.raises(UnknownFilterValue) as info:
        search.search(app, SearchParams.model_validate(kw))
    assert f"unknown {what}" in str(info.value) and known in str(info.value)


def test_a_query_that_does_not_parse_is_refused(app: App) -> None:
    with pytest.raises(QuerySyntaxError, match="unclosed quote"):
        _page(app, q='"zorb')


def test_semantic_search_stops_at_the_floor_and_respects_exclusions(app: App) -> None:
    floor = search.semantic_floor(app.index.embedding_space)
    assert floor is not None
    page = _page(app, q="zorb quix", mode="semantic", page_size=100)
    assert page.semantic_floor == floor and 0 < page.total < len(DOCS)
    assert all(r.hit.semantic_score is not None and r.hit.semantic_score >= floor for r in page.results)
    excluded = _page(app, q="zorb quix -vlem", mode="semantic", page_size=100)
    assert "d1" not in _ids(excluded) and "d2" not in _ids(excluded)


def test_keyword_matches_in_another_script_are_down_weighted(app: App) -> None:
    # "zorb" (Latin) inside the Russian d4 matches like in English posts, but ranks below them
    ranked = _page(app, q="zorb", mode="keyword").results
    assert [r.hit.document_id for r in ranked][-1] == "u:d4"
    assert ranked[-1].hit.score < min(r.hit.score for r in ranked[:-1])


def test_export_streams_every_row_with_copies_marked(app: App) -> None:
    rows = list(search.export_rows(app, SearchParams(q="blorptide OR pagetok", mode="keyword")))
    assert len(rows) == PAGED + 3
    copies = {r["document_id"]: r["copy_of"] for r in rows if r["copy_of"]}
    assert copies == {"u:d8": "u:d7", "u:d9": "u:d7"}
    assert list(rows[0]) == list(search.EXPORT_FIELDS)
    everything = list(search.export_rows(app, SearchParams(q="kind:feed")))  # filters only: every document
    assert len(everything) == len(DOCS)
    assert [r["published"] for r in everything] == sorted(r["published"] for r in everything)
    _ = SearchFilters  # (filters-only exports go through iter_documents)
