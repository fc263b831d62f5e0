"""Telegram Bot API ``sendMessage`` with httpx, against a configurable ``base_url``.

Apprise's Telegram plugin hard-codes ``api.telegram.org``; the Bot API is one documented POST
(``{base_url}/bot<token>/sendMessage``), so we call it directly and tests use a loopback server.
Text is rendered for ``parse_mode`` HTML (default) or MarkdownV2 with that mode's escaping.
"""

from __future__ import annotations

from typing import Literal

from alerts.channels._http import post_json
from alerts.channels.base import ChannelKind, ChannelSettings, require_env
from alerts.render import render_telegram
from core.errors import AlertDeliveryError
from core.events import Alert
from core.settings import HttpUrl

__all__ = ["KIND", "TelegramChannel", "TelegramSettings"]


class TelegramSettings(ChannelSettings):
    """``kind: telegram``: bot token from ``bot_token_env``, a chat id, an overridable API base URL."""

    kind: Literal["telegram"] = "telegram"
    bot_token_env: str = "NARRAWATCH_TELEGRAM_BOT_TOKEN"
    chat_id: str
    base_url: HttpUrl = "https://api.telegram.org"
    parse_mode: Literal["HTML", "MarkdownV2"] = "HTML"


class TelegramChannel:
    """Sends a message through the Bot API; ``{"ok": true}`` is the acknowledgement."""

    kind = "telegram"

    def __init__(self, settings: TelegramSettings, token: str) -> None:
        self.id = settings.id
        self.settings = settings
        self._token = token

    @classmethod
    def from_settings(cls, settings: TelegramSettings) -> TelegramChannel:
        """Build the channel; :class:`ChannelDisabled` if the token variable is unset."""
        return cls(settings, require_env(settings.id, settings.bot_token_env, "Telegram bot token"))

    def send(self, alert: Alert, idempotency_key: str) -> None:
        """Send the message; raises AlertDeliveryError unless the API answered ok."""
        s = self.settings
        url = f"{s.base_url.rstrip('/')}/bot{self._token}/sendMessage"
        payload = {
            "chat_id": s.chat_id,
            "text": render_telegram(alert, s.parse_mode),
            "parse_mode": s.parse_mode,
            "link_preview_options": {"is_disabled": True},
        }
        resp = post_json(self.id, url, payload, timeout=s.timeout.total_seconds())
        try:
            ok = resp.status_code == 200 and bool(resp.json().get("ok"))
        except ValueError:
            ok = False
        if not ok:
            # Never echo the URL: it contains the token.
            raise AlertDeliveryError(f"channel {self.id!r}: Telegram answered {resp.status_code}: {resp.text[:200]}")


KIND = ChannelKind("telegram", TelegramSettings, TelegramChannel.from_settings)
"""The ``telegram`` channel kind (registered by :func:`alerts.channels.register_builtins`)."""
