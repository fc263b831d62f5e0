"""The analysts' web UI: server-rendered pages over the read model, one router per page group
(:mod:`~narrawatch.web.auth`, ``alerts``, ``narratives``, ``documents``, ``search``, ``trace``, ``sources``,
``themes``, ``rules``), mounted on the server app by :func:`mount_web`."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from narrawatch.web import alerts, auth, documents, narratives, rules, search, sources, themes, trace
from narrawatch.web.page import render_error

__all__ = ["STATIC", "mount_web"]

STATIC = Path(__file__).resolve().parent / "static"


def mount_web(server: FastAPI) -> None:
    """Add the pages, the HTML error page and ``/static`` to ``server``."""
    server.state.render_error = render_error
    server.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    for module in (auth, alerts, narratives, documents, search, trace, sources, themes, rules):
        server.include_router(module.router)
