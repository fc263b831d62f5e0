"""Evidence records: where a fetched response was archived, the versions of a text, deletions.

:class:`Capture` is one archived HTTP response (the WARC record's file, offset and length, the
SHA-256 of the raw body as it arrived, the fetch time and the server's address). It travels on
:attr:`core.documents.Document.capture` from the crawler to the index, and the evidence store
(:mod:`crawlers.evidence_store`) keeps every capture of a document with its *versions* (a new
one each time the text changed) and its *deletion* (when a re-check found it gone).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.timefmt import from_iso

__all__ = ["Capture", "Deletion", "Version"]


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got {value!r}")
    return value.astimezone(UTC)


@dataclass(frozen=True)
class Capture:
    """One fetched response as archived: the raw body's hash and where its WARC records are.

    ``warc_file`` is a file name under ``<data_dir>/warc/`` ("" when the source's archiving is
    off: the hash is still taken); ``warc_offset``/``warc_length`` span the response record and
    the request record written right after it (two gzip members), so the bytes
    ``[offset, offset + length)`` of the file are a valid ``.warc.gz`` on their own.
    """

    url: str
    fetched_at: datetime
    status: int
    sha256: str
    """sha256 hex of the raw response body (after transfer and content decoding, as Scrapy gave it)."""
    warc_file: str = ""
    warc_offset: int = 0
    warc_length: int = 0
    ip_address: str = ""
    """The resolved address of the server ("" when unknown)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "fetched_at", _aware(self.fetched_at, "Capture.fetched_at"))

    @property
    def archived(self) -> bool:
        """Whether WARC records were written for this capture."""
        return bool(self.warc_file)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (inverse: :meth:`from_dict`)."""
        return {
            "url": self.url,
            "fetched_at": self.fetched_at.isoformat(),
            "status": self.status,
            "sha256": self.sha256,
            "warc_file": self.warc_file,
            "warc_offset": self.warc_offset,
            "warc_length": self.warc_length,
            "ip_address": self.ip_address,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Capture:
        """Rebuild from :meth:`to_dict` output."""
        fetched = from_iso(str(data["fetched_at"]))
        if fetched is None:
            raise ValueError("capture without fetched_at")
        return cls(
            url=str(data["url"]),
            fetched_at=fetched,
            status=int(data["status"]),
            sha256=str(data["sha256"]),
            warc_file=str(data.get("warc_file", "")),
            warc_offset=int(data.get("warc_offset", 0)),
            warc_length=int(data.get("warc_length", 0)),
            ip_address=str(data.get("ip_address", "")),
        )


@dataclass(frozen=True)
class Version:
    """One distinct text of a document: number 1 is the first seen, each change adds one."""

    document_id: str
    number: int
    text_sha256: str
    """sha256 hex of ``text`` (UTF-8)."""
    title: str
    text: str
    first_seen: datetime
    last_seen: datetime
    """The latest time this exact text was seen (a re-check that found it unchanged moves it)."""
    capture: Capture | None = None
    """The response the version was first seen in (None when it was not captured)."""


@dataclass(frozen=True)
class Deletion:
    """A document found gone: when that was noticed, when it was last seen, and why."""

    document_id: str
    deleted_at: datetime
    last_seen: datetime
    reason: str
    """Short code: ``gone`` (404/410), ``missing`` (a Telegram post absent from its page),
    ``redirected`` (a redirect to another page, e.g. the front page) ..."""
