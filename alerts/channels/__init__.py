"""Alert delivery channels, registered by kind in :data:`alerts.channels.base.CHANNEL_KINDS`.

Importing this package registers the built-ins: ``email`` (Apprise), ``slack``, ``telegram``
and ``webhook`` (httpx).
"""

from __future__ import annotations

from alerts.channels import email, slack, telegram, webhook
from alerts.channels.base import CHANNEL_KINDS, Channel, ChannelDisabled, ChannelKind, ChannelSettings

__all__ = [
    "CHANNEL_KINDS",
    "Channel",
    "ChannelDisabled",
    "ChannelKind",
    "ChannelSettings",
    "email",
    "slack",
    "telegram",
    "webhook",
]
