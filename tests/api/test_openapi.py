"""The OpenAPI document declares its security scheme, and the interactive docs are served
offline under a CSP that lets them run (issue 14)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from narrawatch.api.docs import DOCS_CONTENT_SECURITY_POLICY
from narrawatch.server import CONTENT_SECURITY_POLICY


def test_openapi_declares_bearer_auth_on_every_api_operation(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    validate(doc)
    scheme = doc["components"]["securitySchemes"]["bearerAuth"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    ops = [(path, method, op) for path, item in doc["paths"].items() for method, op in item.items()]
    api_ops = [(p, m, op) for p, m, op in ops if p.startswith("/api/v1/")]
    assert len(api_ops) >= 15
    for path, method, op in api_ops:
        assert op.get("security") == [{"bearerAuth": []}], (method, path)
    by_path = {p: op for p, _m, op in ops}
    assert "security" not in by_path["/healthz"]  # liveness needs no token
    assert {} in by_path["/metrics"]["security"]  # optional (api.metrics_public / loopback)


def test_declared_scheme_matches_what_the_server_enforces(client: TestClient, world: object) -> None:
    # No token: 401 from narrawatch (not FastAPI's 403 "Not authenticated"), with its own body.
    r = client.get("/api/v1/sources")
    assert r.status_code == 401 and "Bearer" in r.text
    token = world.tokens["read"]  # type: ignore[attr-defined]
    assert client.get("/api/v1/sources", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.get("/api/v1/sources", headers={"Authorization": f"Basic {token}"}).status_code == 401


def test_docs_pages_load_only_local_assets_and_no_inline_script(client: TestClient) -> None:
    for path, asset in (
        ("/docs", "/docs/assets/vendor/swagger-ui-bundle.js"),
        ("/redoc", "/docs/assets/vendor/redoc.standalone.js"),
    ):
        r = client.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert r.headers["content-security-policy"] == DOCS_CONTENT_SECURITY_POLICY
        html = r.text
        assert "http://" not in html and "https://" not in html  # no CDN
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S)
        assert scripts and all('src="/docs/assets/' in attrs and not body.strip() for attrs, body in scripts)
        a = client.get(asset)
        assert a.status_code == 200 and len(a.content) > 100_000
    assert client.get("/docs/assets/swagger-init.js").status_code == 200
    assert client.get("/docs/assets/redoc-init.js").status_code == 200


def test_the_relaxed_policy_is_only_on_the_docs_pages(client: TestClient) -> None:
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in DOCS_CONTENT_SECURITY_POLICY  # scripts stay same-origin files
    for path in ("/login", "/openapi.json", "/docs/assets/swagger-init.js", "/static/app.css"):
        assert client.get(path).headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
