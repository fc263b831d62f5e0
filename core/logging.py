"""Structured logging and per-stage counters.

Use ``logging.getLogger(__name__)`` with %-style arguments everywhere; :func:`setup_logging`
installs a text or JSON formatter and a :class:`core.redact.RedactingFilter` on its handler (no
secret reaches a log at any level: see :mod:`core.redact`). :class:`StageCounters` counts what each stage did
(fetched, extracted, dropped by reason, indexed, matched, alerted) and is logged at the end
of every pass.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections import Counter
from datetime import UTC, datetime
from typing import IO, Any

from core.redact import RedactingFilter

__all__ = ["QUIET_LOGGERS", "JsonFormatter", "StageCounters", "setup_logging"]

QUIET_LOGGERS = (
    "scrapy",
    "twisted",
    "urllib3",
    "elastic_transport",
    "trafilatura",
    "htmldate",
    "filelock",
    # httpx logs every request URL at INFO (a Telegram bot token and a Slack webhook URL are URLs);
    # httpcore logs connection details at DEBUG. The redacting filter masks them anyway.
    "httpx",
    "httpcore",
    "hpack",
)
"""Third-party loggers held at WARNING or above whatever the configured level."""


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any ``extra`` fields."""

    _STD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in self._STD and not key.startswith("_"):
                out[key] = value
        if record.exc_text:  # pre-rendered (and masked) by RedactingFilter
            out["exc"] = record.exc_text
        elif record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def setup_logging(level: str = "INFO", fmt: str = "text", *, stream: IO[str] | None = None) -> None:
    """Configure the root logger once (``stream``, default stderr), with secrets masked at the handler."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(RedactingFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


class StageCounters:
    """Thread-safe counters keyed ``stage.what`` (e.g. ``crawl.fetched``, ``drop.robots``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, key: str, n: int = 1) -> None:
        """Add ``n`` to counter ``key``."""
        with self._lock:
            self._counts[key] += n

    def get(self, key: str) -> int:
        """Current value of ``key`` (0 if never counted)."""
        with self._lock:
            return self._counts[key]

    def snapshot(self) -> dict[str, int]:
        """A sorted copy of all counters."""
        with self._lock:
            return dict(sorted(self._counts.items()))

    def log(self, logger: logging.Logger, label: str) -> None:
        """Log every counter on one line (and as ``counters`` for the JSON formatter)."""
        snap = self.snapshot()
        logger.info(
            "%s: %s", label, " ".join(f"{k}={v}" for k, v in snap.items()) or "nothing", extra={"counters": snap}
        )
