"""Interactive API docs served offline: ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc).

FastAPI's default pages load Swagger UI and ReDoc from a CDN and start them with an inline
script; narrawatch is an offline tool with a ``script-src 'self'`` policy, so neither would work.
The assets come from the ``fastapi-offline`` package (Swagger UI 5, which reads OpenAPI 3.1 as
FastAPI writes it, and ReDoc 2; MIT), served from ``/docs/assets``; each page is a static
HTML shell whose start-up code is a file of ours (``docs_static/``), so no inline script runs.
The two pages get a policy that adds only what these renderers need: inline style
(both inject ``<style>`` elements) and ``blob:`` workers (ReDoc's search).
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["ASSETS", "DOCS_CONTENT_SECURITY_POLICY", "DOCS_PATHS", "mount_docs"]

VENDOR = Path(fastapi_offline.__file__).resolve().parent / "static"
ASSETS = Path(__file__).resolve().parent / "docs_static"
DOCS_PATHS = ("/docs", "/redoc")

DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; worker-src 'self' blob:; font-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""The policy of ``/docs`` and ``/redoc`` only (every other page keeps the strict one)."""

_SHELL = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>{title}</title>
{head}
</head>
<body>
<div id="{root}" data-openapi-url="/openapi.json"></div>
{scripts}
</body>
</html>
"""


def _swagger_page() -> str:
    return _SHELL.format(
        title="narrawatch API · Swagger UI",
        head='<link rel="stylesheet" href="/docs/assets/vendor/swagger-ui.css">',
        root="swagger-ui",
        scripts=(
            '<script src="/docs/assets/vendor/swagger-ui-bundle.js"></script>\n'
            '<script src="/docs/assets/swagger-init.js"></script>'
        ),
    )


def _redoc_page() -> str:
    return _SHELL.format(
        title="narrawatch API · ReDoc",
        head="",
        root="redoc",
        scripts=(
            '<script src="/docs/assets/vendor/redoc.standalone.js"></script>\n'
            '<script src="/docs/assets/redoc-init.js"></script>'
        ),
    )


def mount_docs(server: FastAPI) -> None:
    """Add ``/docs``, ``/redoc`` and their assets (``/docs/assets/...``) to ``server``."""
    swagger, redoc = _swagger_page(), _redoc_page()
    headers = {"Content-Security-Policy": DOCS_CONTENT_SECURITY_POLICY}

    @server.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return HTMLResponse(swagger, headers=headers)

    @server.get("/redoc", include_in_schema=False)
    def redoc_ui() -> HTMLResponse:
        return HTMLResponse(redoc, headers=headers)

    server.mount("/docs/assets/vendor", StaticFiles(directory=str(VENDOR)), name="docs-vendor")
    server.mount("/docs/assets", StaticFiles(directory=str(ASSETS)), name="docs-assets")
