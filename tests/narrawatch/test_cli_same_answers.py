"""The CLI is a thin front-end over the App and the read model (issue 11).

On the API test world (real embedded index with 240 real Telegram posts, match store, outbox,
crawl state): one query gives the CLI and the API the same answer with the same field names;
commands get their parts from the App (nothing opens the embedding model it does not need);
``themes --promote`` writes where the API does; and the CLI package stays small and acyclic.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import narrawatch
import narrawatch.backends
from narrawatch.cli import main
from narrawatch.server import create_app
from tests.api.world import World, build_world

NARRAWATCH = Path(narrawatch.__file__).resolve().parent


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with build_world(tmp_path_factory.mktemp("cli-same")) as w:
        yield w


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.config, app=world.app), base_url="http://127.0.0.1") as c:
        c.headers["Authorization"] = f"Bearer {world.tokens['analyst']}"
        yield c


def cli(world: World, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    code = main(["--config", str(world.config.root), "--log-level", "WARNING", *args])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip().startswith(("[", "{")) else out


@pytest.mark.parametrize(("query", "mode"), [("выборы", "keyword"), ("санкции против России", "hybrid")])
def test_search_gives_the_cli_and_the_api_the_same_hits(
    world: World, client: TestClient, capsys: pytest.CaptureFixture[str], query: str, mode: str
) -> None:
    code, rows = cli(world, capsys, "search", query, "--mode", mode, "-k", "5", "--json")
    api = client.get("/api/v1/search", params={"q": query, "mode": mode, "page_size": 5})
    assert code == 0 and api.status_code == 200
    assert rows and rows == api.json()["results"]  # same documents, order, scores and field names
    assert {"document_id", "source_id"} <= set(rows[0]) and not {"id", "source"} & set(rows[0])


def test_search_with_filters_matches_the_api(
    world: World, client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    source = world.config.sources[0].id
    args = ["search", "Россия", "--mode", "keyword", "-k", "20", "--source", source, "--since", "2024-11-01"]
    code, rows = cli(world, capsys, *args, "--json")
    api = client.get(
        "/api/v1/search",
        params={"q": "Россия", "mode": "keyword", "page_size": 20, "sources": source, "since": "2024-11-01"},
    )
    assert code == 0 and rows == api.json()["results"]
    assert rows and all(r["source_id"] == source for r in rows)


def test_a_search_the_read_model_refuses_is_a_usage_error(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--config", str(world.config.root), "search", "   ", "--json"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == "" and "q (the query) is required" in captured.err


def test_sources_gives_the_cli_and_the_api_the_same_rows(
    world: World, client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    code, rows = cli(world, capsys, "sources", "--json")
    api = client.get("/api/v1/sources").json()
    assert code == 0
    keys = ("id", "kind", "outlet", "status", "consecutive_failures", "last_success", "last_error", "documents")
    assert [[r[k] for k in keys] for r in rows] == [[r[k] for k in keys] for r in api]
    assert rows[0]["id"] == "evil-site" and rows[0]["status"] == "failing"  # failing first, as the API lists them
    assert sum(r["documents"] for r in rows) > 0


def test_alerts_and_matches_give_the_api_shapes(
    world: World, client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    code, alerts = cli(world, capsys, "alerts", "list", "--limit", "5", "--json")
    assert code == 0 and alerts == client.get("/api/v1/alerts", params={"limit": 5}).json()
    code, shown = cli(world, capsys, "alerts", "show", alerts[0]["id"], "--json")
    assert code == 0 and shown == client.get(f"/api/v1/alerts/{alerts[0]['id']}").json()

    code, matches = cli(world, capsys, "matches", "list", "--narrative", "n-nuclear-threat", "--limit", "5", "--json")
    api = client.get("/api/v1/narratives/n-nuclear-threat/matches", params={"page_size": 5}).json()
    api_rows = api["matches"] if isinstance(api, dict) else api
    assert code == 0 and matches and api_rows
    assert {"document_id", "source_id"} <= set(matches[0])
    assert set(api_rows[0]) - {"verdict"} <= set(matches[0])  # the same match shape, plus the verdict


def test_commands_that_need_no_model_never_load_it(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("this command must not open the embedding model")

    monkeypatch.setattr(narrawatch.backends, "open_embedder", refuse)
    for argv in (
        ["alerts", "list", "--json"],
        ["matches", "list", "--json"],
        ["narratives", "list", "--json"],
        ["token", "list"],
    ):
        code, _ = cli(world, capsys, *argv)
        assert code == 0, argv


def test_themes_promote_writes_the_draft_where_the_api_does(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["themes", "--since", "2024-01-01", "--min-size", "2"]
    code, themes = cli(world, capsys, *args, "--json")
    assert code == 0 and themes
    code, out = cli(world, capsys, *args, "--promote", "1", "--id", "draft-from-cli")
    draft = world.config.data_dir / "narrative_drafts" / "draft-from-cli.yaml"
    assert code == 0 and str(draft) in out and draft.is_file()
    assert not (world.config.root / "narratives" / "draft-from-cli.yaml").exists()
    # an id the catalogue already has is refused, not overwritten
    code = main(["--config", str(world.config.root), *args, "--promote", "1", "--id", "n-nuclear-threat"])
    assert code == 1 and "already exists" in capsys.readouterr().err


# -- the package itself -----------------------------------------------------------------------------

FORBIDDEN_CALLS = {
    "MatchStore",
    "CrawlStateStore",
    "SightingStore",
    "Outbox",
    "TokenStore",
    "open_index",
    "open_embedder",
}
ALLOWED: dict[str, set[str]] = {}


def _calls(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            names.add(f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else "")
    return names


def _imports(tree: ast.AST) -> set[str]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


@pytest.mark.parametrize("path", sorted((NARRAWATCH / "cli").glob("*.py")), ids=lambda p: p.name)
def test_cli_modules_are_small_and_open_no_part_themselves(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) < 400, path
    tree = ast.parse(text)
    assert not (_calls(tree) & (FORBIDDEN_CALLS - ALLOWED.get(path.name, set()))), path
    assert 'extra.get("narratives")' not in text, "use app.catalogue"


def test_demo_and_terminal_do_not_import_the_cli() -> None:
    for path in [*sorted((NARRAWATCH / "demo").glob("*.py")), NARRAWATCH / "terminal.py"]:
        imported = _imports(ast.parse(path.read_text(encoding="utf-8")))
        assert not {m for m in imported if m == "narrawatch.cli" or m.startswith("narrawatch.cli.")}, path
    assert not (NARRAWATCH / "cli" / "more.py").exists()
