"""Email through Apprise (``mailto://`` / ``mailtos://``) to a configurable SMTP host and port.

Apprise handles SMTP, STARTTLS/SSL, login and the multipart (text + HTML) message; the host and
port are ours to choose, so tests point it at a loopback SMTP sink. Each message carries the
idempotency key in an ``X-Narrawatch-Idempotency-Key`` header, and its Message-ID is derived from
it, so a mail client or filter can drop the rare duplicate (SMTP has no idempotent submit: a crash
after the server accepted the message and before the outbox marked it sent re-sends it once).
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal
from urllib.parse import quote, urlencode

import apprise
from pydantic import Field

from alerts.channels.base import ChannelKind, ChannelSettings, require_env
from alerts.render import render_html, render_text
from core.errors import AlertDeliveryError
from core.events import Alert

__all__ = ["KIND", "EmailChannel", "EmailSettings"]

log = logging.getLogger(__name__)


class EmailSettings(ChannelSettings):
    """``kind: email``: SMTP host/port, sender, recipients; password from ``password_env``."""

    kind: Literal["email"] = "email"
    smtp_host: Annotated[str, Field(min_length=1)]
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = 587
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = None
    """Variable holding the SMTP password; required when ``username`` is set."""
    from_addr: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]
    to: Annotated[tuple[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")], ...], Field(min_length=1)]
    html: bool = True
    subject_prefix: str = "[narrawatch]"


class EmailChannel:
    """Sends alerts as multipart email (plain text + escaped HTML) via Apprise."""

    kind = "email"

    def __init__(self, settings: EmailSettings, password: str = "") -> None:
        self.id = settings.id
        self.settings = settings
        self._password = password

    @classmethod
    def from_settings(cls, settings: EmailSettings) -> EmailChannel:
        """Build the channel; :class:`ChannelDisabled` if the password variable is unset."""
        password = ""
        if settings.username:
            password = require_env(settings.id, settings.password_env, "SMTP password")
        return cls(settings, password)

    def _url(self, idempotency_key: str) -> str:
        s = self.settings
        scheme = "mailto" if s.security == "none" else "mailtos"
        auth = ""
        if s.username:
            auth = f"{quote(s.username, safe='')}:{quote(self._password, safe='')}@"
        params = {
            "from": s.from_addr,
            "to": ",".join(s.to),
            "mode": {"none": "insecure", "starttls": "starttls", "ssl": "ssl"}[s.security],
            "+X-Narrawatch-Idempotency-Key": idempotency_key,
        }
        host = f"[{s.smtp_host}]" if ":" in s.smtp_host else s.smtp_host
        return f"{scheme}://{auth}{host}:{s.smtp_port}?{urlencode(params)}"

    def send(self, alert: Alert, idempotency_key: str) -> None:
        """Send one email; raises AlertDeliveryError when the SMTP server did not accept it."""
        ap = apprise.Apprise()
        if not ap.add(self._url(idempotency_key)):
            raise AlertDeliveryError(f"channel {self.id!r}: apprise rejected the mailto URL")
        subject = " ".join(f"{self.settings.subject_prefix} {alert.severity}: {alert.title}".split())[:200]
        if self.settings.html:
            body, fmt = render_html(alert), apprise.NotifyFormat.HTML
        else:
            body, fmt = render_text(alert), apprise.NotifyFormat.TEXT
        ok = ap.notify(title=subject, body=body, body_format=fmt)
        if not ok:
            raise AlertDeliveryError(
                f"channel {self.id!r}: SMTP {self.settings.smtp_host}:{self.settings.smtp_port} did not accept"
            )


KIND = ChannelKind("email", EmailSettings, EmailChannel.from_settings)
"""The ``email`` channel kind (registered by :func:`alerts.channels.register_builtins`)."""
