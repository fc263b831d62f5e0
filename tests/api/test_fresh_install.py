"""Issue 10 item 6: the API and web UI on a fresh install (no index yet), then after the first ingest.

Before the fix the app's startup opened the index read-only and raised ``IndexUnavailable: no
embedded index ... (run an ingest first)``, so ``narrawatch serve`` exited with a traceback.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from core.errors import IndexUnavailable
from core.settings import load_config
from index.embed import HashingEmbedder
from index.local_store import DB_NAME
from narrawatch.http.tokens import TokenStore
from narrawatch.server import create_app
from tests.api.conftest import bearer
from tests.api.fresh import fresh_config, ingest_posts, web_login, write_fresh_config

API_GETS = (
    "/healthz",
    "/metrics",
    "/api/v1/search?q=санкции",
    "/api/v1/search?q=санкции&mode=keyword",
    "/api/v1/search/export?q=санкции&format=jsonl",
    "/api/v1/sources",
    "/api/v1/narratives",
    "/api/v1/narratives/sanctions-hurt-europe-more",
    "/api/v1/narratives/sanctions-hurt-europe-more/matches",
    "/api/v1/alerts",
    "/api/v1/themes",
    "/api/v1/verdicts",
    "/api/v1/verdicts/export",
)
WEB_PAGES = (
    "/alerts",
    "/narratives",
    "/narratives/sanctions-hurt-europe-more",
    "/search",
    "/search?q=санкции",
    "/trace",
    "/trace?claim=санкции бьют по Европе",
    "/themes",
    "/sources",
)


@pytest.mark.timeout(120)
def test_api_and_web_answer_on_an_empty_data_dir_then_serve_the_first_ingest(tmp_path: Path) -> None:
    config = fresh_config(tmp_path)
    assert not config.data_dir.exists()
    with TokenStore.for_config(config) as ts:
        token = ts.create("reader", "read")
    with TestClient(create_app(config), base_url="http://127.0.0.1") as client:
        for path in API_GETS:
            r = client.get(path, headers=bearer(token))
            assert r.status_code == 200, (path, r.status_code, r.text[:300])
        assert client.get("/healthz").json()["documents"] == 0
        assert client.get("/api/v1/search?q=санкции", headers=bearer(token)).json()["results"] == []
        sources = client.get("/api/v1/sources", headers=bearer(token)).json()
        assert sources and all(s["status"] == "never" and s["documents"] == 0 for s in sources)
        r = client.post("/api/v1/trace", headers=bearer(token), json={"claim": "Санкции бьют по Европе"})
        assert r.status_code == 200 and r.json()["items"] == [], r.text[:300]
        missing = client.get("/api/v1/documents/t:1/2", headers=bearer(token))
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"

        web_login(client, token)
        for path in WEB_PAGES:
            r = client.get(path)
            assert r.status_code == 200, (path, r.status_code, r.text[:300])
            assert 'id="no-documents"' in r.text and "No documents yet" in r.text, path

        # Serving created no index (a reader must not make a half-built one for the writer to trip on).
        assert not (config.index_path / DB_NAME).exists()

        ids = ingest_posts(config)  # the first crawl's writer, while the server keeps running

        assert client.get("/healthz").json()["documents"] == len(ids)
        hits = client.get("/api/v1/search?q=Telegram&mode=keyword", headers=bearer(token)).json()["results"]
        assert hits and all(h["document_id"] in ids for h in hits)
        doc = client.get(f"/api/v1/documents/{ids[0]}", headers=bearer(token))
        assert doc.status_code == 200 and doc.json()["id"] == ids[0]
        page = client.get("/search?q=Telegram&mode=keyword")
        assert page.status_code == 200 and 'id="no-documents"' not in page.text and 'class="result"' in page.text
        by_source = {s["id"]: s["documents"] for s in client.get("/api/v1/sources", headers=bearer(token)).json()}
        assert sum(by_source.values()) == len(ids)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.timeout(120)
def test_serve_command_starts_on_a_fresh_install(tmp_path: Path) -> None:
    """The real ``narrawatch serve`` process: it listens and answers instead of exiting with a traceback."""
    cfg = write_fresh_config(tmp_path)
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "narrawatch", "--config", str(cfg), "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        answer = None
        while answer is None and proc.poll() is None:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
            except httpx.TransportError:
                time.sleep(0.2)
        if answer is None:
            _, err = proc.communicate(timeout=10)
            pytest.fail(f"serve exited with {proc.returncode}: {err[-2000:]}")
        assert answer.status_code == 200 and answer.json()["documents"] == 0, answer.text
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/sources", timeout=5).status_code == 401  # still guarded
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
    assert not (tmp_path / "config" / "data" / "index" / DB_NAME).exists()


@pytest.mark.postgresql
@pytest.mark.timeout(120)
def test_serving_on_postgresql_before_the_first_ingest_then_the_ingest(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``index.backend: postgresql`` with no tables under the prefix yet: empty answers, then the
    writer's first ingest is served without a restart (the pending index re-tries the open)."""
    from index.postgres import PostgresIndex
    from narrawatch import pending_index
    from tests.support.pg import unique_prefix

    cfg = write_fresh_config(tmp_path)
    prefix = unique_prefix()
    (cfg / "service.yaml").write_text(
        f"embedding: {{model: hashing}}\nindex: {{backend: postgresql, postgresql: {{table_prefix: {prefix}}}}}\n",
        encoding="utf-8",
    )
    config = load_config(cfg)
    monkeypatch.setattr(pending_index, "PG_RETRY_SECONDS", 0.0)  # re-try the open on every request
    with TokenStore.for_config(config) as ts:
        token = ts.create("reader", "read")
    try:
        with TestClient(create_app(config), base_url="http://127.0.0.1") as client:
            assert client.get("/healthz").json()["documents"] == 0
            assert client.get("/api/v1/search?q=санкции", headers=bearer(token)).json()["results"] == []
            with psycopg.connect(pg_url) as conn:  # serving created nothing
                assert conn.execute("SELECT to_regclass(%s)", (f"{prefix}_meta",)).fetchone() == (None,)

            ids = ingest_posts(config)
            assert client.get("/healthz").json()["documents"] == len(ids)
            hits = client.get("/api/v1/search?q=Telegram&mode=keyword", headers=bearer(token)).json()["results"]
            assert hits and all(h["document_id"] in ids for h in hits)
    finally:
        with PostgresIndex(pg_url, HashingEmbedder().space, table_prefix=prefix) as idx:
            idx.drop()


def test_an_unreachable_postgresql_is_an_error_not_an_empty_index(tmp_path: Path) -> None:
    cfg = write_fresh_config(tmp_path)
    (cfg / "service.yaml").write_text(
        "embedding: {model: hashing}\nindex: {backend: postgresql, postgresql: {url_env: NW_TEST_DEAD_PG}}\n",
        encoding="utf-8",
    )
    config = load_config(cfg)
    os.environ["NW_TEST_DEAD_PG"] = f"postgresql://nobody@127.0.0.1:{_free_port()}/none?connect_timeout=2"
    try:
        from narrawatch.pending_index import open_read_index

        with pytest.raises(IndexUnavailable, match="cannot connect"):
            open_read_index(config, HashingEmbedder().space)
    finally:
        del os.environ["NW_TEST_DEAD_PG"]
