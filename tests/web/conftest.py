"""Browser fixtures: the fixture world served by a real uvicorn thread, Debian's Chromium via Playwright."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from narrawatch.server import ApiServer
from tests.api.world import World, build_world

CHROMIUM = Path(os.environ.get("NARRAWATCH_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with build_world(tmp_path_factory.mktemp("web-world")) as w:
        yield w


@pytest.fixture(scope="module")
def base_url(world: World) -> Iterator[str]:
    server = ApiServer(world.config, world.app, port=0).start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download needed)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield b
        finally:
            b.close()


@pytest.fixture()
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


class Session:
    """A logged-in page that records dialogs, console errors and CSP violations."""

    def __init__(self, browser: Any, base_url: str, token: str) -> None:
        self.base = base_url
        self.context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="en-GB")
        self.page = self.context.new_page()
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.on("dialog", self._dialog)
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(base_url + "/alerts")
        assert "/login" in self.page.url
        self.page.fill("#token", token)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(base_url + "/alerts")

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def goto(self, path: str) -> Any:
        resp = self.page.goto(self.base + path)
        self.page.wait_for_load_state("load")
        return resp

    def close(self) -> None:
        self.context.close()


@pytest.fixture()
def analyst(browser: Any, base_url: str, world: World) -> Iterator[Session]:
    s = Session(browser, base_url, world.tokens["analyst"])
    yield s
    s.close()
