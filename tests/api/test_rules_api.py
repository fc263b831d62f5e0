"""``/api/v1/rules`` through the in-process client on the real fixture world (real posts, real stores)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import bearer
from tests.api.world import World

SAVED = {"id": "watch-oreshnik", "detector": "query", "options": {"query": "Орешник"}, "severity": "critical"}


def test_reading_needs_a_token_and_lists_yaml_rules_read_only(client: TestClient, world: World) -> None:
    assert client.get("/api/v1/rules").status_code == 401
    rows = client.get("/api/v1/rules", headers=bearer(world.tokens["read"])).json()
    yaml_rules = {r["id"]: r for r in rows if r["origin"] == "yaml"}
    assert set(yaml_rules) >= {"recurrence", "spike", "new-outlet"}
    assert all(r["editable"] is False for r in yaml_rules.values())


def test_writing_needs_the_analyst_role(client: TestClient, world: World) -> None:
    for token in ("read", "revoked"):
        r = client.post("/api/v1/rules", json=SAVED, headers=bearer(world.tokens[token]))
        assert r.status_code in (401, 403), (token, r.status_code)
    assert client.get("/api/v1/rules/watch-oreshnik", headers=bearer(world.tokens["read"])).status_code == 404


def test_create_edit_test_delete(client: TestClient, world: World) -> None:
    analyst = bearer(world.tokens["analyst"])
    made = client.post("/api/v1/rules", json=SAVED, headers=analyst)
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["origin"] == "store" and body["editable"] and body["created_by"] == "alice"
    assert client.post("/api/v1/rules", json=SAVED, headers=analyst).status_code == 409

    dry = client.post("/api/v1/rules/watch-oreshnik/test?since=2020-01-01", headers=analyst)
    assert dry.status_code == 200, dry.text
    result = dry.json()
    assert result["sent"] is None and result["events"]
    ev = result["events"][0]["evidence"][0]
    assert ev["query"] == "Орешник" and "орешник" in ev["passage"].lower() and ev["score"] > 0

    edited = client.put(
        "/api/v1/rules/watch-oreshnik",
        json={**SAVED, "options": {"query": "Орешник", "languages": ["en"]}},
        headers=analyst,
    )
    assert edited.status_code == 200 and edited.json()["options"]["languages"] == ["en"]
    none = client.post("/api/v1/rules/watch-oreshnik/test?since=2020-01-01", headers=analyst).json()
    assert none["events"] == []  # the posts are Russian

    gone = client.delete("/api/v1/rules/watch-oreshnik", headers=analyst)
    assert gone.status_code == 200 and gone.json() == {"id": "watch-oreshnik", "deleted": True}
    assert client.delete("/api/v1/rules/watch-oreshnik", headers=analyst).status_code == 404


def test_problems_are_422_with_the_path_and_yaml_rules_are_read_only(client: TestClient, world: World) -> None:
    analyst = bearer(world.tokens["analyst"])
    bad = client.post(
        "/api/v1/rules",
        json={"id": "x", "detector": "query", "options": {"query": " ", "bogus": 1}, "countries": ["russia"]},
        headers=analyst,
    )
    assert bad.status_code == 422
    message = bad.json()["error"]["message"]
    assert "countries" in message and "options.bogus: " in message and "options.query" in message
    assert client.put("/api/v1/rules/spike", json={"detector": "spike"}, headers=analyst).status_code == 409
    assert client.delete("/api/v1/rules/spike", headers=analyst).status_code == 409


def test_unsaved_rule_dry_run(client: TestClient, world: World) -> None:
    r = client.post(
        "/api/v1/rules-test?since=2020-01-01",
        json={"detector": "query", "options": {"query": "Орешник", "group": "pass", "max_evidence": 3}},
        headers=bearer(world.tokens["read"]),
    )
    assert r.status_code == 200, r.text
    (event,) = r.json()["events"]
    assert len(event["evidence"]) == 3 and event["title"].startswith("Saved search 'Орешник'")
