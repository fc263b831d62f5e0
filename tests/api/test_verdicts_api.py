"""Verdicts over the HTTP API in process, on the real world: roles, 404s, narrative view, gold export."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from core.matches import match_id
from monitors.verdicts import get_verdict
from narrawatch.read.alerts import show_alert
from tests.api.conftest import bearer
from tests.api.world import HOSTILE_ID, World


def err(resp: Any) -> dict[str, str]:
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    return body["error"]  # type: ignore[no-any-return]


def _matches(client: TestClient, world: World) -> list[dict[str, Any]]:
    r = client.get("/api/v1/narratives/n-nuclear-threat/matches?page_size=100", headers=bearer(world.tokens["read"]))
    assert r.status_code == 200
    rows: list[dict[str, Any]] = r.json()["matches"]
    return rows


def test_endpoints_are_documented(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/v1/matches/{match_id}",
        "/api/v1/matches/{match_id}/verdict",
        "/api/v1/verdicts",
        "/api/v1/verdicts/export",
    ):
        assert path in paths, path


def test_analyst_posts_a_verdict_and_reader_sees_it(client: TestClient, world: World) -> None:
    rows = _matches(client, world)
    assert all(r["id"] == match_id(r["document_id"], r["narrative_id"]) for r in rows)
    target = next(r for r in rows if r["document_id"] == HOSTILE_ID)
    before = client.get("/api/v1/narratives/n-nuclear-threat", headers=bearer(world.tokens["read"])).json()

    r = client.get(f"/api/v1/matches/{target['id']}", headers=bearer(world.tokens["read"]))
    assert r.status_code == 200
    shown = r.json()
    assert shown["verdict"] is None and shown["history"] == [] and shown["passage"] == target["passage"]
    assert {"reasons", "decision", "probability"} <= set(shown)

    r = client.post(
        f"/api/v1/matches/{target['id']}/verdict",
        json={"verdict": "rejected", "note": "hostile test page, not the narrative"},
        headers=bearer(world.tokens["analyst"]),
    )
    assert r.status_code == 200, r.text
    v = r.json()
    assert (v["verdict"], v["analyst"], v["match_id"]) == ("rejected", "alice", target["id"])
    assert get_verdict(world_store(client), target["id"]) is not None

    shown = client.get(f"/api/v1/matches/{target['id']}", headers=bearer(world.tokens["read"])).json()
    assert shown["verdict"]["verdict"] == "rejected" and shown["verdict"]["note"].startswith("hostile")
    assert [h["verdict"] for h in shown["history"]] == ["rejected"]

    # The narrative still lists it (marked), but it no longer counts.
    after = client.get("/api/v1/narratives/n-nuclear-threat", headers=bearer(world.tokens["read"])).json()
    assert after["total"] == before["total"] - 1 and after["rejected"] == 1
    listed = {m["id"]: m for m in _matches(client, world)}
    assert listed[target["id"]]["verdict"]["verdict"] == "rejected"

    r = client.get("/api/v1/verdicts?narrative=n-nuclear-threat", headers=bearer(world.tokens["read"]))
    assert r.status_code == 200 and [x["match_id"] for x in r.json()] == [target["id"]]
    assert (
        client.get("/api/v1/verdicts?narrative=n-sanctions-relief", headers=bearer(world.tokens["read"])).json() == []
    )
    assert client.get("/api/v1/verdicts?verdict=confirmed", headers=bearer(world.tokens["read"])).json() == []


def world_store(client: TestClient) -> Any:
    return client.app.state.ctx.app.matches  # type: ignore[attr-defined]


def test_read_token_cannot_post_and_bad_bodies_are_refused(client: TestClient, world: World) -> None:
    target = _matches(client, world)[3]
    r = client.post(
        f"/api/v1/matches/{target['id']}/verdict", json={"verdict": "confirmed"}, headers=bearer(world.tokens["read"])
    )
    assert r.status_code == 403 and err(r)["code"] == "forbidden"
    r = client.post(f"/api/v1/matches/{target['id']}/verdict", json={"verdict": "confirmed"})
    assert r.status_code == 401
    r = client.post(
        f"/api/v1/matches/{target['id']}/verdict", json={"verdict": "maybe"}, headers=bearer(world.tokens["analyst"])
    )
    assert r.status_code == 422 and err(r)["code"] == "invalid_request"
    r = client.post(
        f"/api/v1/matches/{target['id']}/verdict",
        json={"verdict": "confirmed", "who": "mallory"},
        headers=bearer(world.tokens["analyst"]),
    )
    assert r.status_code == 422
    assert get_verdict(world_store(client), target["id"]) is None


def test_unknown_match_is_404(client: TestClient, world: World) -> None:
    r = client.get("/api/v1/matches/0123456789abcdef", headers=bearer(world.tokens["read"]))
    assert r.status_code == 404 and err(r) == {"code": "not_found", "message": "unknown match '0123456789abcdef'"}
    r = client.post(
        "/api/v1/matches/0123456789abcdef/verdict",
        json={"verdict": "rejected"},
        headers=bearer(world.tokens["analyst"]),
    )
    assert r.status_code == 404 and err(r)["code"] == "not_found"


def test_export_returns_gold_lines(client: TestClient, world: World) -> None:
    rows = _matches(client, world)
    confirmed = next(r for r in rows if r["document_id"] != HOSTILE_ID and r["verdict"] is None)
    r = client.post(
        f"/api/v1/matches/{confirmed['id']}/verdict",
        json={"verdict": "confirmed", "note": "asserts it"},
        headers=bearer(world.tokens["analyst"]),
    )
    assert r.status_code == 200
    rejected = next(r for r in rows if r["id"] != confirmed["id"] and r["verdict"] is None)
    r = client.post(
        f"/api/v1/matches/{rejected['id']}/verdict",
        json={"verdict": "rejected"},
        headers=bearer(world.tokens["analyst"]),
    )
    assert r.status_code == 200
    r = client.get("/api/v1/verdicts/export", headers=bearer(world.tokens["read"]))
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    lines = {x["origin"]: x for x in map(json.loads, r.text.splitlines())}
    yes = lines[f"verdict:{confirmed['id']}"]
    assert yes["narratives"] == yes["judged"] == ["n-nuclear-threat"] and yes["analyst"] == "alice"
    doc = world.app.index.get(confirmed["document_id"])
    assert doc is not None and yes["text"].endswith(doc.text)
    no = lines[f"verdict:{rejected['id']}"]
    assert no["narratives"] == [] and no["judged"] == ["n-nuclear-threat"] and no["verdict"] == "rejected"
    r = client.get("/api/v1/verdicts/export?narrative=n-sanctions-relief", headers=bearer(world.tokens["read"]))
    assert r.status_code == 200 and r.text == ""
    assert client.get("/api/v1/verdicts/export").status_code == 401


def test_alert_evidence_carries_the_match_id(client: TestClient, world: World) -> None:
    alert = show_alert(world.app, world.alert_ids[0]).as_dict()
    for event in alert["events"]:
        for m in event["evidence"]:
            assert m["match_id"] == match_id(m["document_id"], m["narrative_id"])
            r = client.get(f"/api/v1/matches/{m['match_id']}", headers=bearer(world.tokens["read"]))
            assert r.status_code == 200
