"""The Channel seam: one protocol, a registry of kinds, and the "disabled X: reason" rule.

A channel kind registers a settings model (``kind:`` discriminates it in config) and a factory.
A factory raises :class:`ChannelDisabled` when an optional prerequisite (a secret in an
environment variable) is missing: the service logs it and carries on without that channel.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Protocol

from pydantic import Field

from core.errors import NarrawatchError
from core.events import Alert
from core.redact import register_secret
from core.registry import Registry
from core.settings import Duration, StrictModel

__all__ = [
    "CHANNEL_KINDS",
    "Channel",
    "ChannelDisabled",
    "ChannelKind",
    "ChannelSettings",
    "require_env",
]


class ChannelDisabled(NarrawatchError):
    """A channel is valid but cannot run here (e.g. its secret variable is unset)."""


class ChannelSettings(StrictModel):
    """Fields every channel kind has."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
    kind: str
    enabled: bool = True
    timeout: Duration = timedelta(seconds=10)


class Channel(Protocol):
    """Delivers one alert; raises :class:`core.errors.AlertDeliveryError` unless acknowledged."""

    id: str
    kind: str

    def send(self, alert: Alert, idempotency_key: str) -> None:
        """Send ``alert``; return only after the endpoint acknowledged it."""
        ...


@dataclass(frozen=True)
class ChannelKind:
    """A registered channel kind: its settings model and a factory."""

    name: str
    settings: type[ChannelSettings]
    build: Callable[[Any], Channel]


CHANNEL_KINDS: Registry[ChannelKind] = Registry("channel kind")


def require_env(channel_id: str, variable: str | None, what: str) -> str:
    """The value of ``variable`` or :class:`ChannelDisabled` saying which variable is missing.

    The value is registered with :func:`core.redact.register_secret`, so it never reaches a log.
    """
    if not variable:
        raise ChannelDisabled(f"channel {channel_id!r}: no {what} variable configured")
    value = os.environ.get(variable, "")
    if not value:
        raise ChannelDisabled(f"channel {channel_id!r}: environment variable {variable} ({what}) is not set")
    register_secret(value)
    return value
