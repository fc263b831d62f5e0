"""Evidence packs built from a real crawl on loopback: the WARC records, versions, manifest, verify.

A feed (Meduza's real RSS, links rewritten to the loopback server) with real saved article pages
is ingested through the real crawl subprocess and pipeline; one page is then edited and crawled
again (a second version); an alert is raised on one document through the real outbox.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from alerts.rules import make_alert
from core.documents import Document, document_id_for_url
from core.events import DetectorEvent
from core.matches import Match
from core.serialize import document_from_dict
from core.settings import load_config
from crawlers.archive import read_records
from crawlers.normalize import fingerprint
from index.embed import HashingEmbedder
from index.local import EmbeddedIndex
from narrawatch.app import App
from narrawatch.cli import main
from narrawatch.evidence import alert_pack, document_pack, verify_pack, write_pack
from narrawatch.http.tokens import TokenStore
from narrawatch.server import create_app
from tests.api.fresh import web_login
from tests.support.server import (
    LoopbackServer,
    crawl_events,
    events_of,
    read_page,
    rewrite_feed_links,
    write_crawl_config,
)

FEED = "meduza_all_2026-09-24.rss"
PAGES = ("football.ua.podolski.html.gz", "Pravda_2026_01_08.html.gz", "BBC_2024_08_01.html.gz")
EDIT_FROM, EDIT_TO = "157 миллионов гривен".encode(), "999 миллионов гривен".encode()
NOW = datetime(2026, 9, 25, 12, tzinfo=UTC)


@dataclass
class Crawled:
    app: App
    cfg: Path
    docs: dict[str, Document]
    """By served path."""
    served: dict[str, list[bytes]]
    """Every body served per URL, in order."""
    alert_id: str
    edited_id: str


def _match(doc: Document) -> Match:
    return Match(
        document_id=doc.id,
        narrative_id="n-test",
        score=0.91,
        tier="alert",
        passage_index=0,
        passage_text=doc.passages[0].text,
        exemplar="<script>alert(1)</script> exemplar",
        exemplar_language="ru",
        model="hashing",
        source_id=doc.source_id,
        outlet=doc.outlet,
        language=doc.language,
        published=doc.published,
        url=doc.url,
        title=doc.title,
        similarity=0.8,
        fingerprint=fingerprint(doc.text),
    )


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory, test_data: Path) -> Iterator[Crawled]:
    root = tmp_path_factory.mktemp("evidence")
    with LoopbackServer() as server:
        feed, paths = rewrite_feed_links(
            (test_data / "site" / FEED).read_bytes(), server.base, lambda i, _l: f"/news/{i}"
        )
        server.add("/rss", feed, content_type="application/rss+xml; charset=utf-8")
        served: dict[str, list[bytes]] = {}
        for i, path in enumerate(paths):
            body = read_page(test_data / "site" / "pages" / PAGES[i % len(PAGES)])
            server.add(path, body)
            served[server.url(path)] = [body]
        cfg = write_crawl_config(root / "cfg", [{"id": "meduza", "kind": "feed", "url": server.url("/rss")}])
        service = yaml.safe_load((cfg / "service.yaml").read_text())
        service["embedding"] = {"model": "hashing"}
        service["crawl"]["obey_robots"] = False
        (cfg / "service.yaml").write_text(yaml.safe_dump(service))
        (cfg / "alerts.yaml").write_text("rules:\n  - {id: new-outlet, detector: new_outlet, severity: info}\n")
        config = load_config(cfg)
        emb = HashingEmbedder()
        app = App(config, embedder=emb, index=EmbeddedIndex(config.index_path, emb.space))
        try:
            (report,) = app.pipeline.ingest(["meduza"])
            assert report.new == 4, report.as_dict()
            docs = {}
            for path in paths:
                stored = app.index.get(document_id_for_url(_canon(server.url(path))))
                assert stored is not None and stored.capture is not None
                docs[path] = stored
            # Edit the Pravda page and crawl it again with a fresh state: a second version.
            edited_path = paths[1]
            body = served[server.url(edited_path)][0]
            assert EDIT_FROM in body
            edited = body.replace(EDIT_FROM, EDIT_TO)
            server.add(edited_path, edited)
            served[server.url(edited_path)].append(edited)
            again = [document_from_dict(e["document"]) for e in events_of(crawl_events(cfg, ["meduza"]), "document")]
            (new_text,) = [d for d in again if d.id == docs[edited_path].id]
            result = app.pipeline.index_documents([new_text])
            assert result.updated == (new_text.id,)
            # An alert on the edited document and one other.
            cfg_alerts = app.alerts_config
            evidence = (_match(docs[edited_path]), _match(docs[paths[0]]))
            event = DetectorEvent(
                detector="new_outlet",
                key="n-test|meduza",
                narrative_id="n-test",
                source_id="meduza",
                title="New outlet <b>x</b>",
                summary="two items",
                window_start=NOW - timedelta(hours=6),
                window_end=NOW,
                evidence=evidence,
                rule="new-outlet",
            )
            app.matches.add(list(evidence))
            alert = make_alert(cfg_alerts.rule("new-outlet"), [event], NOW)
            app.outbox.enqueue(alert, [])
            yield Crawled(app, cfg, docs, served, alert.id, docs[edited_path].id)
        finally:
            app.close()


def _canon(url: str) -> str:
    from crawlers.normalize import canonical_url

    return canonical_url(url)


def _zip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _rezip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return out.getvalue()


def test_evidence_store_has_two_versions_of_the_edited_page(crawled: Crawled) -> None:
    versions = crawled.app.evidence.versions(crawled.edited_id)
    assert [v.number for v in versions] == [1, 2]
    assert "157 миллионов гривен" in versions[0].text and "999 миллионов гривен" in versions[1].text
    bodies = crawled.served[versions[0].capture.url if versions[0].capture else ""]
    assert [v.capture.sha256 if v.capture else None for v in versions] == [
        hashlib.sha256(b).hexdigest() for b in bodies
    ]
    assert len(crawled.app.evidence.captures(crawled.edited_id)) == 2


def test_document_pack_holds_every_version_and_verifies(crawled: Crawled, tmp_path: Path) -> None:
    data = document_pack(crawled.app, crawled.edited_id, now=NOW)
    files = _zip(data)
    assert {"records.warc.gz", "manifest.json", "summary.html", "SHA256SUMS"} <= set(files)
    manifest = json.loads(files["manifest.json"])
    assert manifest["subject"] == {"kind": "document", "id": crawled.edited_id}
    (item,) = manifest["items"]
    url = item["url"]
    assert [v["number"] for v in item["versions"]] == [1, 2]
    served = crawled.served[url]
    assert [c["sha256"] for c in item["captures"]] == [hashlib.sha256(b).hexdigest() for b in served]
    # the pack's WARC holds the exact served bodies, readable by warcio
    payloads = [r.payload for r in read_records(io.BytesIO(files["records.warc.gz"])) if r.record_type == "response"]
    assert payloads == served
    assert manifest["trace"] is not None
    report = verify_pack(data)
    assert report.ok, report.problems
    assert report.checked >= 6


def test_alert_pack_covers_its_evidence_and_verifies(crawled: Crawled) -> None:
    data = alert_pack(crawled.app, crawled.alert_id, now=NOW)
    files = _zip(data)
    manifest = json.loads(files["manifest.json"])
    assert manifest["alert"]["id"] == crawled.alert_id
    ids = [i["document_id"] for i in manifest["items"]]
    assert ids[0] == crawled.edited_id and len(ids) == 2
    assert all(i["matches"] and i["matches"][0]["narrative_id"] == "n-test" for i in manifest["items"])
    assert sum(len(i["captures"]) for i in manifest["items"]) == 3
    html = files["summary.html"].decode("utf-8")
    assert "<script" not in html and "&lt;script&gt;" in html
    assert "default-src 'none'" in html
    assert verify_pack(data).ok


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def test_one_changed_byte_in_the_warc_fails_verification(crawled: Crawled) -> None:
    files = _zip(document_pack(crawled.app, crawled.edited_id, now=NOW))
    warc = files["records.warc.gz"]
    files["records.warc.gz"] = _flip(warc, len(warc) // 2)
    report = verify_pack(_rezip(files))
    assert not report.ok
    assert any("records.warc.gz" in p for p in report.problems)


def _members(data: bytes) -> list[bytes]:
    out = []
    while data:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out.append(d.decompress(data))
        data = d.unused_data
    return out


def test_a_changed_body_with_fixed_up_sums_still_fails(crawled: Crawled) -> None:
    """Rewriting a record (valid gzip, valid WARC) and recomputing both file lists still fails: the
    manifest's per-capture body hash no longer matches."""
    import gzip

    files = _zip(document_pack(crawled.app, crawled.edited_id, now=NOW))
    manifest = json.loads(files["manifest.json"])
    loc = manifest["items"][0]["captures"][0]["warc"]
    warc = files["records.warc.gz"]
    member = warc[loc["offset"] : loc["offset"] + loc["length"]]
    records = _members(member)  # response, request: one gzip member each
    assert len(records) == 2 and EDIT_FROM in records[0]
    forged = b"".join(gzip.compress(r.replace(EDIT_FROM, "158 миллионов гривен".encode())) for r in records)
    files["records.warc.gz"] = warc[: loc["offset"]] + forged + warc[loc["offset"] + loc["length"] :]
    # offsets of later records may move: fix them up, as a forger would
    shift = len(forged) - loc["length"]
    for item in manifest["items"]:
        for c in item["captures"]:
            if c["warc"] and c["warc"]["offset"] > loc["offset"]:
                c["warc"]["offset"] += shift
    loc["length"] = len(forged)
    manifest["files"]["records.warc.gz"] = {
        "sha256": hashlib.sha256(files["records.warc.gz"]).hexdigest(),
        "bytes": len(files["records.warc.gz"]),
    }
    files["manifest.json"] = json.dumps(manifest, ensure_ascii=False).encode("utf-8")
    files["SHA256SUMS"] = "".join(
        f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(files.items()) if name != "SHA256SUMS"
    ).encode()
    report = verify_pack(_rezip(files))
    url = manifest["items"][0]["captures"][0]["url"]
    assert report.problems == (
        f"{crawled.edited_id} capture 1: raw body sha256 differs from the manifest ({url})",
        f"{crawled.edited_id} capture 1: WARC-Payload-Digest does not match the record's payload",
    )


def test_one_changed_byte_in_the_manifest_fails_verification(crawled: Crawled) -> None:
    files = _zip(document_pack(crawled.app, crawled.edited_id, now=NOW))
    raw = files["manifest.json"]
    at = raw.index(b'"fetched_at": "') + len(b'"fetched_at": "') + 3  # a digit of the first fetch year
    files["manifest.json"] = raw[:at] + (b"1" if raw[at : at + 1] != b"1" else b"2") + raw[at + 1 :]
    report = verify_pack(_rezip(files))
    assert not report.ok
    assert any("manifest.json" in p for p in report.problems)


def test_cli_writes_and_verifies_a_pack(crawled: Crawled, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pack.zip"
    # the CLI opens its own App on the same config (the fixture's App holds no lock on the files)
    assert main(["--config", str(crawled.cfg), "evidence", "--document", crawled.edited_id, "-o", str(out)]) == 0
    assert main(["--config", str(crawled.cfg), "evidence", "verify", str(out)]) == 0
    assert "ok" in capsys.readouterr().out
    files = _zip(out.read_bytes())
    files["summary.html"] = files["summary.html"].replace(b"Evidence pack", b"Evidence pack!", 1)
    bad = write_pack(_rezip(files), tmp_path / "bad.zip")
    assert main(["--config", str(crawled.cfg), "evidence", "verify", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "summary.html: sha256 differs" in err
    assert main(["--config", str(crawled.cfg), "evidence", "--alert", "nope", "-o", str(tmp_path / "x.zip")]) == 1


def test_api_returns_the_packs(crawled: Crawled) -> None:
    with TokenStore.for_config(crawled.app.config) as ts:
        token = ts.create("reader", "read")
    server = create_app(crawled.app.config, app=crawled.app)
    with TestClient(server, base_url="http://127.0.0.1") as client:
        headers = {"Authorization": f"Bearer {token}"}
        r = client.get(f"/api/v1/documents/{crawled.edited_id}/evidence", headers=headers)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/zip"
        assert verify_pack(r.content).ok
        r = client.get(f"/api/v1/alerts/{crawled.alert_id}/evidence", headers=headers)
        assert r.status_code == 200 and verify_pack(r.content).ok
        assert client.get("/api/v1/alerts/nope/evidence", headers=headers).status_code == 404
        assert client.get(f"/api/v1/alerts/{crawled.alert_id}/evidence").status_code == 401

    with TestClient(server, base_url="http://127.0.0.1") as browser:  # the alert page links the pack
        web_login(browser, token)
        page = browser.get(f"/alerts/{crawled.alert_id}")
        assert page.status_code == 200
        link = f'href="/api/v1/alerts/{crawled.alert_id}/evidence"'
        assert link in page.text
        r = browser.get(f"/api/v1/alerts/{crawled.alert_id}/evidence")  # the session cookie is enough
        assert r.status_code == 200 and verify_pack(r.content).ok
