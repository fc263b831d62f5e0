"""SearchQuery.k is bounded once for every backend (tantivy aborted the process on k = 3e9)."""

from __future__ import annotations

import pytest

from core.documents import MAX_SEARCH_K, SearchQuery


@pytest.mark.parametrize("k", [0, -1, MAX_SEARCH_K + 1, 3_000_000_000])
def test_out_of_range_k_is_refused(k: int) -> None:
    with pytest.raises(ValueError, match=f"k must be 1..{MAX_SEARCH_K}"):
        SearchQuery(text="выборы", k=k)


def test_bounds_themselves_are_accepted() -> None:
    assert SearchQuery(text="выборы", k=1).k == 1
    assert SearchQuery(text="выборы", k=MAX_SEARCH_K).k == MAX_SEARCH_K
