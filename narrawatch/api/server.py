"""Running the API: ``narrawatch serve`` (blocking) and a background server for ``narrawatch run``."""

from __future__ import annotations

import logging
import threading
import time

import uvicorn

from core.settings import Config
from narrawatch.api.app import create_app
from narrawatch.app import App

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "ApiServer", "serve"]

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def _config(config: Config, app: App | None, host: str, port: int) -> uvicorn.Config:
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
    uvicorn.Server(_config(config, app, host, port)).run()


class ApiServer:
    """The API in a background thread (``narrawatch run`` shares its App with it).

    uvicorn installs no signal handlers outside the main thread, so the host process keeps its own.
    """

    def __init__(self, config: Config, app: App, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
        self.server = uvicorn.Server(_config(config, app, host, port))
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
