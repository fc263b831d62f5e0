"""Shared httpx POST with error mapping for HTTP channels."""

from __future__ import annotations

from typing import Any

import httpx

from core.errors import AlertDeliveryError

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
    """POST JSON; returns the response, or raises AlertDeliveryError on transport errors."""
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
            if content is not None:
                return client.post(
                    url, content=content, headers={"Content-Type": "application/json", **(headers or {})}
                )
            return client.post(url, json=payload, headers=headers or {})
    except httpx.HTTPError as exc:
        raise AlertDeliveryError(f"channel {channel_id!r}: {type(exc).__name__}: {exc}") from exc
