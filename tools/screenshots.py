"""Screenshots of the web UI for the README: ``python tools/screenshots.py [--config DIR] [--out DIR]``.

Serves the App of ``--config`` (default: the demo's, ``demo/config`` after ``make demo``) on
loopback, signs in with a throw-away analyst token (revoked at the end) and saves PNGs of the
alert, document, trace, narrative, themes and search pages into ``docs/screenshots/`` with Debian's
Chromium through Playwright. Every request outside the loopback server is aborted.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from core.settings import load_config
from narrawatch.app import open_app
from narrawatch.builtins import register_builtins
from narrawatch.http.tokens import TokenStore
from narrawatch.read import narratives
from narrawatch.server import ApiServer

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("NARRAWATCH_CHROMIUM", "/usr/bin/chromium")
SEARCH = "НАТО готовится к войне с Россией"


def _pages(app: Any) -> list[tuple[str, str]]:
    """(name, path) of the pages to shoot, chosen from what the data holds."""
    out: list[tuple[str, str]] = []
    rows = app.outbox.list_alerts(limit=50)
    with_evidence = [r for r in rows if (a := app.outbox.alert(r.id)) is not None and any(e.evidence for e in a.events)]
    if with_evidence:
        out.append(("alert", f"/alerts/{with_evidence[0].id}"))
    else:
        print("no alert with evidence in this data: alert.png skipped", file=sys.stderr)
    top = next((n for n in narratives.narratives_overview(app) if n.summary.total), None)
    if top is not None:
        out.append(("narrative", f"/narratives/{quote(top.id)}"))
        out.append(("trace", f"/trace?narrative_id={quote(top.id)}"))
        best = max(app.matches.matches(top.id), key=lambda m: m.score)
        out.append(("document", f"/documents/{quote(best.document_id, safe='')}"))
    out.append(("narratives", "/narratives"))
    out.append(("themes", "/themes"))
    out.append(("search", "/search?q=" + quote(SEARCH)))
    return out


def main(argv: list[str] | None = None) -> int:
    """Write the screenshots; returns the exit code."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--config", type=Path, default=ROOT / "demo" / "config")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    ap.add_argument("--width", type=int, default=1360)
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    register_builtins()
    config = load_config(args.config)
    args.out.mkdir(parents=True, exist_ok=True)
    name = "screenshots-" + secrets.token_hex(4)
    with TokenStore.for_config(config) as tokens:
        token = tokens.create(name, "analyst")
    try:
        with open_app(config, read_only=True) as app:
            server = ApiServer(config, app, port=0).start()
            base = f"http://127.0.0.1:{server.port}"
            try:
                with sync_playwright() as pw:
                    browser = pw.chromium.launch(
                        executable_path=CHROMIUM,
                        args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
                    )
                    ctx = browser.new_context(viewport={"width": args.width, "height": 900}, locale="en-GB")
                    host = urlsplit(base).netloc

                    def route(r: Any) -> None:
                        parts = urlsplit(r.request.url)
                        (r.continue_ if parts.scheme in ("data", "blob") or parts.netloc == host else r.abort)()

                    ctx.route("**/*", route)
                    page = ctx.new_page()
                    page.goto(base + "/login")
                    page.fill("#token", token)
                    page.click("button[type=submit]")
                    page.wait_for_url(base + "/alerts")
                    for shot, path in _pages(app):
                        page.goto(base + path)
                        page.wait_for_load_state("load")
                        if shot == "trace":
                            page.wait_for_selector("#trace-graph[data-rendered]", timeout=60_000)
                        target = args.out / f"{shot}.png"
                        page.screenshot(path=str(target), full_page=shot not in ("trace", "search"))
                        print(target)
                    browser.close()
            finally:
                server.stop()
    finally:
        with TokenStore.for_config(config) as tokens:
            tokens.revoke(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
