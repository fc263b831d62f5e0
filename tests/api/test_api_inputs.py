"""Issue 10 item 7, HTTP side: out-of-range times and counts are 422 with a JSON error (pages: an error
message), never a 500. Before the fix ``since=999999d`` raised OverflowError inside validation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from narrawatch.http.tokens import TokenStore
from narrawatch.server import create_app
from tests.api.conftest import bearer
from tests.api.fresh import NARRATIVE_ID, fresh_config, ingest_posts, web_login

BAD_TIMES = (
    "since=999999d",
    "since=99999999999d",
    "until=9999-12-31T23:00-05:00",
    "since=2024-11-20&until=2024-11-01",
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    config = fresh_config(tmp_path_factory.mktemp("api-inputs"))
    ingest_posts(config)
    with TokenStore.for_config(config) as ts:
        token = ts.create("reader", "read")
    with TestClient(create_app(config), base_url="http://127.0.0.1") as client:
        yield client, token


@pytest.mark.parametrize("times", BAD_TIMES)
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/search?q=санкции",
        "/api/v1/search/export?q=санкции&format=csv",
        "/api/v1/narratives?",
        f"/api/v1/narratives/{NARRATIVE_ID}?",
        "/api/v1/alerts?",
        "/api/v1/themes?",
    ],
)
def test_bad_time_ranges_are_422_json(served: tuple[TestClient, str], path: str, times: str) -> None:
    client, token = served
    r = client.get(f"{path}&{times}", headers=bearer(token))
    assert r.status_code == 422, (r.status_code, r.text[:300])
    error = r.json()["error"]
    assert error["code"] == "invalid_request"
    assert any(s in error["message"] for s in ("too long", "out of the range", "before until")), error


@pytest.mark.parametrize("since", ["999999d", "9999-12-31T23:00-05:00"])
def test_trace_with_a_bad_time_is_422(served: tuple[TestClient, str], since: str) -> None:
    client, token = served
    r = client.post("/api/v1/trace", headers=bearer(token), json={"claim": "санкции", "since": since})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request", r.text[:300]


@pytest.mark.parametrize("query", ["page_size=3000000000", "page_size=0", "page=-1", "page=3000000000"])
def test_search_size_is_bounded(served: tuple[TestClient, str], query: str) -> None:
    client, token = served
    r = client.get(f"/api/v1/search?q=санкции&{query}", headers=bearer(token))
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request", r.text[:300]


@pytest.mark.parametrize("times", BAD_TIMES)
@pytest.mark.parametrize("path", ["/search?q=санкции", "/narratives?", "/themes?", "/alerts?"])
def test_pages_show_the_error_instead_of_a_500(served: tuple[TestClient, str], path: str, times: str) -> None:
    client, token = served
    web_login(client, token)
    r = client.get(f"{path}&{times}")
    # the search page answers its form's errors with the API's status (422), the list pages with 200
    assert r.status_code == (422 if path.startswith("/search") else 200), (r.status_code, r.text[:300])
    assert 'class="error"' in r.text and "internal error" not in r.text


def test_narrative_page_with_a_bad_time_is_422(served: tuple[TestClient, str]) -> None:
    client, token = served
    web_login(client, token)
    r = client.get(f"/narratives/{NARRATIVE_ID}?since=999999d")
    assert r.status_code == 422 and "too long" in r.text and "internal error" not in r.text
