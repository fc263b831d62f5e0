"""Shared httpx POST with error mapping for HTTP channels."""

from __future__ import annotations

from typing import Any

import httpx

from core.errors import AlertDeliveryError
from core.redact import redact

__all__ = ["post_json"]


def post_json(
    channel_id: str,
    url: str,
    payload: Any,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
    content: bytes | None = None,
) -> httpx.Response:
    """POST JSON; returns the response, or raises AlertDeliveryError on transport errors.

    The error text is masked (:func:`core.redact.redact`): it is logged and stored in the outbox,
    and an exception may quote the URL, which for Slack and Telegram contains the secret.
    """
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
            if content is not None:
                return client.post(
                    url, content=content, headers={"Content-Type": "application/json", **(headers or {})}
                )
            return client.post(url, json=payload, headers=headers or {})
    except httpx.HTTPError as exc:
        raise AlertDeliveryError(redact(f"channel {channel_id!r}: {type(exc).__name__}: {exc}")) from exc
