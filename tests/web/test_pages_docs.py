"""``/docs`` (Swagger UI) and ``/redoc`` run in Chromium with nothing fetched from outside the
server and no CSP violation; Swagger UI shows the bearer "Authorize" button (issue 14)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.browser

REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def _open(browser: Any, base_url: str, path: str) -> tuple[Any, Any, list[str], list[str]]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    outside: list[str] = []
    errors: list[str] = []
    host = urlsplit(base_url).netloc

    def route(r: Any) -> None:
        url = r.request.url
        if urlsplit(url).scheme in ("data", "blob") or urlsplit(url).netloc == host:
            r.continue_()
        else:  # a CDN, a validator badge, fonts: must not be needed, and never leaves loopback
            outside.append(url)
            r.abort()

    context.route("**/*", route)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base_url + path)
    page.wait_for_load_state("load")
    return context, page, outside, errors


def test_swagger_ui_renders_the_api_offline(browser: Any, base_url: str, artifacts: Path) -> None:
    context, page, outside, errors = _open(browser, base_url, "/docs")
    try:
        page.wait_for_selector(".opblock-tag", timeout=15_000)
        assert page.locator(".opblock").count() >= 15
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert "/api/v1/search" in [p.replace("\u200b", "") for p in paths], paths[:5]
        page.screenshot(path=str(artifacts / "docs.png"))
        page.locator("button.authorize").click()
        dialog = page.locator(".dialog-ux")
        dialog.wait_for(timeout=5_000)
        assert "bearerAuth" in dialog.inner_text() and "http, Bearer" in dialog.inner_text()
        assert not outside, outside
        assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
    finally:
        context.close()


def test_redoc_renders_the_api_offline(browser: Any, base_url: str, artifacts: Path) -> None:
    context, page, outside, errors = _open(browser, base_url, "/redoc")
    try:
        page.wait_for_selector("[role=navigation], .menu-content", timeout=15_000)
        page.wait_for_selector("text=bearerAuth", timeout=15_000)
        assert "/api/v1/search" in page.inner_text("body")
        page.screenshot(path=str(artifacts / "redoc.png"))
        assert not outside, outside
        # ReDoc's sidebar credit points an <img> at its CDN; the policy blocks it before any request.
        blocked = [e for e in errors if "Content Security Policy" in e or "Refused" in e]
        assert all(REDOC_LOGO in e for e in blocked), blocked
    finally:
        context.close()
