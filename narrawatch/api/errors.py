"""JSON errors for the API (``{"error": {"code", "message"}}``) and HTML errors for the web UI."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import IndexUnavailable, NarrawatchError, UnknownNameError

__all__ = ["ApiError", "LoginRequired", "install_error_handlers", "is_api_path"]

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


class ApiError(Exception):
    """An error with an HTTP status, a short machine-readable code and a message for people."""

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


def _json(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts) or "invalid request"


def _render(request: Request, status: int, code: str, message: str) -> Response:
    if is_api_path(request.url.path):
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return _json(status, code, message, headers)
    renderer: Any = getattr(request.app.state, "render_error", None)
    if renderer is None:
        return _json(status, code, message)
    return renderer(request, status, message)  # type: ignore[no-any-return]


def install_error_handlers(app: FastAPI) -> None:
    """Map our exceptions, HTTP errors and validation errors to JSON (API) or HTML (web) errors."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return _render(request, exc.status, exc.code, exc.message)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        from urllib.parse import quote

        return RedirectResponse("/login?next=" + quote(exc.next_path, safe="/"), status_code=303)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return _render(request, 422, "invalid_request", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        return _render(request, exc.status_code, _CODES.get(exc.status_code, "error"), message)

    @app.exception_handler(UnknownNameError)
    async def _unknown(request: Request, exc: UnknownNameError) -> Response:
        return _render(request, 404, "not_found", f"unknown {exc.what} {exc.name!r}")

    @app.exception_handler(IndexUnavailable)
    async def _unavailable(request: Request, exc: IndexUnavailable) -> Response:
        return _render(request, 503, "unavailable", f"index unavailable: {exc}")

    @app.exception_handler(NarrawatchError)
    async def _ours(request: Request, exc: NarrawatchError) -> Response:
        return _render(request, 400, "bad_request", str(exc))

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _render(request, 500, "internal_error", "internal error (see the server log)")
