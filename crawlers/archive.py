"""WARC archiving of fetched responses: writing rotated ``.warc.gz`` files and reading records back.

Each archived fetch is one **response** record (the status line, headers and body as they
arrived) followed by one **request** record (the request as sent, ``WARC-Concurrent-To`` the
response), written with ``warcio`` as two gzip members, flushed and fsynced before the capture
is handed on. The :class:`core.evidence.Capture` names the file and the byte range of the pair,
so :func:`read_capture` can copy those exact bytes into an evidence pack.

What "as it arrived" means here: the body is the one the download handler delivered, before any
content decoding (``Content-Encoding: gzip`` bodies stay compressed, as on the wire) but after
the transport removed chunked framing; a ``Transfer-Encoding`` header is kept renamed to
``X-Archive-Orig-Transfer-Encoding`` (the convention of web archives) so readers do not try to
de-chunk a body that is no longer chunked. ``WARC-Date`` is the time the response arrived,
``WARC-IP-Address`` the server's address when known; digests are SHA-256 (``sha256:`` base32).

Files: ``<prefix>-<UTC start time>-<pid>-<n>.warc.gz`` in the archive directory; a file is
closed once it reaches ``max_file_bytes`` and the next capture starts a new one (each begins
with a ``warcinfo`` record). One writer per process; several crawl processes never share a file.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.utils import Digester
from warcio.warcwriter import WARCWriter

from core.errors import EvidenceError
from core.evidence import Capture

__all__ = [
    "ArchiveError",
    "Exchange",
    "WarcArchive",
    "WarcRecord",
    "body_sha256",
    "read_capture",
    "read_records",
]

logger = logging.getLogger(__name__)

_HOP_BY_HOP = (b"transfer-encoding",)
_SOFTWARE = "narrawatch (warcio)"


class ArchiveError(EvidenceError):
    """A WARC file could not be written or a capture's records could not be read back."""


def body_sha256(body: bytes) -> str:
    """sha256 hex of a raw response body (what :attr:`Capture.sha256` holds)."""
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True)
class Exchange:
    """One HTTP request and the response that came back, as the downloader saw them."""

    url: str
    status: int
    response_headers: Sequence[tuple[bytes, bytes]]
    body: bytes
    fetched_at: datetime
    method: str = "GET"
    request_headers: Sequence[tuple[bytes, bytes]] = ()
    reason: str = ""
    protocol: str = "HTTP/1.1"
    ip_address: str = ""

    def capture(self, *, warc_file: str = "", offset: int = 0, length: int = 0) -> Capture:
        """The :class:`Capture` of this exchange (unarchived unless a WARC location is given)."""
        return Capture(
            url=self.url,
            fetched_at=self.fetched_at,
            status=self.status,
            sha256=body_sha256(self.body),
            warc_file=warc_file,
            warc_offset=offset,
            warc_length=length,
            ip_address=self.ip_address,
        )


class _Sha256Writer(WARCWriter):  # type: ignore[misc]  # warcio is untyped
    """warcio's writer with SHA-256 block and payload digests instead of SHA-1."""

    @staticmethod
    def _create_digester() -> Digester:
        return Digester("sha256")


def _text(value: bytes) -> str:
    return value.decode("latin-1")


def _warc_date(when: datetime) -> str:
    """WARC/1.1 date with microseconds (``2026-12-03T17:30:00.123456Z``)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class WarcArchive:
    """Appends exchanges to size-rotated ``.warc.gz`` files in ``directory`` (thread-safe)."""

    def __init__(self, directory: Path, *, max_file_bytes: int = 100 * 1024 * 1024, prefix: str = "narrawatch") -> None:
        self.directory = directory
        self.max_file_bytes = max_file_bytes
        self.prefix = prefix
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = None
        self._name = ""
        self._serial = 0
        self._started = datetime.now(UTC).strftime("%Y%m%d%H%M%S")

    @property
    def current_file(self) -> str:
        """The name of the file being written ("" before the first write or after a rotation)."""
        return self._name

    def _open_next(self) -> tuple[IO[bytes], WARCWriter]:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        while True:
            self._serial += 1
            name = f"{self.prefix}-{self._started}-{os.getpid()}-{self._serial:05d}.warc.gz"
            try:
                fd = os.open(self.directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
            except FileExistsError:
                continue
            break
        stream = os.fdopen(fd, "ab")
        writer = _Sha256Writer(stream, gzip=True, warc_version="1.1")
        info = writer.create_warcinfo_record(name, {"software": _SOFTWARE, "format": "WARC File Format 1.1"})
        writer.write_record(info)
        stream.flush()
        self._file, self._name = stream, name
        return stream, writer

    def write(self, exchange: Exchange) -> Capture:
        """Archive one exchange (response record, then its request record); its :class:`Capture`."""
        try:
            with self._lock:
                if self._file is not None and self._file.tell() >= self.max_file_bytes:
                    self._close_file()
                if self._file is None:
                    stream, writer = self._open_next()
                else:
                    stream = self._file
                    writer = _Sha256Writer(stream, gzip=True, warc_version="1.1")
                offset = stream.tell()
                for record in self._records(writer, exchange):
                    writer.write_record(record)
                stream.flush()
                os.fsync(stream.fileno())
                length = stream.tell() - offset
                return exchange.capture(warc_file=self._name, offset=offset, length=length)
        except OSError as exc:
            raise ArchiveError(f"cannot write WARC record for {exchange.url} in {self.directory}: {exc}") from exc

    @staticmethod
    def _records(writer: WARCWriter, ex: Exchange) -> list[Any]:
        date = _warc_date(ex.fetched_at)
        headers = [
            (("X-Archive-Orig-" + _text(k)) if k.lower() in _HOP_BY_HOP else _text(k), _text(v))
            for k, v in ex.response_headers
        ]
        status = f"{ex.status} {ex.reason}".rstrip()
        http = StatusAndHeaders(status, headers, protocol=ex.protocol)
        warc_headers: dict[str, str] = {"WARC-Date": date}
        if ex.ip_address:
            warc_headers["WARC-IP-Address"] = ex.ip_address
        response = writer.create_warc_record(
            ex.url,
            "response",
            payload=io.BytesIO(ex.body),
            length=len(ex.body),
            http_headers=http,
            warc_headers_dict=warc_headers,
        )
        path = ex.url.split("://", 1)[-1]
        target = "/" + path.split("/", 1)[1] if "/" in path else "/"
        request_http = StatusAndHeaders(
            f"{ex.method} {target} {ex.protocol}",
            [(_text(k), _text(v)) for k, v in ex.request_headers],
            is_http_request=True,
        )
        request_headers = {"WARC-Date": date, "WARC-Concurrent-To": response.rec_headers.get_header("WARC-Record-ID")}
        if ex.ip_address:
            request_headers["WARC-IP-Address"] = ex.ip_address
        request = writer.create_warc_record(
            ex.url,
            "request",
            payload=io.BytesIO(b""),
            length=0,
            http_headers=request_http,
            warc_headers_dict=request_headers,
        )
        return [response, request]

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file, self._name = None, ""

    def close(self) -> None:
        """Close the current file (the next write starts a new one)."""
        with self._lock:
            self._close_file()


@dataclass(frozen=True)
class WarcRecord:
    """One record read back: its type, target URL, date, headers and payload bytes."""

    record_type: str
    url: str
    date: str
    record_id: str
    ip_address: str
    status: int | None
    payload: bytes
    """The HTTP body exactly as stored (not content-decoded)."""
    payload_digest: str


def read_records(stream: IO[bytes]) -> Iterator[WarcRecord]:
    """Every record of a WARC stream (gzipped or not), with its raw payload."""
    for record in ArchiveIterator(stream, arc2warc=False):
        headers = record.rec_headers
        status = None
        if record.http_headers is not None and record.rec_type == "response":
            code = record.http_headers.get_statuscode()
            status = int(code) if code and code.isdigit() else None
        yield WarcRecord(
            record_type=str(record.rec_type),
            url=str(headers.get_header("WARC-Target-URI") or ""),
            date=str(headers.get_header("WARC-Date") or ""),
            record_id=str(headers.get_header("WARC-Record-ID") or ""),
            ip_address=str(headers.get_header("WARC-IP-Address") or ""),
            status=status,
            payload=record.raw_stream.read(),
            payload_digest=str(headers.get_header("WARC-Payload-Digest") or ""),
        )


def read_capture(directory: Path, capture: Capture) -> bytes:
    """The exact bytes of a capture's records (a valid ``.warc.gz`` on their own).

    Checked before they are returned: the range must hold a response record for the capture's URL
    whose payload hashes to :attr:`Capture.sha256` (:class:`ArchiveError` otherwise).
    """
    if not capture.archived:
        raise ArchiveError(f"{capture.url}: not archived (archiving was off for its source)")
    name = Path(capture.warc_file).name  # never a path out of the directory
    path = directory / name
    try:
        with path.open("rb") as fh:
            fh.seek(capture.warc_offset)
            data = fh.read(capture.warc_length)
    except OSError as exc:
        raise ArchiveError(f"cannot read {path}: {exc}") from exc
    if len(data) != capture.warc_length:
        raise ArchiveError(f"{path}: truncated at offset {capture.warc_offset} (+{capture.warc_length})")
    try:
        responses = [r for r in read_records(io.BytesIO(data)) if r.record_type == "response"]
    except Exception as exc:  # warcio raises assorted errors on damaged input
        raise ArchiveError(f"{path} @ {capture.warc_offset}: unreadable WARC data: {exc}") from exc
    if len(responses) != 1 or body_sha256(responses[0].payload) != capture.sha256:
        raise ArchiveError(f"{path} @ {capture.warc_offset}: the record does not match the capture of {capture.url}")
    return data
