"""The crawl subprocess's output: one JSON object per line, flushed line by line.

Event schema (``source`` is the source id)::

    {"event": "document", "source", "key", "document"}   key: what the parent records as seen
    {"event": "fetched", "source", "url", "status"}
    {"event": "dropped", "source", "reason", "url"}
    {"event": "state", "source", "state"}                 new validators / last message id
    {"event": "error", "source", "message", "url", "reason"}
    {"event": "warning", "source", "reason", "message", "url"}   non-fatal: counted in source health
    {"event": "source_done", "source", "ok", "counts"}
    {"event": "recheck", "source", "document_id", "url", "outcome", "status", "detail", "final_url",
     "document", "capture"}                               a re-check run's verdict on one item
    {"event": "reach", "source", "key", "document_id", "views", "reactions", "published"}
                                                          fresh reach counters of an item already
                                                          indexed (no text: nothing re-embedded)
"""

from __future__ import annotations

import json
import threading
from typing import IO, Any

__all__ = ["EVENT_TYPES", "EventWriter"]

EVENT_TYPES = ("document", "fetched", "dropped", "state", "error", "warning", "source_done", "recheck", "reach")


class EventWriter:
    """Writes events as UTF-8 JSON lines to a binary stream and flushes after each one."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def emit(self, event: str, source: str, **fields: Any) -> None:
        """Write one event line (``event`` and ``source`` first, then ``fields``)."""
        if event not in EVENT_TYPES:
            raise ValueError(f"unknown event type {event!r}")
        line = json.dumps({"event": event, "source": source, **fields}, ensure_ascii=False, default=str)
        with self._lock:
            self._stream.write(line.encode("utf-8") + b"\n")
            self._stream.flush()
