"""A loopback replay of real saved content, served over HTTP on 127.0.0.1.

Used by ``narrawatch demo`` (and the benchmarks): Telegram channel previews assembled from real
posts (``/s/<handle>``, paging with ``?before=<id>``), real RSS feeds (``/feeds/<file>``) whose
article links are rewritten to this server, and a permissive robots.txt. Nothing is fetched from
anywhere else. Posts can be released over time (``release``) to replay a timeline.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from narrawatch.demo.tme_pages import build_channel_page

__all__ = ["DEMO_DATA", "ReplayServer", "WebhookSink", "load_demo_posts"]

log = logging.getLogger(__name__)

DEMO_DATA = Path(__file__).resolve().parent / "data"
PAGE_SIZE = 20
# Every absolute link, JSON-escaped ones too, except JSON Feed's version identifier (a name, not a link).
_ABSOLUTE_LINK = re.compile(rb"https?:(\\?/)\1(?!jsonfeed\.org\1version)(?:www\.)?([A-Za-z0-9.-]+)\1")


def load_demo_posts(path: Path | None = None) -> list[dict[str, Any]]:
    """The bundled real Telegram posts (see data/ORIGIN.md)."""
    path = path or DEMO_DATA / "telegram_posts.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


class ReplayServer:
    """Serve channels and feeds on ``http://127.0.0.1:<port>``; use as a context manager."""

    def __init__(
        self,
        posts: Iterable[dict[str, Any]] = (),
        feeds: dict[str, bytes] | None = None,
        channels: Iterable[str] = (),
    ) -> None:
        self._lock = threading.Lock()
        self._channels: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for handle in channels:  # channels that exist but have posted nothing yet
            self._channels[handle] = []
        self._feeds = dict(feeds or {})
        self.requests: list[str] = []
        self.release(posts)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="replay-http", daemon=True)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def release(self, posts: Iterable[dict[str, Any]]) -> None:
        """Make more posts visible (each needs ``handle``, ``message_id``, ``date``, ``text``)."""
        with self._lock:
            for p in posts:
                self._channels[p["handle"]].append(p)
                self._channels[p["handle"]].sort(key=lambda d: int(d["message_id"]))

    def channels(self) -> list[str]:
        """Handles of the channels served."""
        with self._lock:
            return sorted(self._channels)

    def __enter__(self) -> ReplayServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _channel_page(self, handle: str, before: int | None) -> str | None:
        with self._lock:
            if handle not in self._channels:
                return None
            posts = list(self._channels[handle])
        if before is not None:
            posts = [p for p in posts if int(p["message_id"]) < before]
        page = posts[-PAGE_SIZE:]
        older = int(page[0]["message_id"]) if page and len(posts) > len(page) else None
        return build_channel_page(handle, page, older)

    def _feed(self, name: str) -> bytes | None:
        body = self._feeds.get(name)
        if body is None:
            return None

        # Point every article link at this server (those pages 404 here: the crawler then keeps
        # the feed's own summary, which is what happens when an outlet blocks us).
        # JSON feeds escape slashes ("https:\/\/host\/"): keep each link's own style.
        def local(m: re.Match[bytes]) -> bytes:
            slash = m.group(1)
            base = self.base_url.encode().replace(b"/", slash)
            return base + slash + b"articles" + slash + m.group(2) + slash

        return _ABSOLUTE_LINK.sub(local, body)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt: str, *args: Any) -> None:
                log.debug("replay: " + fmt, *args)

            def _send(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                server.requests.append(self.path)
                parts = urlsplit(self.path)
                if parts.path == "/robots.txt":
                    return self._send(200, b"User-agent: *\nAllow: /\n", "text/plain")
                m = re.fullmatch(r"/s/([A-Za-z0-9_]+)", parts.path)
                if m:
                    before = parse_qs(parts.query).get("before", [None])[0]
                    html = server._channel_page(m.group(1), int(before) if before and before.isdigit() else None)
                    if html is not None:
                        return self._send(200, html.encode("utf-8"), "text/html; charset=utf-8")
                m = re.fullmatch(r"/feeds/([A-Za-z0-9_.-]+)", parts.path)
                if m:
                    body = server._feed(m.group(1))
                    if body is not None:
                        return self._send(200, body, "application/rss+xml")
                return self._send(404, b"not found", "text/plain")

        return Handler


def chunks(items: list[dict[str, Any]], n: int) -> Iterator[list[dict[str, Any]]]:
    """Split posts into ``n`` consecutive slices by time (for a replayed timeline)."""
    items = sorted(items, key=lambda d: d["date"])
    size = max(1, -(-len(items) // n))
    for i in range(0, len(items), size):
        yield items[i : i + size]


class WebhookSink:
    """A loopback webhook receiver recording (arrival time, JSON body) of every POST (demo, benchmarks)."""

    def __init__(self) -> None:
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.cond = threading.Condition()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                now = time.perf_counter()
                try:
                    data = json.loads(body)
                except ValueError:
                    data = {"raw": body.decode("utf-8", "replace")}
                with sink.cond:
                    sink.received.append((now, data))
                    sink.cond.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/alerts"

    def wait_for(self, needle: str, timeout: float) -> float | None:
        """Arrival time of the first message whose JSON contains ``needle`` (None on timeout)."""
        end = time.perf_counter() + timeout
        with self.cond:
            while True:
                for t, d in self.received:
                    if needle in json.dumps(d, ensure_ascii=False):
                        return t
                left = end - time.perf_counter()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def close(self) -> None:
        """Stop serving."""
        self._httpd.shutdown()
        self._httpd.server_close()
