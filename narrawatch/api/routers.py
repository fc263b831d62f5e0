"""Every API router, added to the server app by :func:`mount_api`."""

from __future__ import annotations

from fastapi import FastAPI

from narrawatch.api import alerts, evidence, narratives, ops, rules, search, sources, trace

__all__ = ["mount_api"]


def mount_api(server: FastAPI) -> None:
    """Add ``/healthz``, ``/metrics`` and ``/api/v1/...`` to ``server``."""
    # evidence before search: its /documents/{id}/evidence must win over search's /documents/{id:path}
    for module in (ops, evidence, search, sources, narratives, alerts, rules, trace):
        server.include_router(module.router)
