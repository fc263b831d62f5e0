"""Evidence packs: one self-contained zip proving what was published, where and when.

``narrawatch evidence --alert ID | --document ID -o FILE.zip`` (also ``GET /api/alerts/{id}/evidence``,
``GET /api/documents/{id}/evidence`` and the alert page) writes::

    records.warc.gz   the archived WARC records (response + request) of every capture of every
                      item involved, all versions, copied byte for byte from <data_dir>/warc/
    texts/            the text of each version, one UTF-8 file per version
    manifest.json     URLs, fetch times, server addresses, SHA-256 of each raw body and where its
                      records sit in records.warc.gz; versions and deletions; the match
                      explanation; the trace; the alert; the SHA-256 of every other file
    summary.html      the same for a human reader (every value escaped, no scripts, no links)
    SHA256SUMS        sha256 of every other file, ``sha256sum -c`` format

:func:`verify_pack` (``narrawatch evidence verify FILE.zip``) recomputes everything: each file
against SHA256SUMS and the manifest, each capture's raw body (the WARC payload at its offset)
against its SHA-256 and the record's own ``WARC-Payload-Digest``, each version's text against
its hash. The hashes prove the pack is unchanged since it was written and that the bodies are
the ones archived at fetch time; they are not a signature (see docs/evidence.md).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.documents import Document
from core.errors import EvidenceError, NarrawatchError, NotFoundError
from core.evidence import Capture, Version
from core.matches import Match, match_id
from core.timefmt import iso_utc
from crawlers.archive import ArchiveError, body_sha256, read_capture, read_records
from crawlers.archive_scrapy import warc_dir
from crawlers.evidence_store import EvidenceStore, evidence_path
from narrawatch.app import App
from narrawatch.evidence_html import render_summary

__all__ = [
    "FORMAT",
    "PackReport",
    "alert_pack",
    "build_pack",
    "document_pack",
    "verify_pack",
    "write_pack",
]

FORMAT = "narrawatch-evidence/1"
WARC_NAME = "records.warc.gz"
MANIFEST = "manifest.json"
SUMMARY = "summary.html"
SUMS = "SHA256SUMS"
MAX_PACK_BYTES = 4 * 1024**3
"""Largest total uncompressed size :func:`verify_pack` accepts."""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _slug(document_id: str) -> str:
    """A file-name-safe, unique name for a document id."""
    clean = re.sub(r"[^A-Za-z0-9_-]+", "_", document_id)[:40]
    return f"{clean}-{_sha(document_id.encode('utf-8'))[:8]}"


def _evidence(app: App) -> EvidenceStore | None:
    """The App's evidence store; None for a read-only App on an install that never wrote one."""
    if app.read_only and not app.is_open("evidence") and not evidence_path(app.config.data_dir).exists():
        return None
    return app.evidence


@dataclass
class _Builder:
    """Collects the WARC bytes (deduplicated by source location) and the text files of a pack."""

    warc_dir: Path
    warc: bytearray = field(default_factory=bytearray)
    placed: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    texts: dict[str, bytes] = field(default_factory=dict)

    def capture(self, c: Capture) -> dict[str, Any]:
        out: dict[str, Any] = {
            "url": c.url,
            "fetched_at": iso_utc(c.fetched_at),
            "status": c.status,
            "sha256": c.sha256,
            "ip_address": c.ip_address,
            "warc": None,
        }
        if not c.archived:
            out["problem"] = "not archived (archiving was off for this source)"
            return out
        key = (c.warc_file, c.warc_offset)
        if key not in self.placed:
            try:
                data = read_capture(self.warc_dir, c)
            except ArchiveError as exc:
                out["problem"] = str(exc)
                return out
            self.placed[key] = (len(self.warc), len(data))
            self.warc.extend(data)
        offset, length = self.placed[key]
        out["warc"] = {
            "file": WARC_NAME,
            "offset": offset,
            "length": length,
            "archived_as": {"file": c.warc_file, "offset": c.warc_offset, "length": c.warc_length},
        }
        return out

    def version(self, document_id: str, v: Version) -> dict[str, Any]:
        name = f"texts/{_slug(document_id)}/v{v.number}.txt"
        self.texts[name] = v.text.encode("utf-8")
        return {
            "number": v.number,
            "title": v.title,
            "text_sha256": v.text_sha256,
            "text_file": name,
            "first_seen": iso_utc(v.first_seen),
            "last_seen": iso_utc(v.last_seen),
            "capture_sha256": v.capture.sha256 if v.capture else None,
        }


def _match_dict(m: Match) -> dict[str, Any]:
    from narrawatch.read.narratives import MatchView

    return MatchView(m).as_dict()


def _matches_of(app: App, document_id: str, given: Sequence[Match]) -> list[dict[str, Any]]:
    """The match explanation of a document: the alert's evidence first, then every stored match."""
    out: dict[str, dict[str, Any]] = {}
    for m in given:
        if m.document_id == document_id:
            out[m.id] = _match_dict(m)
    try:
        narratives = app.matches.narrative_ids()
        for nid in narratives:
            stored = app.matches.get(match_id(document_id, nid))
            if stored is not None and stored.id not in out:
                out[stored.id] = _match_dict(stored)
    except NarrawatchError:  # no match store yet
        pass
    return list(out.values())


def _item(
    app: App, b: _Builder, store: EvidenceStore | None, document_id: str, given: Sequence[Match]
) -> dict[str, Any]:
    doc: Document | None = app.index.get(document_id)
    captures = store.captures(document_id) if store is not None else []
    if doc is not None and doc.capture is not None and doc.capture not in captures:
        captures.append(doc.capture)
    versions = store.versions(document_id) if store is not None else []
    deletion = store.deletion(document_id) if store is not None else None
    first = next((m for m in given if m.document_id == document_id), None)
    return {
        "document_id": document_id,
        "in_index": doc is not None,
        "url": doc.url if doc else (first.url if first else ""),
        "title": doc.title if doc else (first.title if first else ""),
        "source_id": doc.source_id if doc else (first.source_id if first else ""),
        "outlet": doc.outlet if doc else (first.outlet if first else ""),
        "language": doc.language if doc else (first.language if first else ""),
        "published": iso_utc(doc.published) if doc else (iso_utc(first.published) if first else None),
        "fetched": iso_utc(doc.fetched) if doc else None,
        "content_hash": doc.content_hash if doc else None,
        "captures": [b.capture(c) for c in sorted(captures, key=lambda c: c.fetched_at)],
        "versions": [b.version(document_id, v) for v in versions],
        "deleted": (
            {
                "deleted_at": iso_utc(deletion.deleted_at),
                "last_seen": iso_utc(deletion.last_seen),
                "reason": deletion.reason,
            }
            if deletion
            else None
        ),
        "matches": _matches_of(app, document_id, given),
    }


def _trace(app: App, **subject: str) -> dict[str, Any]:
    from narrawatch.read.params import TraceRequest
    from narrawatch.read.trace import trace

    try:
        return trace(app, TraceRequest.model_validate({**subject, "limit": 200})).as_dict()
    except NarrawatchError as exc:
        return {"error": str(exc)}


def build_pack(
    app: App,
    *,
    subject: dict[str, str],
    document_ids: Iterable[str],
    matches: Sequence[Match] = (),
    alert: dict[str, Any] | None = None,
    trace: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> bytes:
    """The zip bytes of a pack about ``document_ids`` (see the module docstring)."""
    store = _evidence(app)
    b = _Builder(warc_dir(app.config.data_dir))
    items = [_item(app, b, store, d, matches) for d in dict.fromkeys(document_ids)]
    warc = bytes(b.warc)
    files: dict[str, bytes] = {WARC_NAME: warc, **b.texts}
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "created": iso_utc(now or datetime.now(UTC)),
        "subject": subject,
        "alert": alert,
        "items": items,
        "trace": trace,
        "files": {},
    }
    summary = render_summary(manifest).encode("utf-8")
    files[SUMMARY] = summary
    manifest["files"] = {name: {"sha256": _sha(data), "bytes": len(data)} for name, data in sorted(files.items())}
    files[MANIFEST] = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")
    sums = "".join(f"{_sha(data)}  {name}\n" for name, data in sorted(files.items())).encode("ascii")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in sorted(files.items()):
            kind = zipfile.ZIP_STORED if name == WARC_NAME else zipfile.ZIP_DEFLATED
            zf.writestr(zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0)), data, compress_type=kind)
        zf.writestr(zipfile.ZipInfo(SUMS, date_time=(2000, 1, 1, 0, 0, 0)), sums, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def document_pack(app: App, document_id: str, *, now: datetime | None = None) -> bytes:
    """The pack of one document (all its versions and captures, its matches, its trace).

    :class:`~core.errors.NotFoundError` when neither the index nor the evidence store knows it.
    """
    store = _evidence(app)
    known = app.index.get(document_id) is not None or (store is not None and bool(store.captures(document_id)))
    if not known:
        raise NotFoundError(f"no document {document_id!r}")
    trace = _trace(app, document_id=document_id) if app.index.get(document_id) is not None else None
    return build_pack(
        app,
        subject={"kind": "document", "id": document_id},
        document_ids=[document_id],
        trace=trace,
        now=now,
    )


def alert_pack(app: App, alert_id: str, *, now: datetime | None = None) -> bytes:
    """The pack of an alert: every document in its evidence, the alert, the narrative's trace.

    :class:`~core.errors.UnknownNameError` (from the read model) when the alert is unknown.
    """
    from narrawatch.read.alerts import show_alert

    detail = show_alert(app, alert_id)
    matches = [m for e in detail.alert.events for m in e.evidence]
    narrative = next((e.narrative_id for e in detail.alert.events if e.narrative_id), None)
    trace = _trace(app, narrative_id=narrative) if narrative else None
    return build_pack(
        app,
        subject={"kind": "alert", "id": alert_id},
        document_ids=[m.document_id for m in matches],
        matches=matches,
        alert=detail.as_dict(),
        trace=trace,
        now=now,
    )


def write_pack(data: bytes, path: Path) -> Path:
    """Write pack bytes to ``path`` (through a temporary file, so a crash leaves no half pack)."""
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


# -- verification -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PackReport:
    """What :func:`verify_pack` found: ``problems`` is empty when every hash matched."""

    checked: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Whether the pack verified."""
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        """ok, checked, problems."""
        return {"ok": self.ok, "checked": self.checked, "problems": list(self.problems)}


def _b32_sha256(data: bytes) -> str:
    return "sha256:" + base64.b32encode(hashlib.sha256(data).digest()).decode("ascii")


def _read_zip(data: bytes) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            size = sum(i.file_size for i in infos)
            if size > MAX_PACK_BYTES:  # a pack from elsewhere may be a zip bomb: nothing is inflated
                raise EvidenceError(f"members total {size} bytes, more than {MAX_PACK_BYTES}")
            return {info.filename: zf.read(info) for info in infos}
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:
        raise EvidenceError(f"not a readable zip: {exc}") from exc


def _check_sums(files: dict[str, bytes], problems: list[str]) -> int:
    sums = files.get(SUMS)
    if sums is None:
        problems.append(f"{SUMS}: missing")
        return 0
    listed: dict[str, str] = {}
    for line in sums.decode("utf-8", errors="replace").splitlines():
        digest, sep, name = line.partition("  ")
        if not sep or not re.fullmatch(r"[0-9a-f]{64}", digest):
            problems.append(f"{SUMS}: malformed line {line!r}")
            continue
        listed[name] = digest
    for name in sorted(set(files) - {SUMS} - set(listed)):
        problems.append(f"{name}: not listed in {SUMS}")
    for name, digest in sorted(listed.items()):
        if name not in files:
            problems.append(f"{name}: listed in {SUMS} but missing from the pack")
        elif _sha(files[name]) != digest:
            problems.append(f"{name}: sha256 differs from {SUMS}")
    return len(listed)


def _check_capture(warc: bytes, where: str, c: dict[str, Any], problems: list[str]) -> None:
    loc = c.get("warc")
    if not isinstance(loc, dict):
        return  # not archived: nothing to recompute (the manifest says why)
    offset, length = int(loc.get("offset", -1)), int(loc.get("length", -1))
    if loc.get("file") != WARC_NAME or offset < 0 or length <= 0 or offset + length > len(warc):
        problems.append(f"{where}: WARC location outside {WARC_NAME}")
        return
    try:
        records = list(read_records(io.BytesIO(warc[offset : offset + length])))
    except Exception as exc:  # warcio raises assorted errors on damaged input
        problems.append(f"{where}: {WARC_NAME} @ {offset}: unreadable WARC record ({type(exc).__name__})")
        return
    responses = [r for r in records if r.record_type == "response"]
    if len(responses) != 1:
        problems.append(f"{where}: {WARC_NAME} @ {offset}: expected one response record, found {len(responses)}")
        return
    r = responses[0]
    if body_sha256(r.payload) != c.get("sha256"):
        problems.append(f"{where}: raw body sha256 differs from the manifest ({c.get('url')})")
    if r.payload_digest and r.payload_digest.startswith("sha256:") and r.payload_digest != _b32_sha256(r.payload):
        problems.append(f"{where}: WARC-Payload-Digest does not match the record's payload")
    if r.url != c.get("url"):
        problems.append(f"{where}: WARC-Target-URI {r.url!r} differs from the manifest's {c.get('url')!r}")


def verify_pack(source: bytes | Path) -> PackReport:
    """Recompute every hash of a pack (see the module docstring); never raises on a bad pack."""
    data = source.read_bytes() if isinstance(source, Path) else source
    problems: list[str] = []
    try:
        files = _read_zip(data)
    except EvidenceError as exc:
        return PackReport(0, (str(exc),))
    checked = _check_sums(files, problems)
    raw = files.get(MANIFEST)
    if raw is None:
        problems.append(f"{MANIFEST}: missing")
        return PackReport(checked, tuple(problems))
    try:
        manifest = json.loads(raw.decode("utf-8"))
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} manifest")
    except (UnicodeDecodeError, ValueError) as exc:
        problems.append(f"{MANIFEST}: unreadable ({exc})")
        return PackReport(checked, tuple(problems))
    for name, meta in sorted((manifest.get("files") or {}).items()):
        checked += 1
        if name not in files:
            problems.append(f"{name}: listed in {MANIFEST} but missing from the pack")
        elif not isinstance(meta, dict) or _sha(files[name]) != meta.get("sha256"):
            problems.append(f"{name}: sha256 differs from {MANIFEST}")
    warc = files.get(WARC_NAME, b"")
    for i, item in enumerate(manifest.get("items") or []):
        doc = str(item.get("document_id", f"item {i}"))
        for j, c in enumerate(item.get("captures") or []):
            checked += 1
            _check_capture(warc, f"{doc} capture {j + 1}", c, problems)
        for v in item.get("versions") or []:
            checked += 1
            text = files.get(str(v.get("text_file", "")))
            if text is None:
                problems.append(f"{doc} version {v.get('number')}: text file missing")
            elif _sha(text) != v.get("text_sha256"):
                problems.append(f"{doc} version {v.get('number')}: text sha256 differs from the manifest")
    return PackReport(checked, tuple(problems))
