"""The one HTTP server: the API (:mod:`narrawatch.api`) and the web UI (:mod:`narrawatch.web`) on
one FastAPI app, with security headers, request guards and error rendering; ``narrawatch serve``
(blocking) and a background server for ``narrawatch run``.

The API and the web UI do not import each other: both use :mod:`narrawatch.http` (who is asking,
errors) and the read model (:mod:`narrawatch.read`); only this module knows both.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import ExitStack, asynccontextmanager

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response

from core.settings import Config
from narrawatch.api.docs import mount_docs
from narrawatch.api.routers import mount_api
from narrawatch.app import App, open_app
from narrawatch.http.errors import install_error_handlers
from narrawatch.http.guards import install_guards
from narrawatch.http.session import ServerContext
from narrawatch.web import mount_web

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "SECURITY_HEADERS",
    "ApiServer",
    "create_app",
    "serve",
]

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765

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

    With ``app`` (``narrawatch run`` passes its own), the server shares the running index,
    stores and counters, and leaves closing them to the caller; without, an App is opened
    read-only at startup and closed at shutdown (on a fresh install the index answers as empty
    until a crawl creates it: :mod:`narrawatch.pending_index`).
    """
    ctx = ServerContext(config, app)

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

    server = FastAPI(
        title="narrawatch",
        version="1",
        description=(
            "Search, narrative matches, alerts, spread tracing and emerging themes. "
            "Authenticate with `Authorization: Bearer <token>` (`narrawatch token create`); "
            "interactive docs at `/docs` (Swagger UI) and `/redoc`, served offline."
        ),
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
    )
    server.state.ctx = ctx
    install_error_handlers(server)
    install_guards(server, config)  # trusted proxies, auth rate limit (inside the security headers)

    @server.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.url.path.startswith(("/api/", "/login", "/logout")) or "text/html" in response.headers.get(
            "content-type", ""
        ):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    mount_api(server)
    mount_docs(server)  # /docs and /redoc with local assets and their own CSP (narrawatch.api.docs)
    mount_web(server)
    return server


def _uvicorn_config(config: Config, app: App | None, host: str, port: int) -> uvicorn.Config:
    trusted = config.service.api.trusted_proxies
    if host not in ("127.0.0.1", "localhost", "::1") and not trusted:
        log.warning(
            "serving on %s: put a TLS-terminating proxy in front and list it in api.trusted_proxies "
            "(session cookies get Secure only for requests that arrived over https)",
            host,
        )
    return uvicorn.Config(
        create_app(config, app=app),
        host=host,
        port=port,
        log_level="warning",
        log_config=None,  # uvicorn logs through our handlers (format and secret masking: core.logging)
        access_log=False,
        proxy_headers=False,  # forwarded headers are handled inside the app, from api.trusted_proxies only
        server_header=False,
        lifespan="on",
    )


def serve(config: Config, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, app: App | None = None) -> None:
    """``narrawatch serve``: run the API and web UI until interrupted (index opened read-only)."""
    log.info("narrawatch API and web UI on http://%s:%d/", host, port)
    uvicorn.Server(_uvicorn_config(config, app, host, port)).run()


class ApiServer:
    """The API and web UI in a background thread (``narrawatch run`` shares its App with it).

    uvicorn installs no signal handlers outside the main thread, so the host process keeps its own.
    """

    def __init__(self, config: Config, app: App, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
        self.server = uvicorn.Server(_uvicorn_config(config, app, host, port))
        self.thread = threading.Thread(target=self.server.run, name="narrawatch-api", daemon=True)

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        for server in self.server.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return int(self.server.config.port)

    def start(self, timeout: float = 30.0) -> ApiServer:
        """Start serving; returns once the socket is listening (raises RuntimeError otherwise)."""
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start (port in use?)")
            time.sleep(0.05)
        log.info("API and web UI on http://%s:%d/", self.server.config.host, self.port)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to exit and wait for it."""
        self.server.should_exit = True
        self.thread.join(timeout)
