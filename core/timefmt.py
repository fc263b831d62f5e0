"""Time conversions, one definition each: exact epoch microseconds for SQL columns, ISO-8601 text.

Stores keep times either as ``INTEGER`` microseconds since the Unix epoch (:func:`to_us`,
:func:`from_us`: exact, where a float of seconds would round-trip with 1 µs errors, and ordered as
numbers) or as ISO-8601 text (:func:`iso_utc`, :func:`from_iso`: readable in the file, ordered as
text when every value is UTC). Serialisers write ISO-8601 with :func:`iso` (the offset kept as
it is). Every datetime handed in must be timezone-aware; values read back are aware (UTC for
microseconds, the stored offset for text).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import overload

__all__ = ["EPOCH", "from_iso", "from_us", "iso", "iso_utc", "to_us"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def to_us(value: datetime) -> int:
    """Exact microseconds since the epoch of an aware datetime (``ValueError`` for a naive one)."""
    if value.tzinfo is None:
        raise ValueError(f"datetimes must be timezone-aware (UTC), got {value!r}")
    return (value - EPOCH) // _US


@overload
def from_us(value: int) -> datetime: ...
@overload
def from_us(value: None) -> None: ...
def from_us(value: int | None) -> datetime | None:
    """Inverse of :func:`to_us`: an aware UTC datetime (None stays None)."""
    return None if value is None else EPOCH + int(value) * _US


@overload
def iso(value: datetime) -> str: ...
@overload
def iso(value: None) -> None: ...
def iso(value: datetime | None) -> str | None:
    """ISO-8601 text of a datetime with its own offset (None stays None)."""
    return None if value is None else value.isoformat()


@overload
def iso_utc(value: datetime) -> str: ...
@overload
def iso_utc(value: None) -> None: ...
def iso_utc(value: datetime | None) -> str | None:
    """ISO-8601 text of a datetime converted to UTC (``+00:00``; None stays None)."""
    return None if value is None else value.astimezone(UTC).isoformat()


def from_iso(value: str | None) -> datetime | None:
    """A datetime from ISO-8601 text written by :func:`iso`/:func:`iso_utc` (None or ``""``: None)."""
    return datetime.fromisoformat(value) if value else None
