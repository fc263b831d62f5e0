"""Behind a TLS proxy, guessing, and /metrics: forwarded headers from trusted proxies only, Secure
cookies over https, 429 after repeated authentication failures, /metrics by setting.

Before: uvicorn ran with ``proxy_headers=False`` and the app had no notion of a proxy, so behind
a TLS-terminating proxy the session cookie never got ``Secure``; any number of bad tokens and
failed logins were answered; ``/metrics`` answered anyone without a token.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from core.errors import ConfigError
from core.settings import ApiSettings, Config, load_config
from narrawatch.server import ApiServer, create_app
from tests.api.conftest import bearer
from tests.api.world import World

PROXY = ("10.1.2.3", 40000)  # a TLS-terminating proxy on the private network
HTTPS = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}


def _config(world: World, **api: Any) -> Config:
    service = world.config.service.model_copy(update={"api": ApiSettings(**api)})
    return dataclasses.replace(world.config, service=service)


@pytest.fixture()
def make_client(world: World) -> Iterator[Any]:
    opened: list[TestClient] = []

    def make(client: tuple[str, int] = ("127.0.0.1", 50000), **api: Any) -> TestClient:
        c = TestClient(create_app(_config(world, **api), app=world.app), base_url="http://nw.example", client=client)
        c.__enter__()
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.__exit__(None, None, None)


def _login(client: TestClient, token: str, headers: dict[str, str]) -> httpx.Response:
    form = client.get("/login", headers=headers)
    nonce = re.search(r'name="nonce" value="([^"]+)"', form.text)
    assert nonce is not None
    # Sent by hand: the browser talks https to the proxy, so it sends a Secure cookie back; the
    # test client talks http and would not.
    client.cookies.clear()
    return client.post(
        "/login",
        data={"token": token, "nonce": nonce.group(1), "next": "/alerts"},
        headers={**headers, "Cookie": f"nw_login={nonce.group(1)}"},
        follow_redirects=False,
    )


def _set_cookie(resp: httpx.Response, name: str) -> str:
    return next(v for v in resp.headers.get_list("set-cookie") if v.startswith(name + "="))


def test_session_cookie_is_secure_through_a_trusted_proxy_only(make_client: Any, world: World) -> None:
    trusted = make_client(PROXY, trusted_proxies=["10.1.2.0/24"])
    login_page = trusted.get("/login", headers=HTTPS)
    assert "secure" in _set_cookie(login_page, "nw_login").lower()
    r = _login(trusted, world.tokens["read"], HTTPS)
    assert r.status_code == 303 and "; secure" in _set_cookie(r, "nw_session").lower()

    untrusted = make_client(PROXY)  # default: no trusted proxies, headers ignored
    r = _login(untrusted, world.tokens["read"], HTTPS)
    assert r.status_code == 303 and "secure" not in _set_cookie(r, "nw_session").lower()


@pytest.mark.timeout(60)
def test_real_server_honours_a_trusted_proxy(world: World) -> None:
    server = ApiServer(_config(world, trusted_proxies=["127.0.0.1"]), world.app, port=0).start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", trust_env=False, timeout=30) as http:
            via_proxy = http.get("/login", headers={"X-Forwarded-Proto": "https"})
            direct = http.get("/login")
    finally:
        server.stop()
    assert "secure" in _set_cookie(via_proxy, "nw_login").lower()
    assert "secure" not in _set_cookie(direct, "nw_login").lower()


def _fake_clock(client: TestClient) -> list[float]:
    now = [1000.0]
    client.app.state.auth_limiter.clock = lambda: now[0]  # type: ignore[attr-defined]
    return now


def test_bad_tokens_are_rate_limited_per_client_address(make_client: Any, world: World) -> None:
    attacker = make_client(("198.51.100.9", 1234))
    now = _fake_clock(attacker)
    for i in range(10):
        r = attacker.get("/api/v1/sources", headers=bearer(f"nw_guess{i:04d}"))
        assert r.status_code == 401
    r = attacker.get("/api/v1/sources", headers=bearer("nw_guess9999"))
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert r.headers["Content-Security-Policy"]  # still a response of ours
    # even a right token waits: the limit is per address, not per guess
    assert attacker.get("/api/v1/sources", headers=bearer(world.tokens["read"])).status_code == 429
    # another address (same app, same limiter) is not affected
    other = TestClient(attacker.app, base_url="http://nw.example", client=("198.51.100.10", 1))
    assert other.get("/api/v1/sources", headers=bearer(world.tokens["read"])).status_code == 200
    now[0] += 61
    assert attacker.get("/api/v1/sources", headers=bearer(world.tokens["read"])).status_code == 200


def test_failed_web_logins_are_rate_limited(make_client: Any, world: World) -> None:
    client = make_client(("198.51.100.20", 1))
    _fake_clock(client)
    for _ in range(10):
        r = _login(client, "nw_wrong", {})
        assert r.status_code == 303 and "error=invalid" in r.headers["location"]
    r = _login(client, world.tokens["read"], {})
    assert r.status_code == 429 and "text/html" in r.headers["content-type"]
    assert "too many failed sign-ins" in r.text and int(r.headers["Retry-After"]) >= 1


def test_forwarded_for_decides_the_address_only_from_a_trusted_proxy(make_client: Any, world: World) -> None:
    untrusted = make_client(("198.51.100.30", 1))
    _fake_clock(untrusted)
    for i in range(10):  # rotating X-Forwarded-For does not help an untrusted client
        r = untrusted.get("/api/v1/sources", headers={**bearer("nw_x"), "X-Forwarded-For": f"192.0.2.{i}"})
        assert r.status_code == 401
    assert (
        untrusted.get("/api/v1/sources", headers={**bearer("nw_x"), "X-Forwarded-For": "192.0.2.99"}).status_code == 429
    )

    proxied = make_client(PROXY, trusted_proxies=["10.1.2.3"])
    _fake_clock(proxied)
    for _ in range(10):
        r = proxied.get("/api/v1/sources", headers={**bearer("nw_x"), "X-Forwarded-For": "192.0.2.1"})
        assert r.status_code == 401
    blocked = {**bearer(world.tokens["read"]), "X-Forwarded-For": "192.0.2.1"}
    assert proxied.get("/api/v1/sources", headers=blocked).status_code == 429
    fine = {**bearer(world.tokens["read"]), "X-Forwarded-For": "192.0.2.2"}  # another client of the same proxy
    assert proxied.get("/api/v1/sources", headers=fine).status_code == 200


def test_metrics_needs_a_token_unless_asked_directly_on_loopback(make_client: Any, world: World) -> None:
    local = make_client(("127.0.0.1", 1))
    assert local.get("/metrics").status_code == 200
    assert local.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 401  # via a proxy
    remote = make_client(("192.0.2.50", 1))
    assert remote.get("/metrics").status_code == 401
    r = remote.get("/metrics", headers=bearer(world.tokens["read"]))
    assert r.status_code == 200 and "narrawatch_documents" in r.text
    assert make_client(("192.0.2.50", 1), metrics_public=True).get("/metrics").status_code == 200
    assert make_client(("127.0.0.1", 1), metrics_public=False).get("/metrics").status_code == 401


def test_trusted_proxies_are_validated(tmp_path: Any, world: World) -> None:
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "sources.yaml").write_text("sources:\n  - {id: a, kind: feed, url: 'http://127.0.0.1:9/rss'}\n")
    for bad in ("[10.0.0.1/24]", "[proxy.internal]", "10.0.0.1"):
        (cfg / "service.yaml").write_text(f"api: {{trusted_proxies: {bad}}}\n", encoding="utf-8")
        with pytest.raises(ConfigError) as err:
            load_config(cfg)
        assert "trusted_proxies" in str(err.value)
    (cfg / "service.yaml").write_text("api: {trusted_proxies: [127.0.0.1, 10.0.0.0/8, '::1']}\n", encoding="utf-8")
    proxies = load_config(cfg).service.api.trusted_proxies
    assert [str(p) for p in proxies] == ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]
    assert load_config(world.config.root).service.api.trusted_proxies == ()
