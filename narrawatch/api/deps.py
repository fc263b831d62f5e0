"""Dependencies every API router declares: the opened App and the caller's role.

The role checks also declare the ``bearerAuth`` security scheme (HTTP bearer), so the OpenAPI
document says which operations need a token and ``/docs`` offers an "Authorize" button. The
declaration never decides anything: :func:`narrawatch.http.session.require` checks the token
(or, for reads, the web session cookie) and answers 401/403 itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from narrawatch.app import App
from narrawatch.http.session import Principal, get_app, require

__all__ = ["BEARER_SCHEME", "Analyst", "AppDep", "Reader", "bearer_scheme"]

BEARER_SCHEME = "bearerAuth"

bearer_scheme = HTTPBearer(
    scheme_name=BEARER_SCHEME,
    bearerFormat="narrawatch API token (nw_...)",
    description=(
        "An API token from `narrawatch token create --role read|analyst|admin`, sent as "
        "`Authorization: Bearer <token>`. GET requests also accept the web UI's session cookie."
    ),
    auto_error=False,  # require() answers 401 with narrawatch's own error body
)

Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)]


def _role(role: str) -> Callable[[Request, HTTPAuthorizationCredentials | None], Principal]:
    check = require(role)

    def dependency(request: Request, _declared: Credentials) -> Principal:
        return check(request)

    dependency.__name__ = f"require_{role}"
    return dependency


AppDep = Annotated[App, Depends(get_app)]
Reader = Annotated[Principal, Depends(_role("read"))]
Analyst = Annotated[Principal, Depends(_role("analyst"))]
