"""The FastAPI application: API routers, web pages, security headers, errors."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import ExitStack, asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import Response

from core.settings import Config
from narrawatch.api import ops, routes, routes_trace, routes_verdicts
from narrawatch.api.context import ApiContext
from narrawatch.api.errors import install_error_handlers
from narrawatch.api.guards import install_guards
from narrawatch.app import App, open_app

__all__ = ["CONTENT_SECURITY_POLICY", "SECURITY_HEADERS", "create_app"]

log = logging.getLogger(__name__)

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def create_app(config: Config, *, app: App | None = None) -> FastAPI:
    """The API and web UI for ``config``.

    With ``app`` (``narrawatch run`` passes its own), the API shares the running index and
    counters; without, the index is opened read-only at startup and closed at shutdown (on a
    fresh install it answers as empty until a crawl creates it: :mod:`narrawatch.pending_index`).
    """
    ctx = ApiContext(config, app)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        with ExitStack() as stack:
            if app is None:  # before the first ingest the index is empty, not an error (PendingIndex)
                ctx.attach(stack.enter_context(open_app(config, read_only=True)))
            try:
                yield
            finally:
                if app is None:
                    ctx.attach(None)
                ctx.close()

    api = FastAPI(
        title="narrawatch",
        version="1",
        description=(
            "Search, narrative matches, alerts, spread tracing and emerging themes. "
            "Authenticate with `Authorization: Bearer <token>` (`narrawatch token create`)."
        ),
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
    )
    api.state.ctx = ctx
    install_error_handlers(api)
    install_guards(api, config)  # trusted proxies, auth rate limit (inside the security headers)

    @api.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.url.path.startswith(("/api/", "/login", "/logout")) or "text/html" in response.headers.get(
            "content-type", ""
        ):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    api.include_router(ops.router)
    api.include_router(routes.router)
    api.include_router(routes_trace.router)
    api.include_router(routes_verdicts.router)

    from narrawatch.web import mount_web

    mount_web(api, ctx)
    return api
