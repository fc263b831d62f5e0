"""Who is asking: the server's context (the opened App and the session signer), principals from
bearer tokens or signed session cookies, and role checks — shared by the API and the web pages."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from core.settings import Config
from narrawatch.app import App
from narrawatch.http.errors import HttpError
from narrawatch.http.tokens import role_allows

__all__ = [
    "SESSION_COOKIE",
    "SESSION_MAX_AGE",
    "Principal",
    "ServerContext",
    "get_app",
    "get_ctx",
    "load_secret_key",
    "principal_from_request",
    "require",
    "require_role",
]

log = logging.getLogger(__name__)

SESSION_COOKIE = "nw_session"
SESSION_MAX_AGE = 12 * 3600
"""Seconds a web session lasts (an analyst's working day)."""
SECRET_ENV = "NARRAWATCH_SECRET_KEY"


def load_secret_key(config: Config) -> str:
    """The session-signing key: ``$NARRAWATCH_SECRET_KEY`` or ``<data_dir>/api_secret`` (created 0600)."""
    env = os.environ.get(SECRET_ENV)
    if env:
        return env
    path: Path = config.data_dir / "api_secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    return path.read_text(encoding="utf-8").strip()


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    name: str
    role: str
    token_hash: str
    csrf: str = ""
    """The session's CSRF token (web sessions only)."""

    def can(self, role: str) -> bool:
        """Whether this caller's role includes ``role`` (``read`` < ``analyst``)."""
        return role_allows(self.role, role)


class ServerContext:
    """What requests need from one server: the opened App (tokens, stores, index come from it)
    and the session signer. Created by :func:`narrawatch.server.create_app`."""

    def __init__(self, config: Config, app: App | None) -> None:
        self.config = config
        self._app = app
        self.signer = URLSafeTimedSerializer(load_secret_key(config), salt="narrawatch.session")

    @property
    def app(self) -> App:
        """The opened App (503 while the server is starting)."""
        if self._app is None:
            raise HttpError(503, "the index is not open yet")
        return self._app

    def attach(self, app: App | None) -> None:
        """Set (or clear) the opened App."""
        self._app = app

    @property
    def index_pending(self) -> bool:
        """True while no index exists yet (a fresh install before its first ingest)."""
        return self._app is not None and bool(getattr(self._app.index, "pending", False))

    def session_cookie(self, token_hash: str) -> tuple[str, str]:
        """A signed session value for a verified token, and its CSRF token."""
        csrf = secrets.token_urlsafe(24)
        return self.signer.dumps({"t": token_hash, "c": csrf}), csrf

    def session_principal(self, value: str) -> Principal | None:
        """The principal of a signed session cookie whose token is still active, or None (also
        while the server is starting: the error page asks too)."""
        if self._app is None:
            return None
        try:
            data: Any = self.signer.loads(value, max_age=SESSION_MAX_AGE)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("t"), str):
            return None
        info = self.app.tokens.lookup_hash(data["t"])
        if info is None or not info.active:
            return None
        return Principal(info.name, info.role, info.token_hash, str(data.get("c", "")))


def get_ctx(request: Request) -> ServerContext:
    """The server's context (FastAPI dependency)."""
    ctx: ServerContext = request.app.state.ctx
    return ctx


def get_app(request: Request) -> App:
    """The opened App (FastAPI dependency; 503 while the server is starting)."""
    return get_ctx(request).app


def principal_from_request(request: Request, *, allow_session: bool) -> Principal:
    """Authenticate by ``Authorization: Bearer`` (or, if allowed, the session cookie); 401 otherwise."""
    ctx = get_ctx(request)
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HttpError(401, "use 'Authorization: Bearer <token>'")
        info = ctx.app.tokens.verify(token.strip())
        if info is None:
            raise HttpError(401, "invalid token")
        if not info.active:
            raise HttpError(401, "token revoked", "token_revoked")
        return Principal(info.name, info.role, info.token_hash)
    cookie = request.cookies.get(SESSION_COOKIE)
    if allow_session and cookie:
        found = ctx.session_principal(cookie)
        if found is not None:
            return found
    raise HttpError(401, "authentication required: send 'Authorization: Bearer <token>'")


def require_role(who: Principal, role: str, message: str | None = None) -> None:
    """403 unless ``who`` has ``role``."""
    if not who.can(role):
        raise HttpError(403, message or f"this needs the '{role}' role; token '{who.name}' has '{who.role}'")


def require(role: str) -> Callable[[Request], Principal]:
    """A dependency that admits callers whose role includes ``role``.

    Reads (GET) also accept the web session cookie so that the UI's export links work;
    writes need a bearer token (a cross-site form cannot set that header).
    """

    def dependency(request: Request) -> Principal:
        who = principal_from_request(request, allow_session=request.method in ("GET", "HEAD"))
        require_role(who, role)
        request.state.principal = who
        return who

    return dependency
