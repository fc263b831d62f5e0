"""A real threaded HTTP server on 127.0.0.1 for crawl tests, with routes per test and faults.

Usage::

    with LoopbackServer() as server:
        server.add("/feed.xml", body, content_type="application/rss+xml", etag='"v1"')
        server.fail_times("/a/1", 2, then=Reply(200, page))       # 500 twice, then the page
        ... crawl server.url("/feed.xml") ...
        assert not server.requests_for("/private/x")

Every request is recorded (:class:`RecordedRequest`: method, path with query, lower-case
headers, monotonic time). Faults: n failures then OK, 429 + Retry-After, slow or stalled
bodies, huge bodies (with or without Content-Length), redirect loops, connection resets, and
304 when ``If-None-Match`` matches a route's ETag. Data helpers build feeds whose item links
point back at this server, and Telegram preview pages (real posts, ``?before=`` paging).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

__all__ = [
    "LoopbackServer",
    "RecordedRequest",
    "Reply",
    "closed_port",
    "crawl_events",
    "events_of",
    "load_posts",
    "loopback_server",
    "read_page",
    "rewrite_feed_links",
    "serve_telegram_channel",
    "write_crawl_config",
]


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server received."""

    method: str
    path: str
    """Path with the query string, as sent."""
    headers: dict[str, str]
    """Header names lower-cased."""
    time: float
    """``time.monotonic()`` when the request line was read."""
    body: bytes = b""
    """The request body (POST)."""

    @property
    def route(self) -> str:
        """The path without the query."""
        return urlsplit(self.path).path

    @property
    def query(self) -> dict[str, list[str]]:
        """Parsed query parameters."""
        return parse_qs(urlsplit(self.path).query)

    @property
    def form(self) -> dict[str, list[str]]:
        """Parsed ``application/x-www-form-urlencoded`` body parameters (POST)."""
        return parse_qs(self.body.decode("utf-8", errors="replace"))


@dataclass
class Reply:
    """What to send back. ``delay`` stalls before the headers; ``chunk_delay`` between chunks."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = "text/html; charset=utf-8"
    delay: float = 0.0
    chunk_size: int = 0
    """Send the body in chunks of this size (0: at once)."""
    chunk_delay: float = 0.0
    content_length: bool = True
    """False: no Content-Length; the body ends when the connection closes."""
    reset: bool = False
    """Reset the connection (RST) instead of answering."""
    etag: str | None = None
    """Send this ETag and answer 304 when the request's If-None-Match matches it."""


Handler = Callable[[RecordedRequest, int], Reply]
"""``handler(request, n)``: n is how many requests this route has had, this one included (1-based)."""


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.owner._serve(self)

    def do_HEAD(self) -> None:
        self.server.owner._serve(self)

    def do_POST(self) -> None:
        self.server.owner._serve(self)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    owner: LoopbackServer


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1:<ephemeral port> (or another loopback ``host``); a context manager."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._server = _Server((host, 0), _RequestHandler)
        self._server.owner = self
        self._thread: threading.Thread | None = None
        self._routes: dict[str, Handler] = {}
        self._hits: dict[str, int] = {}
        self._lock = threading.Lock()
        self.requests: list[RecordedRequest] = []

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._server.server_address[1])

    @property
    def base(self) -> str:
        """``http://<host>:<port>``."""
        return f"http://{self.host}:{self.port}"

    def url(self, path: str = "/") -> str:
        """Absolute URL of a path on this server."""
        return self.base + (path if path.startswith("/") else "/" + path)

    def start(self) -> LoopbackServer:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- routes -------------------------------------------------------------------------------

    def route(self, path: str, handler: Handler | Reply) -> None:
        """Serve ``path`` (without query; the handler sees the query) with a handler or a fixed reply."""
        if isinstance(handler, Reply):
            fixed = handler
            self._routes[path] = lambda _req, _n: fixed
        else:
            self._routes[path] = handler

    def add(
        self,
        path: str,
        body: bytes | str,
        *,
        content_type: str | None = "text/html; charset=utf-8",
        status: int = 200,
        headers: dict[str, str] | None = None,
        etag: str | None = None,
    ) -> None:
        """Serve a fixed body."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.route(path, Reply(status, data, dict(headers or {}), content_type, etag=etag))

    # --- faults -------------------------------------------------------------------------------

    def fail_times(self, path: str, times: int, then: Reply, *, status: int = 500) -> None:
        """Answer ``status`` to the first ``times`` requests, then ``then``."""
        self.route(
            path, lambda _r, n: Reply(status, b"server error", content_type="text/plain") if n <= times else then
        )

    def rate_limit(self, path: str, times: int, retry_after: str, then: Reply, *, status: int = 429) -> None:
        """Answer 429 (or 503) with ``Retry-After: retry_after`` ``times`` times, then ``then``."""

        def handler(_r: RecordedRequest, n: int) -> Reply:
            if n <= times:
                return Reply(status, b"slow down", {"Retry-After": retry_after}, "text/plain")
            return then

        self.route(path, handler)

    def slow(self, path: str, delay: float, then: Reply) -> None:
        """Wait ``delay`` seconds before answering (a stalled server, for timeouts)."""
        self.route(path, Reply(then.status, then.body, then.headers, then.content_type, delay=delay))

    def huge(self, path: str, size: int, *, content_length: bool = True) -> None:
        """A body of ``size`` bytes of HTML (with or without a Content-Length header)."""
        chunk = b"<p>" + b"x" * 1017 + b"</p>\n"
        body = b"<html><body>" + chunk * (size // len(chunk) + 1)
        self.route(path, Reply(200, body[:size], chunk_size=64 * 1024, content_length=content_length))

    def redirect_loop(self, path_a: str, path_b: str) -> None:
        """``path_a`` -> ``path_b`` -> ``path_a`` ... (302s)."""
        self.route(path_a, Reply(302, b"", {"Location": self.url(path_b)}, None))
        self.route(path_b, Reply(302, b"", {"Location": self.url(path_a)}, None))

    def reset(self, path: str) -> None:
        """Reset the TCP connection on every request to ``path``."""
        self.route(path, Reply(reset=True))

    # --- inspection ---------------------------------------------------------------------------

    def requests_for(self, path: str) -> list[RecordedRequest]:
        """Recorded requests whose path (without query) is ``path``."""
        with self._lock:
            return [r for r in self.requests if r.route == path]

    def hits(self, path: str) -> int:
        """How many requests ``path`` had."""
        return len(self.requests_for(path))

    # --- serving ------------------------------------------------------------------------------

    def _serve(self, h: _RequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0) if h.command == "POST" else 0
        body = h.rfile.read(length) if length > 0 else b""
        req = RecordedRequest(h.command, h.path, {k.lower(): v for k, v in h.headers.items()}, time.monotonic(), body)
        with self._lock:
            self.requests.append(req)
            n = self._hits[req.route] = self._hits.get(req.route, 0) + 1
        handler = self._routes.get(req.route)
        reply = handler(req, n) if handler else Reply(404, b"not found", content_type="text/plain")
        with contextlib.suppress(OSError):  # the client went away (timeouts, resets): fine
            self._send(h, req, reply)

    def _send(self, h: _RequestHandler, req: RecordedRequest, reply: Reply) -> None:
        if reply.delay:
            time.sleep(reply.delay)
        if reply.reset:
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.connection.close()
            h.close_connection = True
            return
        status, body = reply.status, reply.body
        if reply.etag and req.headers.get("if-none-match") == reply.etag:
            status, body = 304, b""
        h.send_response(status)
        if reply.content_type and status != 304:
            h.send_header("Content-Type", reply.content_type)
        if reply.etag:
            h.send_header("ETag", reply.etag)
        for key, value in reply.headers.items():
            h.send_header(key, value)
        if reply.content_length or status == 304:
            h.send_header("Content-Length", str(len(body)))
        h.send_header("Connection", "close")
        h.end_headers()
        if req.method == "HEAD" or status == 304:
            return
        if not reply.chunk_size:
            h.wfile.write(body)
            return
        for i in range(0, len(body), reply.chunk_size):
            h.wfile.write(body[i : i + reply.chunk_size])
            h.wfile.flush()
            if reply.chunk_delay:
                time.sleep(reply.chunk_delay)


@pytest.fixture
def loopback_server() -> Iterator[LoopbackServer]:
    """A started :class:`LoopbackServer`, stopped after the test."""
    with LoopbackServer() as server:
        yield server


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- real data --------------------------------------------------------------------------------

_ITEM_RE = re.compile(r"<item\b.*?</item>", re.S)
_LINK_RE = re.compile(r"<link>\s*(.*?)\s*</link>", re.S)


def rewrite_feed_links(feed: bytes, base: str, path_for: Callable[[int, str], str]) -> tuple[bytes, list[str]]:
    """Point each RSS item's ``<link>`` at this server: ``base + path_for(i, original_link)``.

    Items without a link are left alone.

    Returns the new feed and the local paths in item order. The rest of the feed is unchanged.
    """
    text = feed.decode("utf-8")
    paths: list[str] = []

    def item(m: re.Match[str]) -> str:
        block = m.group(0)
        link = _LINK_RE.search(block)
        if not link:
            return block
        path = path_for(len(paths), link.group(1))
        paths.append(path)
        new_link = f"<link>{base}{path}</link>"
        return _LINK_RE.sub(lambda _m: new_link, block, count=1)

    return _ITEM_RE.sub(item, text).encode("utf-8"), paths


def read_page(path: Path) -> bytes:
    """A saved page's bytes (``.gz`` files are decompressed)."""
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def load_posts(path: Path) -> list[dict[str, Any]]:
    """Posts from a JSON-lines file like ``telegram_ru_posts.jsonl``."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def serve_telegram_channel(
    server: LoopbackServer, channel: str, posts: Sequence[dict[str, Any]], *, page_size: int = 20
) -> None:
    """Serve ``/s/<channel>`` like t.me: the newest ``page_size`` posts, ``?before=<id>`` for older ones.

    Pages are built with :func:`tests.support.tme.build_channel_page` from real posts; each page
    links to the next older one (``before``) while older posts remain.
    """
    from tests.support.tme import build_channel_page

    ordered = sorted(posts, key=lambda p: int(p["message_id"]))

    def handler(req: RecordedRequest, _n: int) -> Reply:
        before = req.query.get("before", [None])[0]
        older = [p for p in ordered if before is None or int(p["message_id"]) < int(before)]
        page = older[-page_size:]
        has_more = len(older) > len(page)
        html = build_channel_page(channel, [dict(p) for p in page], int(page[0]["message_id"]) if has_more else None)
        return Reply(200, html.encode("utf-8"))

    server.route(f"/s/{channel}", handler)


# --- crawl test helpers -----------------------------------------------------------------------


def write_crawl_config(root: Path, sources: Sequence[dict[str, Any]], **crawl: Any) -> Path:
    """A config directory with ``sources`` and fast, test-friendly crawl settings (overridable)."""
    import yaml

    settings: dict[str, Any] = {
        "download_delay": 0,
        "autothrottle": False,
        "retry_times": 2,
        "backoff_base": 0.05,
        "backoff_max": 2,
        "timeout": 5,
        "concurrency_per_domain": 4,
    }
    settings.update(crawl)
    root.mkdir(parents=True, exist_ok=True)
    (root / "service.yaml").write_text(yaml.safe_dump({"data_dir": str(root / "data"), "crawl": settings}))
    (root / "sources.yaml").write_text(yaml.safe_dump({"sources": list(sources)}, allow_unicode=True))
    return root


def crawl_events(
    config_dir: Path, sources: Sequence[str], state: dict[str, Any] | None = None, timeout: float = 90
) -> list[dict[str, Any]]:
    """Run a real crawl subprocess (:func:`crawlers.runner.run_crawl`) and return all its events."""
    from crawlers.runner import run_crawl

    return list(run_crawl(config_dir, list(sources), state or {}, timeout=timeout))


def events_of(events: Sequence[dict[str, Any]], kind: str, source: str | None = None) -> list[dict[str, Any]]:
    """The events of one type (and source)."""
    return [e for e in events if e["event"] == kind and (source is None or e.get("source") == source)]
