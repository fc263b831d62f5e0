"""Errors over HTTP: JSON (``{"error": {"code", "message"}}``) for the API, HTML for the web pages.

The read model raises :mod:`core.errors`; this module maps them to statuses once for both
front-ends: ``NotFoundError``/``UnknownNameError`` 404, ``ConflictError`` 409,
``InvalidRequestError`` 422, ``IndexUnavailable`` 503, any other ``NarrawatchError`` 400.
Non-API paths are rendered by the page renderer the web UI installs as ``app.state.render_error``.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import (
    ConflictError,
    IndexUnavailable,
    InvalidRequestError,
    NarrawatchError,
    NotFoundError,
    UnknownNameError,
)

__all__ = ["HttpError", "LoginRequired", "install_error_handlers", "is_api_path", "render", "validation_message"]

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    422: "invalid_request",
    500: "internal_error",
    503: "unavailable",
}


class HttpError(Exception):
    """An error with an HTTP status, a short machine-readable code and a message for people
    (what only the HTTP edge knows: authentication, roles, CSRF, a server still starting)."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _CODES.get(status, "error")
        self.message = message


class LoginRequired(Exception):
    """A web page was requested without a valid session: redirect to the login page."""

    def __init__(self, next_path: str = "/") -> None:
        super().__init__(next_path)
        self.next_path = next_path


def is_api_path(path: str) -> bool:
    """Paths answered with JSON errors (everything else gets HTML)."""
    return path.startswith("/api/") or path in ("/healthz", "/metrics", "/openapi.json")


def validation_message(exc: RequestValidationError | ValidationError, *, drop: tuple[str, ...] = ()) -> str:
    """``loc: message; ...`` for people (pydantic's "Value error, " prefix dropped)."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in drop)
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts) or "invalid request"


def _json(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def render(request: Request, status: int, code: str, message: str) -> Response:
    """The error as JSON (API paths, or no page renderer installed) or as the web error page."""
    if is_api_path(request.url.path):
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return _json(status, code, message, headers)
    renderer: Any = getattr(request.app.state, "render_error", None)
    if renderer is None:
        return _json(status, code, message)
    return renderer(request, status, message)  # type: ignore[no-any-return]


def install_error_handlers(app: FastAPI) -> None:
    """Map our exceptions, HTTP errors and validation errors to JSON (API) or HTML (web) errors."""

    @app.exception_handler(HttpError)
    async def _http_error(request: Request, exc: HttpError) -> Response:
        return render(request, exc.status, exc.code, exc.message)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse("/login?next=" + quote(exc.next_path, safe="/"), status_code=303)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return render(request, 422, "invalid_request", validation_message(exc, drop=("body", "query", "path")))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        return render(request, exc.status_code, _CODES.get(exc.status_code, "error"), message)

    @app.exception_handler(UnknownNameError)
    async def _unknown(request: Request, exc: UnknownNameError) -> Response:
        return render(request, 404, "not_found", f"unknown {exc.what} {exc.name!r}")

    @app.exception_handler(NotFoundError)
    async def _not_found(request: Request, exc: NotFoundError) -> Response:
        return render(request, 404, "not_found", str(exc))

    @app.exception_handler(ConflictError)
    async def _conflict(request: Request, exc: ConflictError) -> Response:
        return render(request, 409, "conflict", str(exc))

    @app.exception_handler(InvalidRequestError)
    async def _unanswerable(request: Request, exc: InvalidRequestError) -> Response:
        return render(request, 422, "invalid_request", str(exc))

    @app.exception_handler(IndexUnavailable)
    async def _unavailable(request: Request, exc: IndexUnavailable) -> Response:
        return render(request, 503, "unavailable", f"index unavailable: {exc}")

    @app.exception_handler(NarrawatchError)
    async def _ours(request: Request, exc: NarrawatchError) -> Response:
        return render(request, 400, "bad_request", str(exc))

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return render(request, 500, "internal_error", "internal error (see the server log)")
