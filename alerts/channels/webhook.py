"""Generic webhook: POST the documented JSON (``narrawatch.alert/1``) with an ``Idempotency-Key`` header.

2xx (or 409, "already have it") acknowledges. With ``secret_env`` set, the body is signed:
``X-Narrawatch-Signature: sha256=<hex HMAC of the exact body>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from typing import Literal

from pydantic import Field, model_validator

from alerts.channels._http import post_json
from alerts.channels.base import ChannelDisabled, ChannelKind, ChannelSettings, require_env
from alerts.render import render_json
from core.errors import AlertDeliveryError
from core.events import Alert
from core.redact import register_secret
from core.settings import HttpUrl

__all__ = ["KIND", "WebhookChannel", "WebhookSettings"]


class WebhookSettings(ChannelSettings):
    """``kind: webhook``: ``url`` (or ``url_env``), extra headers, optional HMAC secret."""

    kind: Literal["webhook"] = "webhook"
    url: HttpUrl | None = None
    url_env: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    """Non-secret static headers."""
    headers_env: dict[str, str] = Field(default_factory=dict)
    """Header name -> environment variable holding its value (e.g. ``Authorization``)."""
    secret_env: str | None = None

    @model_validator(mode="after")
    def _one_url(self) -> WebhookSettings:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("set exactly one of 'url' or 'url_env'")
        return self


class WebhookChannel:
    """POSTs :func:`alerts.render.render_json` with ``Idempotency-Key``; receivers de-duplicate by it."""

    kind = "webhook"

    def __init__(self, settings: WebhookSettings, url: str, headers: dict[str, str], secret: str = "") -> None:
        self.id = settings.id
        self.settings = settings
        self.url = url
        self._headers = headers
        self._secret = secret

    @classmethod
    def from_settings(cls, settings: WebhookSettings) -> WebhookChannel:
        """Build the channel; :class:`ChannelDisabled` if a referenced variable is unset."""
        url = settings.url or require_env(settings.id, settings.url_env, "webhook URL")
        headers = dict(settings.headers)
        for name, var in settings.headers_env.items():
            value = os.environ.get(var, "")
            if not value:
                raise ChannelDisabled(f"channel {settings.id!r}: environment variable {var} (header {name}) is not set")
            register_secret(value)
            headers[name] = value
        secret = require_env(settings.id, settings.secret_env, "HMAC secret") if settings.secret_env else ""
        return cls(settings, url, headers, secret)

    def send(self, alert: Alert, idempotency_key: str) -> None:
        """POST the payload; raises AlertDeliveryError unless the receiver answered 2xx or 409."""
        body = json.dumps(render_json(alert, idempotency_key), ensure_ascii=False, sort_keys=True).encode("utf-8")
        headers = {**self._headers, "Idempotency-Key": idempotency_key, "User-Agent": "narrawatch-alerts/1"}
        if self._secret:
            sig = hmac.new(self._secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
            headers["X-Narrawatch-Signature"] = f"sha256={sig}"
        resp = post_json(
            self.id, self.url, None, headers=headers, content=body, timeout=self.settings.timeout.total_seconds()
        )
        if resp.status_code // 100 != 2 and resp.status_code != 409:
            raise AlertDeliveryError(f"channel {self.id!r}: webhook answered {resp.status_code}")


KIND = ChannelKind("webhook", WebhookSettings, WebhookChannel.from_settings)
"""The ``webhook`` channel kind (registered by :func:`alerts.channels.register_builtins`)."""
