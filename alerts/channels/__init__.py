"""Alert delivery channels, registered by kind in :data:`alerts.channels.base.CHANNEL_KINDS`.

Built-ins: ``email`` (Apprise), ``slack``, ``telegram`` and ``webhook`` (httpx). Nothing
registers on import: :func:`register_builtins` adds them (the composition root calls it); a
plugin adds its own :class:`ChannelKind` the same way, with ``CHANNEL_KINDS.add(name, kind)``.
"""

from __future__ import annotations

from alerts.channels import email, slack, telegram, webhook
from alerts.channels.base import CHANNEL_KINDS, Channel, ChannelDisabled, ChannelKind, ChannelSettings
from core.registry import Registry

__all__ = [
    "BUILTIN_CHANNELS",
    "CHANNEL_KINDS",
    "Channel",
    "ChannelDisabled",
    "ChannelKind",
    "ChannelSettings",
    "register_builtins",
]

BUILTIN_CHANNELS: tuple[ChannelKind, ...] = (email.KIND, slack.KIND, telegram.KIND, webhook.KIND)


def register_builtins(kinds: Registry[ChannelKind] = CHANNEL_KINDS) -> None:
    """Register the built-in channel kinds (idempotent)."""
    for kind in BUILTIN_CHANNELS:
        kinds.add(kind.name, kind)
