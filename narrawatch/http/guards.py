"""Request guards: forwarded headers from trusted proxies only, rate-limited authentication failures.

* **Trusted proxies** (``api.trusted_proxies``, default none): uvicorn's ``ProxyHeadersMiddleware``
  runs inside the app (so the in-process client and every server behave alike) and believes
  ``X-Forwarded-For`` / ``X-Forwarded-Proto`` only from those addresses; the client address and the
  scheme (``https`` → ``Secure`` cookies) then come from the proxy. From anyone else the headers are
  ignored, so a client cannot claim another address to dodge the rate limit.
* **Authentication failures** (:class:`narrawatch.http.tokens.FailureLimiter`): a request that presents
  credentials (an ``Authorization`` header, or the login form) and fails (401, or the login page
  marking ``request.state.auth_failed``) counts against its client address; past the limit such
  requests get 429 with ``Retry-After`` before they are checked.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from core.settings import Config
from narrawatch.http.errors import is_api_path
from narrawatch.http.tokens import FailureLimiter

__all__ = ["FORWARDED_HEADERS", "client_address", "install_guards", "is_direct_loopback"]

FORWARDED_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-real-ip")


def client_address(request: Request) -> str:
    """The client's address (the forwarded one when a trusted proxy sent the request)."""
    return request.client.host if request.client else ""


def is_direct_loopback(request: Request) -> bool:
    """True when the client is a loopback address and the request does not come through a proxy."""
    try:
        loopback = ipaddress.ip_address(client_address(request)).is_loopback
    except ValueError:
        return False
    return loopback and not any(h in request.headers for h in FORWARDED_HEADERS)


def _presents_credentials(request: Request) -> bool:
    return "authorization" in request.headers or (request.method == "POST" and request.url.path == "/login")


def _too_many(request: Request, wait: int) -> Response:
    message = f"too many failed sign-ins or bad tokens from this address; try again in {wait} s"
    renderer: Any = getattr(request.app.state, "render_error", None)
    if is_api_path(request.url.path) or renderer is None:
        response: Response = JSONResponse({"error": {"code": "rate_limited", "message": message}}, status_code=429)
    else:
        response = renderer(request, 429, message)
    response.headers["Retry-After"] = str(wait)
    return response


def install_guards(api: FastAPI, config: Config) -> FailureLimiter:
    """Add the rate limit and (outside it) the trusted-proxy middleware; returns the limiter."""
    settings = config.service.api
    limiter = FailureLimiter(settings.auth_failures_per_minute, 60.0)
    api.state.auth_limiter = limiter

    @api.middleware("http")
    async def auth_rate_limit(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if not _presents_credentials(request):
            return await call_next(request)
        client = client_address(request)
        wait = limiter.retry_after(client)
        if wait:
            return _too_many(request, wait)
        response = await call_next(request)
        if response.status_code == 401 or getattr(request.state, "auth_failed", False):
            limiter.record_failure(client)
        return response

    if settings.trusted_proxies:  # added last: runs first, before anything reads the client address
        api.add_middleware(ProxyHeadersMiddleware, trusted_hosts=[str(n) for n in settings.trusted_proxies])
    return limiter
