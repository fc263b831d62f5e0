"""The HTTP API in-process on a real world: search, filters, paging, exports, auth, errors, metrics, acks."""

from __future__ import annotations

import csv
import io
import itertools
import json
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import validate
from prometheus_client.parser import text_string_to_metric_families

from narrawatch.http.tokens import list_tokens
from narrawatch.read.alerts import list_alerts
from narrawatch.read.search import EXPORT_FIELDS, highlight_spans, rows_to_csv
from tests.api.conftest import bearer
from tests.api.world import HOSTILE_ID, World


def err(resp: object) -> dict[str, str]:
    body = resp.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    return body["error"]  # type: ignore[no-any-return]


def test_openapi_document_is_valid_and_lists_the_endpoints(client: TestClient) -> None:
    r = client.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    validate(doc)
    for path in (
        "/api/v1/search",
        "/api/v1/search/export",
        "/api/v1/documents/{doc_id}",
        "/api/v1/sources",
        "/api/v1/narratives",
        "/api/v1/narratives/{narrative_id}/matches",
        "/api/v1/alerts",
        "/api/v1/alerts/{alert_id}/ack",
        "/api/v1/trace",
        "/api/v1/trace/export",
        "/api/v1/themes",
        "/api/v1/themes/{theme_id}/promote",
        "/healthz",
        "/metrics",
    ):
        assert path in doc["paths"], path
    assert not any(p.startswith(("/login", "/alerts")) for p in doc["paths"])  # pages stay out of the API doc


def test_authentication_and_roles(client: TestClient, world: World) -> None:
    r = client.get("/api/v1/sources")
    assert r.status_code == 401 and err(r)["code"] == "unauthorized"
    assert r.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/v1/sources", headers=bearer("nw_not-a-real-token")).status_code == 401
    assert client.get("/api/v1/sources", headers={"Authorization": "Basic abc"}).status_code == 401
    r = client.get("/api/v1/sources", headers=bearer(world.tokens["revoked"]))
    assert r.status_code == 401 and err(r)["code"] == "token_revoked"
    assert client.get("/api/v1/sources", headers=bearer(world.tokens["read"])).status_code == 200
    r = client.post(f"/api/v1/alerts/{world.alert_ids[0]}/ack", headers=bearer(world.tokens["read"]))
    assert r.status_code == 403 and err(r)["code"] == "forbidden" and "analyst" in err(r)["message"]
    names = {t["name"]: t for t in list_tokens(world.config)}
    assert names["bob"]["revoked_at"] and names["reader"]["role"] == "read" and names["reader"]["last_used"]
    stored = (world.config.data_dir / "tokens.sqlite").read_bytes()
    assert world.tokens["read"].encode() not in stored  # only hashes are stored


def test_search_finds_highlights_and_pages(client: TestClient, world: World) -> None:
    h = bearer(world.tokens["read"])
    r = client.get("/api/v1/search", params={"q": "выборы", "mode": "keyword", "page_size": 5}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["results"]) == 5 and body["has_more"]
    for hit in body["results"]:
        text = hit["passage"]["text"]
        spans = hit["passage"]["highlights"]
        assert spans, text[:200]
        assert all(text[s:e].lower().startswith("выбор") for s, e in spans)
    page2 = client.get(
        "/api/v1/search", params={"q": "выборы", "mode": "keyword", "page_size": 5, "page": 2}, headers=h
    ).json()
    assert page2["results"][0]["rank"] == 6
    assert not {x["document_id"] for x in page2["results"]} & {x["document_id"] for x in body["results"]}
    # semantic hits must reach the embedding space's floor: a query quoting a passage finds it
    quoted = " ".join(body["results"][0]["passage"]["text"].split()[:12])
    sem = client.get("/api/v1/search", params={"q": quoted, "mode": "semantic"}, headers=h).json()
    assert sem["results"] and all(x["semantic_rank"] is not None for x in sem["results"])
    assert sem["results"][0]["document_id"] == body["results"][0]["document_id"]
    assert all(x["semantic_score"] >= sem["semantic_floor"] for x in sem["results"])


def test_search_filters(client: TestClient, world: World) -> None:
    h = bearer(world.tokens["read"])
    all_hits = client.get("/api/v1/search", params={"q": "России", "mode": "keyword", "page_size": 100}, headers=h)
    hits = all_hits.json()["results"]
    assert len(hits) > 10
    source = hits[0]["source_id"]
    one = client.get(
        "/api/v1/search", params={"q": "России", "mode": "keyword", "sources": source, "page_size": 100}, headers=h
    ).json()["results"]
    assert one and {x["source_id"] for x in one} == {source}
    # repeated and comma-separated values both work
    two = [hits[0]["source_id"], next(x["source_id"] for x in hits if x["source_id"] != source)]
    both = client.get(
        "/api/v1/search",
        params=[("q", "России"), ("mode", "keyword"), ("sources", two[0]), ("sources", two[1]), ("page_size", "100")],
        headers=h,
    ).json()
    assert {x["source_id"] for x in both["results"]} == set(two)
    window = {
        "q": "России",
        "mode": "keyword",
        "since": "2024-01-01",
        "until": "2024-07-01T00:00:00Z",
        "page_size": 100,
    }
    dated = client.get("/api/v1/search", params=window, headers=h).json()["results"]
    assert dated and len(dated) < len(hits)
    assert all("2024-01-01" <= x["published"] < "2024-07-01" for x in dated)
    # a language no document has is refused with the known ones (issue 14: it was 200 and [])
    none = client.get("/api/v1/search", params={"q": "России", "languages": "kk"}, headers=h)
    assert none.status_code == 400 and "unknown language 'kk'; known: " in err(none)["message"]
    kinds = client.get("/api/v1/search", params={"q": "Выборы", "kinds": "site", "mode": "keyword"}, headers=h)
    assert [x["document_id"] for x in kinds.json()["results"]] == [HOSTILE_ID]


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"q": "x", "page_size": 1001}, "page_size"),
        ({"q": "x", "k": 0}, "k"),
        ({"q": "x" * 501}, "q"),
        ({"q": ""}, "required"),
        ({"q": "x", "since": "2024-05-01", "until": "2024-04-01"}, "since must be before until"),
        ({"q": "x", "since": "1900-01-01"}, "1990"),
        ({"q": "x", "since": "yesterday-ish"}, "duration"),
        ({"q": "x", "mode": "magic"}, "mode"),
        ({"q": "x", "page": 0}, "page"),
    ],
)
def test_invalid_search_requests_are_422_with_a_clear_message(
    client: TestClient, world: World, params: dict[str, object], needle: str
) -> None:
    r = client.get("/api/v1/search", params=params, headers=bearer(world.tokens["read"]))
    assert r.status_code == 422
    e = err(r)
    assert e["code"] == "invalid_request" and needle in e["message"], e


def test_export_csv_and_jsonl(client: TestClient, world: World) -> None:
    h = bearer(world.tokens["read"])
    q = {"q": "выборы", "mode": "keyword"}
    r = client.get("/api/v1/search/export", params={**q, "format": "csv"}, headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert rows and list(rows[0]) == list(EXPORT_FIELDS)
    # copies follow their original with its rank (copy_of names it)
    ranks = [int(x["rank"]) for x in rows]
    assert ranks[0] == 1 and all(b in (a, a + 1) for a, b in itertools.pairwise(ranks))
    assert all("выбор" in x["passage"].lower() or "выбор" in x["title"].lower() for x in rows)
    j = client.get("/api/v1/search/export", params={**q, "format": "jsonl"}, headers=h)
    lines = [json.loads(x) for x in j.text.splitlines()]
    assert [x["document_id"] for x in lines] == [x["document_id"] for x in rows]
    assert client.get("/api/v1/search/export", params={**q, "format": "xml"}, headers=h).status_code == 422
    assert client.get("/api/v1/search/export", params=q).status_code == 401


def test_csv_cells_cannot_become_formulas() -> None:
    out = rows_to_csv([{"a": '=HYPERLINK("http://x")', "b": "-1+2", "c": 5}], ["a", "b", "c"])
    assert out.splitlines()[1] == '"\'=HYPERLINK(""http://x"")",\'-1+2,5'


def test_highlight_spans_catch_inflections() -> None:
    text = "Выборов не будет, выборы отменены; ВЫБОРЫ!"
    assert [text[s:e] for s, e in highlight_spans(text, "выборы")] == ["Выборов", "выборы", "ВЫБОРЫ"]


def test_documents(client: TestClient, world: World) -> None:
    h = bearer(world.tokens["read"])
    doc_id = next(d for d in world.doc_ids if d.startswith("tg:"))
    r = client.get(f"/api/v1/documents/{doc_id}", headers=h)
    assert r.status_code == 200 and r.json()["id"] == doc_id and r.json()["passages"]
    r = client.get("/api/v1/documents/tg:nope/1", headers=h)
    assert r.status_code == 404 and err(r)["code"] == "not_found"


def test_sources_failing_first(client: TestClient, world: World) -> None:
    rows = client.get("/api/v1/sources", headers=bearer(world.tokens["read"])).json()
    assert rows[0]["id"] == "evil-site" and rows[0]["status"] == "failing" and rows[0]["consecutive_failures"] == 1
    assert {r["status"] for r in rows[1:]} <= {"ok", "quiet"}
    assert sum(r["documents"] for r in rows) == 240
    assert len(rows) == len(world.config.sources)


def test_narratives_and_matches(client: TestClient, world: World) -> None:
    h = bearer(world.tokens["read"])
    rows = client.get("/api/v1/narratives", headers=h).json()
    by_id = {r["id"]: r for r in rows}
    nuc = by_id["n-nuclear-threat"]
    assert nuc["title"] == "Nuclear threat" and nuc["total"] == 25
    assert sum(p["count"] for p in nuc["timeline"]) == 25
    assert nuc["timeline"] == sorted(nuc["timeline"], key=lambda p: p["day"])
    r = client.get("/api/v1/narratives/n-nuclear-threat/matches", params={"page_size": 10}, headers=h).json()
    assert len(r["matches"]) == 10 and r["has_more"] and r["total"] == 25
    times = [m["published"] for m in r["matches"]]
    assert times == sorted(times, reverse=True)
    last = client.get(
        "/api/v1/narratives/n-nuclear-threat/matches", params={"page_size": 10, "page": 3}, headers=h
    ).json()
    assert len(last["matches"]) == 5 and not last["has_more"]
    assert client.get("/api/v1/narratives/n-nuclear-threat", params={"page_size": 500}, headers=h).status_code == 422
    assert client.get("/api/v1/narratives/no-such", headers=h).status_code == 404


def test_alerts_list_filter_and_ack(client: TestClient, world: World) -> None:
    h = bearer(world.tokens["read"])
    rows = client.get("/api/v1/alerts", headers=h).json()
    assert len(rows) == 4
    crit = client.get("/api/v1/alerts", params={"severity": "critical"}, headers=h).json()
    assert [a["rule"] for a in crit] == ["spike"]
    target = crit[0]["id"]
    shown = client.get(f"/api/v1/alerts/{target}", headers=h).json()
    assert shown["events"][0]["evidence"] and shown["acked_at"] is None
    a = bearer(world.tokens["analyst"])
    r = client.post(f"/api/v1/alerts/{target}/ack", headers=a)
    assert r.status_code == 200 and r.json()["changed"] and r.json()["acked_by"] == "alice"
    again = client.post(f"/api/v1/alerts/{target}/ack", headers=a, json={"note": "seen"})
    assert again.status_code == 200 and not again.json()["changed"]
    unacked = client.get("/api/v1/alerts", params={"unacked": True}, headers=h).json()
    assert target not in {x["id"] for x in unacked} and len(unacked) == 3
    persisted = {x["id"]: x for x in (a.as_dict() for a in list_alerts(world.app))}
    assert persisted[target]["acked_by"] == "alice"
    assert client.post("/api/v1/alerts/nope/ack", headers=a).status_code == 404
    assert client.post(f"/api/v1/alerts/{target}/ack", headers=a, json={"bogus": 1}).status_code == 422


def test_metrics_parse(client: TestClient, world: World) -> None:
    r = client.get("/metrics", headers=bearer(world.tokens["read"]))  # the test client is not on loopback
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    fams = {f.name: f for f in text_string_to_metric_families(r.text)}
    value = {
        f: fams[f].samples[0].value
        for f in (
            "narrawatch_documents",
            "narrawatch_passages",
            "narrawatch_alerts",
            "narrawatch_alerts_pending",
            "narrawatch_index_up",
            "narrawatch_matches",
        )
    }
    assert value["narrawatch_documents"] == 240 and value["narrawatch_passages"] >= 240
    assert value["narrawatch_index_up"] == 1 and value["narrawatch_matches"] == 28
    counts = world.app.outbox.counts()
    assert value["narrawatch_alerts"] == counts["alerts"] == 4
    assert value["narrawatch_alerts_pending"] == counts.get("pending", 0) == 1
    stages = {s.labels["stage"]: s.value for s in fams["narrawatch_stage_events"].samples}
    assert stages["index.new"] == 240


def test_healthz_and_security_headers(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok" and r.json()["documents"] == 240
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["referrer-policy"] == "no-referrer"
    r = client.get("/api/v1/nothing-here")
    assert r.status_code == 404 and err(r)["code"] == "not_found"


def test_time_values_are_iso_utc(client: TestClient, world: World) -> None:
    rows = client.get("/api/v1/alerts", headers=bearer(world.tokens["read"])).json()
    assert all(datetime.fromisoformat(a["created"]).utcoffset().total_seconds() == 0 for a in rows)  # type: ignore[union-attr]
