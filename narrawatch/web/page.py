"""What every page group shares: the signed-in user, rendering a template, query and form
parsing, CSRF and role checks, and the HTML error page.

Sessions: the login form (:mod:`narrawatch.web.auth`) exchanges an API token for a signed cookie
(HttpOnly, SameSite=Strict, 12 h) that names the token's hash, so revoking the token ends its
sessions. Every state-changing form carries the session's CSRF token (:func:`form`).
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response

from narrawatch.http.errors import HttpError, LoginRequired
from narrawatch.http.session import SESSION_COOKIE, Principal, get_ctx
from narrawatch.web.render import make_env, query_string

__all__ = [
    "User",
    "current_user",
    "export_query",
    "form",
    "page",
    "params",
    "render_error",
    "require_analyst",
    "safe_next",
    "window",
]

_env = make_env()


def current_user(request: Request) -> Principal:
    """The signed-in user (FastAPI dependency); redirects to the login page without a session."""
    ctx = get_ctx(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    who = ctx.session_principal(cookie) if cookie else None
    if who is None:
        path = request.url.path + (("?" + request.url.query) if request.url.query else "")
        raise LoginRequired(path)
    return who


User = Annotated[Principal, Depends(current_user)]


def page(request: Request, template: str, who: Principal | None, status: int = 200, **data: Any) -> HTMLResponse:
    """Render ``template`` for ``who`` (None on the login and error pages)."""
    html = _env.get_template(template).render(
        user=who,
        index_pending=bool(who) and get_ctx(request).index_pending,
        csrf=who.csrf if who else "",
        can_write=bool(who and who.can("analyst")),
        path=request.url.path,
        **data,
    )
    return HTMLResponse(html, status_code=status)


def params(request: Request, multi: tuple[str, ...] = ()) -> dict[str, Any]:
    """Non-empty query parameters; those named in ``multi`` as lists (repeated keys)."""
    out: dict[str, Any] = {}
    for key in request.query_params:
        if key in multi:
            out[key] = [v for v in request.query_params.getlist(key) if v]
        else:
            value = request.query_params.get(key)
            if value:
                out[key] = value
    return out


def window(request: Request) -> dict[str, Any]:
    """Only ``since`` and ``until`` of the query."""
    return {k: v for k, v in params(request).items() if k in ("since", "until")}


def export_query(raw: dict[str, Any]) -> str:
    """The page's query for its export links (paging and format left out)."""
    return query_string({k: v for k, v in raw.items() if k not in ("page", "page_size", "format")})


async def form(request: Request, who: Principal) -> dict[str, str]:
    """The posted form, after checking its CSRF token against the session's (403 otherwise)."""
    data = await request.form()
    sent = str(data.get("csrf", ""))
    if not who.csrf or not hmac.compare_digest(sent, who.csrf):
        raise HttpError(403, "the form expired or did not come from this site; reload the page and try again")
    return {k: str(v) for k, v in data.items()}


def require_analyst(who: Principal) -> None:
    """403 unless the signed-in user may write (acknowledge, judge, promote)."""
    if not who.can("analyst"):
        raise HttpError(403, f"this needs the 'analyst' role; you are signed in as '{who.name}' ({who.role})")


def safe_next(value: str) -> str:
    """``value`` when it is a local path (no scheme, host or backslash), else ``/alerts``."""
    return value if value.startswith("/") and not value.startswith("//") and "\\" not in value else "/alerts"


def render_error(request: Request, status: int, message: str) -> Response:
    """The HTML error page (installed as ``app.state.render_error``)."""
    ctx = get_ctx(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    who = ctx.session_principal(cookie) if cookie else None
    return page(request, "error.html", who, status=status, status_code=status, message=message, title="Error")
