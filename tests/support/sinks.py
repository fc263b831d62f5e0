"""Loopback capture servers for alert delivery tests: an SMTP sink and a webhook receiver.

Both listen on 127.0.0.1 only. The webhook receiver can be told to fail the next N requests
(HTTP 503) or to be down (socket closed: connection refused) and back up on the same port; it
records every request and de-duplicates by ``Idempotency-Key`` like a careful receiver would.
It also answers like Slack (``ok``) and the Telegram Bot API (``{"ok": true}``).
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

__all__ = ["ReceivedRequest", "SmtpSink", "WebhookReceiver", "free_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class _SmtpHandler:
    messages: list[Message] = field(default_factory=list)
    envelopes: list[Any] = field(default_factory=list)
    fail_next: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.fail_next > 0:
            self.fail_next -= 1
            return "451 4.3.0 try again later"
        self.envelopes.append(envelope)
        self.messages.append(message_from_bytes(envelope.original_content or envelope.content))
        return "250 OK"


class SmtpSink:
    """aiosmtpd on 127.0.0.1; ``messages`` holds the parsed emails; ``fail_next`` makes it answer 451."""

    def __init__(self) -> None:
        self.port = free_port()
        self.handler = _SmtpHandler()
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self) -> list[Message]:
        """Received messages."""
        return self.handler.messages

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


@dataclass(frozen=True)
class ReceivedRequest:
    """One request the receiver accepted (answered 2xx)."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


class WebhookReceiver:
    """A threaded HTTP server on 127.0.0.1 recording POSTs."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.accepted: list[ReceivedRequest] = []
        self.attempts = 0
        self.fail_next = 0
        self.fail_status = 503
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def unique_keys(self) -> list[str]:
        """Idempotency keys of accepted requests, first arrival order, duplicates dropped."""
        return list(dict.fromkeys(r.headers.get("idempotency-key", "") for r in self.accepted))

    def duplicates(self) -> int:
        """How many accepted requests repeated an already-seen idempotency key."""
        return len(self.accepted) - len(self.unique_keys)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
                with receiver._lock:
                    receiver.attempts += 1
                    fail = receiver.fail_next > 0
                    if fail:
                        receiver.fail_next -= 1
                    else:
                        receiver.accepted.append(
                            ReceivedRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                        )
                if fail:
                    self.send_response(receiver.fail_status)
                    self.end_headers()
                    return
                answer = b'{"ok": true, "result": {}}' if "/bot" in self.path else b"ok"
                self.send_response(200)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def start(self) -> WebhookReceiver:
        """Listen (again) on the same port."""
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening: clients now get "connection refused"."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
