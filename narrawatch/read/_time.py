"""Time formatting shared by the read records (one place: UTC ISO 8601)."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["iso"]


def iso(value: datetime | None) -> str | None:
    """``value`` as a UTC ISO 8601 string (None stays None)."""
    return value.astimezone(UTC).isoformat() if value else None
