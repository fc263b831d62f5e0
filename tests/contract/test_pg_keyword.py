"""The PostgreSQL index's bounded keyword ranking (:func:`index.postgres_search.keyword_ranking`):
when more passages match than it ranks, the candidates are the newest matches; when fewer match,
every one is ranked, wherever it lies in time.

Real documents (the contract corpus), a real PostgreSQL (:mod:`tests.support.pg`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from core.documents import SearchFilters, SearchQuery
from index import postgres_search
from index.postgres import PostgresIndex
from tests.contract import embed, load_corpus
from tests.contract.pg_writer import EMB
from tests.support.pg import unique_prefix

pytestmark = pytest.mark.postgresql

DOCS = load_corpus()


@pytest.fixture
def index(pg_url: str) -> Iterator[PostgresIndex]:
    idx = PostgresIndex(pg_url, EMB.space, table_prefix=unique_prefix())
    idx.upsert(embed(DOCS, EMB))
    yield idx
    idx.drop()
    idx.close()


def _ranking(idx: PostgresIndex, text: str, filters: SearchFilters | None = None) -> list[tuple[int, float]]:
    query = SearchQuery(text=text, mode="keyword", k=10, filters=filters or SearchFilters())
    with idx.connection() as conn, conn.transaction():
        ranking, _ = postgres_search.keyword_ranking(idx, conn, query, 10_000)
    return ranking


def _published(idx: PostgresIndex, pids: list[int]) -> list[datetime]:
    with idx.connection() as conn:
        rows = conn.execute(f"SELECT published FROM {idx._p} WHERE pid = ANY(%s)", (pids,)).fetchall()
    return [r[0] for r in rows]


def _matching(idx: PostgresIndex, word: str) -> list[datetime]:
    """``published`` of every passage the word matches, by the same configurations."""
    with idx.connection() as conn:
        rows = conn.execute(
            f"SELECT published FROM {idx._p} WHERE tsv @@ to_tsquery(config, %s) ORDER BY published DESC",
            (f"'{word}'",),
        ).fetchall()
    return [r[0] for r in rows]


def test_few_matches_are_all_ranked(index: PostgresIndex) -> None:
    everyone = _matching(index, "россии")
    assert 10 < len(everyone) < postgres_search.KEYWORD_CANDIDATES
    ranking = _ranking(index, "России")
    assert len(ranking) == len(everyone)
    scores = [r for _, r in ranking]
    assert scores == sorted(scores, reverse=True)


def test_many_matches_rank_the_newest(index: PostgresIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    everyone = _matching(index, "россии")
    newest = everyone[0]
    cap = len(everyone) // 3
    monkeypatch.setattr(postgres_search, "KEYWORD_CANDIDATES", cap)
    ranking = _ranking(index, "России")
    assert len(ranking) == cap
    got = _published(index, [p for p, _ in ranking])
    # The first window back from the newest passage that holds ``cap`` matches bounds every
    # candidate, and every match of the windows before it is a candidate.
    bounds = [newest - w for w in postgres_search.KEYWORD_WINDOWS]
    filled = next(b for b in bounds if sum(1 for t in everyone if t >= b) >= cap)
    assert min(got) >= filled
    earlier = [b for b in bounds if b > filled]
    if earlier:
        inner = sum(1 for t in everyone if t >= earlier[-1])
        assert sum(1 for t in got if t >= earlier[-1]) == inner
    assert len(got) < len(everyone)


def test_window_respects_filters(index: PostgresIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    everyone = _matching(index, "россии")
    middle = everyone[len(everyone) // 2]
    monkeypatch.setattr(postgres_search, "KEYWORD_CANDIDATES", 5)
    ranking = _ranking(index, "России", SearchFilters(until=middle))
    assert len(ranking) == 5
    assert all(t < middle for t in _published(index, [p for p, _ in ranking]))
    old = SearchFilters(since=datetime(1990, 1, 1, tzinfo=UTC), until=datetime(1991, 1, 1, tzinfo=UTC))
    assert _ranking(index, "России", old) == []
