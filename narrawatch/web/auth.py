"""``/`` (to the inbox), ``/login`` and ``/logout``: an API token exchanged for a session cookie."""

from __future__ import annotations

import hmac
import logging
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from narrawatch.http.session import SESSION_COOKIE, SESSION_MAX_AGE, get_ctx
from narrawatch.web.page import User, form, page, safe_next

__all__ = ["LOGIN_COOKIE", "router"]

log = logging.getLogger(__name__)

LOGIN_COOKIE = "nw_login"
"""Holds the login form's nonce for 15 minutes (a login form cannot be posted from elsewhere)."""

router = APIRouter(include_in_schema=False)


@router.get("/")
def home() -> RedirectResponse:
    """The alerts inbox is the start page."""
    return RedirectResponse("/alerts", status_code=303)


@router.get("/login")
def login_form(request: Request, next: str = "/alerts", error: str = "") -> Response:
    """The sign-in form (paste an API token)."""
    nonce = secrets.token_urlsafe(24)
    resp = page(request, "login.html", None, next=safe_next(next), nonce=nonce, error=error, title="Sign in")
    resp.set_cookie(
        LOGIN_COOKIE, nonce, max_age=900, httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )
    return resp


@router.post("/login")
async def login(request: Request) -> Response:
    """Verify the token and set the session cookie; failures count towards the rate limit."""
    data = await request.form()
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    sent = str(data.get("nonce", ""))
    target = safe_next(str(data.get("next", "/alerts")))
    if not nonce or not hmac.compare_digest(nonce, sent):
        return RedirectResponse("/login?error=expired&next=" + target, status_code=303)
    ctx = get_ctx(request)
    token = str(data.get("token", "")).strip()
    info = ctx.app.tokens.verify(token) if token else None
    if info is None or not info.active:
        log.warning("web login refused (%s)", "revoked token" if info else "unknown token")
        request.state.auth_failed = True  # counted by the rate limit (narrawatch.http.guards)
        return RedirectResponse("/login?error=invalid&next=" + target, status_code=303)
    value, _ = ctx.session_cookie(info.token_hash)
    resp = RedirectResponse(target, status_code=303)
    resp.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=SESSION_MAX_AGE,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    resp.delete_cookie(LOGIN_COOKIE)
    log.info("web login: %s (%s)", info.name, info.role)
    return resp


@router.post("/logout")
async def logout(request: Request, who: User) -> Response:
    """End the session (CSRF-checked)."""
    await form(request, who)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE)
    return resp
