"""One real uvicorn server on 127.0.0.1 (ephemeral port) serving the API from a thread."""

from __future__ import annotations

import httpx

from narrawatch.server import ApiServer
from tests.api.world import World


def test_real_server_answers_health_and_an_authenticated_request(world: World) -> None:
    server = ApiServer(world.config, world.app, host="127.0.0.1", port=0).start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        with httpx.Client(base_url=base, timeout=30, trust_env=False) as http:
            health = http.get("/healthz")
            assert health.status_code == 200 and health.json()["status"] == "ok"
            assert "script-src 'self'" in health.headers["content-security-policy"]
            assert http.get("/api/v1/sources").status_code == 401
            r = http.get("/api/v1/sources", headers={"Authorization": f"Bearer {world.tokens['read']}"})
            assert r.status_code == 200 and r.json()[0]["id"] == "evil-site"
            page = http.get("/alerts", follow_redirects=False)
            assert page.status_code == 303 and page.headers["location"].startswith("/login")
    finally:
        server.stop()
    assert not server.thread.is_alive()
