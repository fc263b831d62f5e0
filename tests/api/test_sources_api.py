"""``/api/v1/sources``: metadata in the list, export/import of source lists, adding one source checked
with one real fetch (the crawl subprocess against loopback), and the CLI's ``sources`` commands."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from narrawatch.cli import main
from narrawatch.server import create_app
from tests.api.sources_world import DATA, SourcesWorld, sources_world
from tests.support.server import closed_port


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SourcesWorld]:
    with sources_world(tmp_path_factory.mktemp("sources-world")) as w:
        yield w


@pytest.fixture(scope="module")
def client(world: SourcesWorld) -> Iterator[TestClient]:
    with TestClient(create_app(world.config, app=world.app), base_url="http://127.0.0.1") as c:
        yield c


def test_sources_list_carries_metadata(client: TestClient, world: SourcesWorld) -> None:
    rows = {r["id"]: r for r in client.get("/api/v1/sources", headers=bearer(world.tokens["read"])).json()}
    assert rows["rian"]["actor"] == "state_media" and rows["rian"]["actor_label"] == "state media"
    assert (rows["rian"]["country"], rows["rian"]["owner"], rows["rian"]["platform"]) == (
        "RU",
        "Rossiya Segodnya",
        "Telegram",
    )
    assert rows["rian"]["tags"] == ["state", "agency"] and rows["rian"]["language"] == "ru"
    assert rows["meduza"]["actor_label"] == "exile media" and rows["meduza"]["platform"] == "web (feed)"
    assert rows["tutby"]["owner"] is None and rows["tutby"]["status"] == "never"


def test_export_csv_and_opml(client: TestClient, world: SourcesWorld) -> None:
    resp = client.get("/api/v1/sources/export?format=csv", headers=bearer(world.tokens["read"]))
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(resp.text))}
    assert rows["rian"]["actor"] == "state_media" and rows["rian"]["tags"] == "state;agency"
    opml = client.get("/api/v1/sources/export?format=opml", headers=bearer(world.tokens["read"]))
    assert opml.status_code == 200 and 'xmlUrl="https://meduza.io/rss/all"' in opml.text
    assert client.get("/api/v1/sources/export?format=xls", headers=bearer(world.tokens["read"])).status_code == 422


def test_import_needs_analyst_and_reports_rows(client: TestClient, world: SourcesWorld) -> None:
    body = (DATA / "source_lists" / "feeds.opml").read_bytes()
    assert client.post("/api/v1/sources/import", content=body, headers=bearer(world.tokens["read"])).status_code == 403
    dry = client.post(
        "/api/v1/sources/import?name=feeds.opml",
        content=body,
        headers={**bearer(world.tokens["analyst"]), "Content-Type": "text/x-opml"},
    )
    assert dry.status_code == 200, dry.text
    plan = dry.json()
    assert plan["dry_run"] is True and plan["written"] is None
    assert sorted(e["id"] for e in plan["added"]) == ["onliner", "pravda.com.ua"]  # tut.by is configured as tutby
    assert any("tut.by: already configured as 'tutby'" in b for b in plan["blocked"])
    bad = client.post(
        "/api/v1/sources/import?name=list.csv&format=csv",
        content=b"id,kind,url,actor\nx1,feed,https://example.org/rss,kremlin\n",
        headers=bearer(world.tokens["analyst"]),
    )
    assert bad.status_code == 422 and "list.csv:row 2: actor: Input should be" in bad.json()["error"]["message"]


def test_import_writes_and_the_app_sees_it(client: TestClient, world: SourcesWorld) -> None:
    body = b"id,kind,channel,outlet,actor,country\nsvtv,telegram,svtvnews,SOTA,independent,RU\n"
    resp = client.post(
        "/api/v1/sources/import?dry_run=false&name=more.csv", content=body, headers=bearer(world.tokens["analyst"])
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["written"].endswith("sources.d/imported.yaml")
    rows = {r["id"]: r for r in client.get("/api/v1/sources", headers=bearer(world.tokens["read"])).json()}
    assert rows["svtv"]["actor_label"] == "independent"
    assert (world.config.root / "sources.yaml").read_text(encoding="utf-8").startswith("# operator's list")


def test_add_source_checks_with_one_fetch(client: TestClient, world: SourcesWorld) -> None:
    analyst = bearer(world.tokens["analyst"])
    feed = {"kind": "feed", "url": world.server.url("/rss/meduza.xml"), "id": "meduza2", "actor": "exile_media"}
    before = world.server.hits("/rss/meduza.xml")
    resp = client.post("/api/v1/sources", json=feed, headers=analyst)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["saved"] and out["check"]["ok"] and out["check"]["items"] == 4
    assert out["check"]["message"].startswith("reachable: ") and out["source"]["actor"] == "exile_media"
    assert world.server.hits("/rss/meduza.xml") == before + 1  # one fetch, no article pages
    saved = yaml.safe_load((world.config.data_dir / "sources.d" / "analysts.yaml").read_text(encoding="utf-8"))
    assert [e["id"] for e in saved["sources"]] == ["meduza2"]
    assert client.post("/api/v1/sources", json=feed, headers=analyst).status_code == 422  # already there

    not_feed = client.post(
        "/api/v1/sources", json={"kind": "feed", "url": world.server.url("/about.html"), "id": "about"}, headers=analyst
    )
    assert not_feed.status_code == 422 and "not an RSS/Atom/JSON feed" in not_feed.json()["error"]["message"]
    dead = client.post(
        "/api/v1/sources",
        json={"kind": "feed", "url": f"http://127.0.0.1:{closed_port()}/rss", "id": "dead"},
        headers=analyst,
    )
    assert dead.status_code == 422 and "could not fetch" in dead.json()["error"]["message"]
    invalid = client.post("/api/v1/sources", json={"kind": "feed", "url": "ftp://x/rss"}, headers=analyst)
    assert invalid.status_code == 422 and "not an http(s) URL" in invalid.json()["error"]["message"]
    ids = {r["id"] for r in client.get("/api/v1/sources", headers=analyst).json()}
    assert "meduza2" in ids and not ids & {"about", "dead"}
    assert client.post("/api/v1/sources", json=feed, headers=bearer(world.tokens["read"])).status_code == 403


def test_internal_hosts_are_refused_unless_the_operator_allows(tmp_path: Path) -> None:
    with sources_world(tmp_path, private_hosts=False) as w:
        with TestClient(create_app(w.config, app=w.app), base_url="http://127.0.0.1") as c:
            resp = c.post(
                "/api/v1/sources",
                json={"kind": "feed", "url": w.server.url("/rss/meduza.xml"), "id": "inside"},
                headers=bearer(w.tokens["analyst"]),
            )
        assert resp.status_code == 422
        assert "resolves to an internal address (127.0.0.1); analysts may add public hosts only" in resp.text
        assert w.server.hits("/rss/meduza.xml") == 0


def test_cli_sources_import_export(world: SourcesWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = ["--config", str(world.config.root)]
    assert main([*cfg, "sources", "import", str(DATA / "source_lists" / "feeds.opml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "+ onliner (feed: feed:url=http://www.onliner.by/feed)" in out and "(dry run)" in out
    bad = tmp_path / "bad.csv"
    bad.write_text("id,kind,url,country\nx,feed,https://example.org/rss,Russia\n", encoding="utf-8")
    assert main([*cfg, "sources", "import", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.csv:row 2: country: String should match pattern" in err and "nothing imported" in err
    assert main([*cfg, "sources", "export", "--format", "csv"]) == 0
    assert "rian,telegram,РИА Новости,state_media,RU,Rossiya Segodnya,ru,state;agency" in capsys.readouterr().out
    assert main([*cfg, "sources", "--json"]) == 0
    assert '"actor_label": "state media"' in capsys.readouterr().out
    assert main([*cfg, "sources", "import", str(DATA / "source_lists" / "feeds.opml"), "--print"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert {e["id"] for e in printed["sources"]} == {"onliner", "pravda.com.ua"}
