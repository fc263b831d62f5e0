"""Slack incoming webhook, with httpx: POST ``{"text": mrkdwn}`` to the webhook URL from ``webhook_url_env``.

Apprise's Slack plugin builds ``https://hooks.slack.com/...`` itself, so it cannot target a
loopback test receiver; the webhook API is one POST, so we call it directly. The URL is a
secret (it embeds the token) and therefore comes from an environment variable.
"""

from __future__ import annotations

from typing import Literal

from alerts.channels._http import post_json
from alerts.channels.base import ChannelKind, ChannelSettings, require_env
from alerts.render import render_slack
from core.errors import AlertDeliveryError
from core.events import Alert

__all__ = ["KIND", "SlackChannel", "SlackSettings"]


class SlackSettings(ChannelSettings):
    """``kind: slack``: the incoming-webhook URL is read from ``webhook_url_env``."""

    kind: Literal["slack"] = "slack"
    webhook_url_env: str = "NARRAWATCH_SLACK_WEBHOOK_URL"


class SlackChannel:
    """Posts mrkdwn (escaped) to a Slack incoming webhook; 200 + ``ok`` is the acknowledgement."""

    kind = "slack"

    def __init__(self, settings: SlackSettings, url: str) -> None:
        self.id = settings.id
        self.settings = settings
        self._url = url

    @classmethod
    def from_settings(cls, settings: SlackSettings) -> SlackChannel:
        """Build the channel; :class:`ChannelDisabled` if the webhook URL variable is unset."""
        return cls(settings, require_env(settings.id, settings.webhook_url_env, "Slack webhook URL"))

    def send(self, alert: Alert, idempotency_key: str) -> None:
        """POST the message; raises AlertDeliveryError unless Slack answered 2xx."""
        payload = {"text": render_slack(alert), "mrkdwn": True, "unfurl_links": False}
        resp = post_json(
            self.id,
            self._url,
            payload,
            headers={"Idempotency-Key": idempotency_key},
            timeout=self.settings.timeout.total_seconds(),
        )
        if resp.status_code // 100 != 2:
            raise AlertDeliveryError(f"channel {self.id!r}: Slack answered {resp.status_code}: {resp.text[:200]}")


KIND = ChannelKind("slack", SlackSettings, SlackChannel.from_settings)
"""The ``slack`` channel kind (registered by :func:`alerts.channels.register_builtins`)."""
