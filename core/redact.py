"""Keeping secrets out of logs: known secret shapes and registered secret values are masked.

:class:`RedactingFilter` is installed on every handler :func:`core.logging.setup_logging`
creates, so whatever a library logs (httpx puts the full request URL in its INFO line, and a
Telegram bot token or a Slack webhook URL *is* a URL) is masked before it is formatted. Two
mechanisms, because either alone misses something:

* **shapes**: Telegram bot tokens (``bot<digits>:<token>`` and bare ``<digits>:<35 chars>``),
  Slack webhook paths and ``xox?-`` tokens, the password in URL userinfo
  (``scheme://user:password@host``), ``Authorization`` header values, secret-looking query
  parameters (``token=``, ``api_key=``, ``password=``, ...) and our own API tokens (``nw_...``);
* **values**: every secret a component reads from the environment is passed to
  :func:`register_secret` (the alert channels do it in :func:`alerts.channels.base.require_env`),
  and any occurrence of that exact value (raw or percent-encoded) is masked, whatever its shape.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any
from urllib.parse import quote

__all__ = ["MASK", "RedactingFilter", "redact", "register_secret", "registered_secrets"]

MASK = "[REDACTED]"

_MIN_SECRET_LEN = 6
"""Shorter registered values are ignored: masking every "abc" in every log line would hide more than it protects."""

# Each pattern keeps a harmless prefix (group 1) so the log still says *what* was masked.
_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    # Telegram Bot API: https://api.telegram.org/bot123456:AAE.../sendMessage
    (re.compile(r"(\bbot)\d{3,}:[A-Za-z0-9_-]{8,}"), r"\1" + MASK),
    # A bare bot token (id:secret, the secret is 35 characters).
    (re.compile(r"(?<![\w:/.-])()\d{6,}:[A-Za-z0-9_-]{30,}"), r"\1" + MASK),
    # Slack incoming webhook: https://hooks.slack.com/services/T.../B.../secret (also workflows/triggers).
    (re.compile(r"(hooks\.slack(?:-gov)?\.com/)[^\s\"'<>]+"), r"\1" + MASK),
    (re.compile(r"(\bxox[abeprs]-)[A-Za-z0-9-]{6,}"), r"\1" + MASK),
    # Userinfo password in any URL: scheme://user:password@host
    (re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s/:@\"'<>]*:)[^\s/@\"'<>]+(@)"), r"\1" + MASK + r"\2"),
    # Authorization / Proxy-Authorization / X-Api-Key header values, as text, repr or JSON.
    (
        re.compile(
            r"((?:proxy-)?authorization|x-api-key|api-key|x-auth-token)(['\"]?\s*[:=,]\s*(?:b(?=['\"]))?['\"]?)"
            r"(?:(?:bearer|basic|token|apikey|digest)\s+)?[^\s'\",}\]]+",
            re.IGNORECASE,
        ),
        r"\1\2" + MASK,
    ),
    # Secret-looking query or form parameters.
    (
        re.compile(
            r"([?&;](?:access_token|token|api_key|apikey|key|password|passwd|secret|signature|sig)=)[^&\s\"'<>#]+",
            re.IGNORECASE,
        ),
        r"\1" + MASK,
    ),
    # Our own API tokens (nw_ + 43 URL-safe characters).
    (re.compile(r"(\bnw_)[A-Za-z0-9_-]{20,}"), r"\1" + MASK),
)

_lock = threading.Lock()
_values: set[str] = set()
_values_re: re.Pattern[str] | None = None


def register_secret(value: str | None) -> None:
    """Mask ``value`` (and its percent-encoded form) in every log record from now on."""
    global _values_re
    if not value or len(value) < _MIN_SECRET_LEN:
        return
    with _lock:
        before = len(_values)
        _values.update({value, quote(value, safe="")})
        if len(_values) != before:
            # Longest first, so a value that contains another is masked whole.
            alts = sorted(_values, key=len, reverse=True)
            _values_re = re.compile("|".join(re.escape(v) for v in alts))


def registered_secrets() -> frozenset[str]:
    """The registered values (for tests and diagnostics; never log them)."""
    with _lock:
        return frozenset(_values)


def redact(text: str) -> str:
    """``text`` with registered secret values and known secret shapes replaced by :data:`MASK`."""
    values_re = _values_re
    if values_re is not None:
        text = values_re.sub(MASK, text)
    for pattern, repl in _SHAPES:
        text = pattern.sub(repl, text)
    return text


_STD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact_value(v) for v in value)
    return value


class RedactingFilter(logging.Filter):
    """A handler filter that masks secrets in the message, its arguments, extras and tracebacks.

    It rewrites the record in place (message rendered with its arguments, ``args`` cleared,
    ``exc_text`` pre-rendered), so every formatter downstream sees only masked text.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the record; always keeps it."""
        try:
            message = record.getMessage()
        except Exception:  # a broken %-format: keep the template, drop the arguments
            message = f"{record.msg} (unformattable arguments)"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(record.__dict__.items()):
            if key not in _STD_ATTRS and not key.startswith("_"):
                record.__dict__[key] = _redact_value(value)
        return True
