"""One read model (narrawatch.read) behind the API and the web pages: same answers, same fields,
one destination for promoted themes, and front-ends that do not import each other (issue 11)."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.errors import ConflictError, NotFoundError
from index.embed import HashingEmbedder
from monitors.themes import discover_themes
from narrawatch.app import App
from narrawatch.read import documents, search, sources, themes
from narrawatch.read.params import SearchParams
from tests.api.conftest import bearer
from tests.api.world import HOSTILE_ID, NOW, World
from tests.monitors.spread_world import build_index
from tests.monitors.test_themes import SINCE, UNTIL, load_written, planted

ROOT = Path(__file__).resolve().parents[2]


def test_api_search_is_the_read_model_and_ranked_agrees_with_pages(client: TestClient, world: World) -> None:
    q = {"q": "выборы", "mode": "keyword", "page_size": 5}
    api = client.get("/api/v1/search", params=q, headers=bearer(world.tokens["read"])).json()
    mine = search.search(world.app, SearchParams.model_validate(q)).as_dict()
    assert api == mine and len(api["results"]) == 5
    hit = api["results"][0]
    assert {"document_id", "source_id", "passage"} <= set(hit) and "id" not in hit and "source" not in hit
    # The top-k list the CLI prints (``narrawatch search -k``) is the same ranking, the same records.
    top = [r.as_dict() for r in search.ranked(world.app, SearchParams.model_validate(q), 7)]
    assert top[:5] == api["results"] and [r["rank"] for r in top] == list(range(1, 8))
    page2 = search.search(world.app, SearchParams.model_validate({**q, "page": 2})).as_dict()["results"]
    assert [r["document_id"] for r in page2[:2]] == [r["document_id"] for r in top[5:7]]


def test_document_not_found_is_a_core_error_mapped_to_404(client: TestClient, world: World) -> None:
    with pytest.raises(NotFoundError, match="no document"):
        documents.document(world.app, "u:nope")
    r = client.get("/api/v1/documents/u:nope", headers=bearer(world.tokens["read"]))
    assert r.status_code == 404 and r.json()["error"] == {"code": "not_found", "message": "no document 'u:nope'"}
    assert documents.document(world.app, HOSTILE_ID).as_dict()["id"] == HOSTILE_ID


def test_source_health_is_one_function_for_api_and_detectors(client: TestClient, world: World) -> None:
    api = client.get("/api/v1/sources", headers=bearer(world.tokens["read"])).json()
    now = datetime.now(UTC)
    rows = sources.source_health(world.app, now)
    assert [r["id"] for r in api] == [s.source.id for s in rows]
    assert api[0]["id"] == "evil-site" and api[0]["status"] == "failing"  # failing first
    # The fields the CLI printed (every, kind, enabled) and the API's (outlet, documents, status), once.
    assert {"every", "kind", "enabled", "outlet", "documents", "status", "consecutive_failures"} <= set(api[0])
    by_id = {r["id"]: r for r in api}
    assert by_id["evil-site"]["outlet"] == "<b>evil</b>"
    telegram = next(s for s in world.config.sources if s.kind == "telegram")
    assert by_id[telegram.id]["outlet"] == f"t.me/{telegram.channel}"  # type: ignore[attr-defined]
    assert sum(r["documents"] for r in api) == 240  # every indexed document counted once, by source
    # The source-silence detector reads the same health (same outlets), without counting documents.
    health = sources.detector_health(world.app, now)
    assert [(h.source_id, h.outlet) for h in health] == [(r["id"], r["outlet"]) for r in api]
    assert health[0].consecutive_failures == 1


def test_promoted_themes_go_to_the_drafts_directory(world: World, tmp_path: Path) -> None:
    emb = HashingEmbedder()
    index = build_index(tmp_path / "ix", emb, planted())
    app = App(world.config, embedder=emb, index=index)
    try:
        found = discover_themes(app.index, since=SINCE, until=UNTIL, matches=None, min_size=3, distance=0.9)
        assert found
        with pytest.raises(ConflictError, match="already exists"):
            themes.promote_theme_to_draft(app, found[0], "n-nuclear-threat")
        done = themes.promote_theme_to_draft(app, found[0], "draft-from-theme")
        assert done.path == world.config.data_dir / "narrative_drafts" / "draft-from-theme.yaml"
        assert done.as_dict() == {"theme_id": found[0].id, "narrative_id": "draft-from-theme", "path": str(done.path)}
        assert not (world.config.root / "narratives" / "draft-from-theme.yaml").exists()
        # The draft is a valid (disabled) narrative once an operator moves it into config/narratives.
        reviewed = tmp_path / "cfg" / "narratives" / done.path.name
        reviewed.parent.mkdir(parents=True)
        reviewed.write_bytes(done.path.read_bytes())
        load_written(reviewed)
        with pytest.raises(NotFoundError, match="no theme"):
            themes.promote(app, "no-such-theme", "draft-two", since=SINCE)
    finally:
        app.close()


def test_unknown_theme_promotion_is_404(client: TestClient, world: World) -> None:
    r = client.post(
        "/api/v1/themes/no-such-theme/promote",
        json={"narrative_id": "draft-x", "since": NOW.date().isoformat()},
        headers=bearer(world.tokens["analyst"]),
    )
    assert r.status_code == 404 and "no theme" in r.json()["error"]["message"]


def _imported(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sorted(m for m in sys.modules if m.startswith('narrawatch'))))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.timeout(120)
def test_api_and_web_do_not_import_each_other() -> None:
    api = _imported("narrawatch.api.routers")
    assert not {m for m in api if m.startswith("narrawatch.web")}, api
    web = _imported("narrawatch.web")
    assert not {m for m in web if m.startswith("narrawatch.api")}, web
    assert not {m for m in web | api if m.startswith("narrawatch.cli")}
    both = _imported("narrawatch.server")
    assert {"narrawatch.api.routers", "narrawatch.web", "narrawatch.read.search"} <= both


def test_no_private_helpers_or_dynamic_imports_in_front_ends() -> None:
    for path in [*(ROOT / "narrawatch" / "web").glob("*.py"), *(ROOT / "narrawatch" / "api").glob("*.py")]:
        text = path.read_text(encoding="utf-8")
        assert "__import__(" not in text and "importlib" not in text, path
        assert not re.search(r"import _\w+|from narrawatch\.api import (service|tracing)", text), path
