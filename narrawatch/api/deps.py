"""Dependencies every API router declares: the opened App and the caller's role."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from narrawatch.app import App
from narrawatch.http.session import Principal, get_app, require

__all__ = ["Analyst", "AppDep", "Reader"]

AppDep = Annotated[App, Depends(get_app)]
Reader = Annotated[Principal, Depends(require("read"))]
Analyst = Annotated[Principal, Depends(require("analyst"))]
