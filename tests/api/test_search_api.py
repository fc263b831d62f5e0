"""Search as researchers rely on it, over HTTP and the CLI (issue 14), on the API test world.

The behaviour itself is held on every backend by ``tests/contract/test_query_syntax.py``; this
file checks the surfaces: statuses, the JSON shape, ``k``, sort, streamed exports and the CLI.
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from fastapi.testclient import TestClient

from narrawatch.cli import main
from tests.api.conftest import bearer
from tests.api.world import World


def _get(client: TestClient, world: World, path: str = "/api/v1/search", **params: object) -> object:
    return client.get(path, params=params, headers=bearer(world.tokens["read"]))  # type: ignore[arg-type]


def test_total_pages_and_the_end_of_the_results(client: TestClient, world: World) -> None:
    first = _get(client, world, q="России", mode="keyword", k=7).json()  # type: ignore[attr-defined]
    total = first["total"]
    assert first["page_size"] == 7 and len(first["results"]) == 7 and first["total_is_lower_bound"] is False
    assert first["pages"] == -(-total // 7) and total <= first["total_documents"]
    last = _get(client, world, q="России", mode="keyword", k=7, page=first["pages"]).json()  # type: ignore[attr-defined]
    assert 1 <= len(last["results"]) <= 7 and last["has_more"] is False
    past = _get(client, world, q="России", mode="keyword", k=7, page=first["pages"] + 1).json()  # type: ignore[attr-defined]
    assert past["results"] == [] and past["total"] == total and past["has_more"] is False
    assert {"source", "outlet", "language", "day"} == set(first["facets"])
    assert sum(f["count"] for f in first["facets"]["language"]) == first["total_documents"]


def test_sort_newest_and_views(client: TestClient, world: World) -> None:
    newest = _get(client, world, q="России", mode="keyword", sort="newest", k=50).json()["results"]  # type: ignore[attr-defined]
    dates = [r["published"] for r in newest]
    assert dates == sorted(dates, reverse=True)
    views = _get(client, world, q="России", mode="keyword", sort="views", k=50).json()["results"]  # type: ignore[attr-defined]
    counts = [r["views"] if r["views"] is not None else -1 for r in views]
    assert counts == sorted(counts, reverse=True)


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"q": "России", "sources": "nope"}, "unknown source 'nope'; known: "),
        ({"q": "России source:nope"}, "unknown source 'nope'; known: "),
        ({"q": "России lang:xx"}, "unknown language 'xx'; known: "),
        ({"q": "России", "kinds": "fax"}, "unknown kind 'fax'; known: "),
        ({"q": "России actor:spy"}, "unknown actor 'spy'; known: "),
        ({"q": '"России'}, "unclosed quote at position 1"),
        ({"q": "России sorce:x"}, "unknown field 'sorce'"),
    ],
)
def test_unknown_values_and_bad_syntax_are_400_with_what_is_known(
    client: TestClient, world: World, params: dict[str, object], needle: str
) -> None:
    r = _get(client, world, **params)
    assert r.status_code == 400, r.text  # type: ignore[attr-defined]
    error = r.json()["error"]  # type: ignore[attr-defined]
    assert error["code"] == "bad_request" and needle in error["message"]
    if "known" in needle and "source" in needle:
        assert all(s.id in error["message"] for s in world.config.sources)


def test_export_streams_every_result_without_a_row_cap(client: TestClient, world: World) -> None:
    h = bearer(world.tokens["read"])
    with client.stream("GET", "/api/v1/search/export", params={"q": "России", "mode": "keyword"}, headers=h) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        body = "".join(r.iter_text())
    rows = list(csv.DictReader(io.StringIO(body)))
    page = _get(client, world, q="России", mode="keyword").json()  # type: ignore[attr-defined]
    assert len(rows) == page["total_documents"]  # every document: originals and their copies
    assert len([x for x in rows if not x["copy_of"]]) == page["total"]
    # a query of filters only streams every document of the filters (oldest first)
    every = client.get("/api/v1/search/export", params={"q": "kind:telegram", "format": "jsonl"}, headers=h)
    lines = [json.loads(x) for x in every.text.splitlines()]
    assert len(lines) == sum(world.app.index.count("kind", None).get(k, 0) for k in ("telegram",))
    bad = client.get("/api/v1/search/export", params={"q": "x", "sources": "nope"}, headers=h)
    assert bad.status_code == 400  # checked before the first byte, not a torn body


def test_cli_search_pages_errors_and_streamed_export(
    world: World, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    cfg = str(world.config.root)
    assert main(["--config", cfg, "search", "России", "--mode", "keyword", "-k", "3", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["rank"] for r in rows] == [1, 2, 3] and "copies" in rows[0]
    assert main(["--config", cfg, "search", "России", "--mode", "keyword", "--source", "nope"]) == 2
    assert "unknown source 'nope'; known: " in capsys.readouterr().err
    assert main(["--config", cfg, "search", '"России', "--mode", "keyword"]) == 2
    assert "unclosed quote" in capsys.readouterr().err
    out = f"{tmp_path}/export.jsonl"
    assert main(["--config", cfg, "search", "России", "--mode", "keyword", "--export", "jsonl", "-o", out]) == 0
    with open(out, encoding="utf-8") as fh:
        exported = [json.loads(x) for x in fh]
    assert exported and exported[0]["rank"] == 1
    assert main(["--config", cfg, "search", "России", "--mode", "keyword", "--page", "999"]) == 0
    assert "no results" in capsys.readouterr().out
