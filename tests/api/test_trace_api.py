"""Trace and themes endpoints over monitors.spread / monitors.themes (skipped until those exist)."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import bearer
from tests.api.world import World


def test_trace_a_narrative(client: TestClient, world: World) -> None:
    pytest.importorskip("monitors.spread")
    h = bearer(world.tokens["read"])
    r = client.post("/api/v1/trace", json={"narrative_id": "n-nuclear-threat"}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    items = body["items"]
    assert len(items) >= 20
    first = body["first_appearances"]["overall"]
    assert first == min(items, key=lambda i: i["published"])["document_id"]
    nodes = {n["id"] for n in body["graph"]["nodes"]}
    assert nodes == {i["document_id"] for i in items}
    assert all(e["source"] in nodes and e["target"] in nodes for e in body["graph"]["edges"])
    assert sum(body["timeline"]["total"]) == len(items)


def test_trace_a_document_and_errors(client: TestClient, world: World) -> None:
    pytest.importorskip("monitors.spread")
    h = bearer(world.tokens["read"])
    doc = world.doc_ids[0]
    r = client.post("/api/v1/trace", json={"document_id": doc}, headers=h)
    assert r.status_code == 200 and doc in {i["document_id"] for i in r.json()["items"]}
    assert client.post("/api/v1/trace", json={"document_id": "tg:none/1"}, headers=h).status_code == 404
    two = client.post("/api/v1/trace", json={"claim": "a", "narrative_id": "b"}, headers=h)
    assert two.status_code == 422 and "exactly one" in two.json()["error"]["message"]
    bad = client.post("/api/v1/trace", json={"url": "javascript:alert(1)"}, headers=h)
    assert bad.status_code == 422 and "http" in bad.json()["error"]["message"]
    assert client.post("/api/v1/trace", json={"claim": "x", "extra": 1}, headers=h).status_code == 422
    assert client.post("/api/v1/trace", json={"narrative_id": "nope"}, headers=h).status_code == 404


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "gexf", "graphml", "png", "svg"])
def test_trace_exports(client: TestClient, world: World, fmt: str) -> None:
    pytest.importorskip("monitors.spread_export")
    if fmt in ("png", "svg"):
        pytest.importorskip("matplotlib")
    h = bearer(world.tokens["read"])
    r = client.get("/api/v1/trace/export", params={"narrative_id": "n-nuclear-threat", "format": fmt}, headers=h)
    assert r.status_code == 200, r.text
    assert f"narrawatch-trace.{fmt}" in r.headers["content-disposition"]
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert len(rows) >= 20 and "document_id" in rows[0]
    elif fmt == "jsonl":
        assert len(r.text.splitlines()) >= 20
    elif fmt in ("gexf", "graphml"):
        root = ET.fromstring(r.content)
        assert root.tag.endswith(fmt)
    elif fmt == "png":
        assert r.content.startswith(b"\x89PNG")
    else:
        assert b"<svg" in r.content[:2000]
    assert client.get("/api/v1/trace/export", params={"narrative_id": "n-nuclear-threat"}).status_code == 401


def test_themes_list_and_promote(client: TestClient, world: World) -> None:
    pytest.importorskip("monitors.themes")
    h = bearer(world.tokens["read"])
    r = client.get("/api/v1/themes", params={"since": "2023-01-01"}, headers=h)
    assert r.status_code == 200, r.text
    themes = r.json()
    if not themes:
        pytest.skip("no themes in the fixture world")
    tid = str(themes[0]["id"])
    body = {"narrative_id": "draft-from-theme", "since": "2023-01-01"}
    assert client.post(f"/api/v1/themes/{tid}/promote", json=body, headers=h).status_code == 403
    a = bearer(world.tokens["analyst"])
    p = client.post(f"/api/v1/themes/{tid}/promote", json=body, headers=a)
    assert p.status_code == 200, p.text
    assert p.json()["path"].endswith(".yaml")
    bad = client.post(f"/api/v1/themes/{tid}/promote", json={"narrative_id": "Bad Id"}, headers=a)
    assert bad.status_code == 422
