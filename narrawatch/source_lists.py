"""Source lists in and out: CSV and OPML import (validated by the config's own models), export, and
the service-managed source files under ``<data_dir>/sources.d/``.

* **Import** (:func:`plan_import`): every row (CSV) or feed outline (OPML) becomes a source entry,
  validated by the same pydantic model ``sources.yaml`` uses (:data:`core.settings.SOURCE_KINDS`);
  each problem reads ``file:row N: key: message`` (CSV rows are numbered as a spreadsheet shows
  them, the header being row 1; OPML outlines as ``outline N``, counting feed outlines from 1).
  The plan says what would be **added**, **changed** (an id already in a service-managed file,
  with a different definition), **unchanged**, and **blocked** (an id defined in the operator's own
  ``sources.yaml``/``sources/*.yaml``, which the service never rewrites, or a feed/channel already
  configured under another id). A dry run prints the plan; :func:`apply_plan` writes it.
* **Where it goes**: ``<data_dir>/sources.d/<name>.yaml`` (``imported.yaml`` for imports,
  ``analysts.yaml`` for sources added in the web UI or API). :func:`core.settings.load_config`
  reads that folder after the config directory's own files, so operators' YAML (and its
  comments) is never touched, and a read-only config directory (docker) still works. A write is
  atomic (temporary file + rename, under a lock) and only kept when the whole config still loads.
* **Export** (:func:`export_csv`, :func:`export_opml`): every configured source, metadata
  included; both round-trip through import.

OPML is parsed with :mod:`defusedxml.ElementTree` (no DTDs, no entity expansion: a "billion
laughs" file is refused), CSV with :mod:`csv`.
"""

from __future__ import annotations

import csv
import fcntl
import io
import os
import re
import tempfile
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element, SubElement, indent, register_namespace, tostring

import defusedxml.ElementTree as SafeET
import yaml
from defusedxml import DefusedXmlException
from pydantic import ValidationError

from core.errors import ConfigError, InvalidRequestError, UnknownNameError
from core.files import secure_dir
from core.settings import (
    SOURCE_KINDS,
    SOURCES_INCLUDE_DIR,
    Config,
    SourceBase,
    display_path,
    format_loc,
    load_config,
)

__all__ = [
    "ANALYST_FILE",
    "IMPORT_FILE",
    "MAX_LIST_BYTES",
    "OPML_NS",
    "ImportIssue",
    "ImportPlan",
    "ListFormat",
    "apply_plan",
    "entry_of",
    "export_csv",
    "export_opml",
    "guess_format",
    "managed_dir",
    "parse_source_list",
    "plan_entries",
    "plan_import",
    "source_yaml",
    "validate_entry",
]

ListFormat = Literal["csv", "opml"]
MAX_LIST_BYTES = 5 * 1024 * 1024
"""Largest source list accepted (CSV or OPML)."""
IMPORT_FILE = "imported.yaml"
ANALYST_FILE = "analysts.yaml"
OPML_NS = "https://narrawatch.github.io/ns/opml"
"""Namespace of the ``narrawatch:*`` outline attributes (id, kind, actor, country, owner, ...)."""
_HEADER = (
    "# Written by narrawatch ({what}); it may rewrite this file.\n"
    "# Operator-owned sources belong in the config directory's sources.yaml or sources/*.yaml.\n"
)
_LIST_SEP = ";"
_IDENTITY_KEYS = ("url", "channel", "channel_id", "domain", "owner_id", "start_urls", "videos")


@dataclass(frozen=True)
class ImportIssue:
    """One problem of a source list: ``file:row N: message``."""

    file: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.where}: {self.message}" if self.where else f"{self.file}: {self.message}"


@dataclass(frozen=True)
class ImportPlan:
    """What importing a list would do (nothing is written until :func:`apply_plan`)."""

    file: str
    added: tuple[SourceBase, ...] = ()
    changed: tuple[tuple[SourceBase, SourceBase], ...] = ()
    """(stored, imported) pairs of ids already in a service-managed file."""
    unchanged: tuple[str, ...] = ()
    blocked: tuple[ImportIssue, ...] = ()
    """Entries valid on their own that the import will not apply (operator-owned ids, duplicates)."""
    issues: tuple[ImportIssue, ...] = ()
    """Invalid rows; any of them makes the whole import refused."""

    @property
    def ok(self) -> bool:
        """True when every row validated (blocked entries are reported, not errors)."""
        return not self.issues

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ``ok``, ``added``/``changed`` (YAML-ready entries), ``unchanged``, ``blocked``, ``issues``."""
        return {
            "file": self.file,
            "ok": self.ok,
            "added": [entry_of(s) for s in self.added],
            "changed": [{"id": new.id, "from": entry_of(old), "to": entry_of(new)} for old, new in self.changed],
            "unchanged": list(self.unchanged),
            "blocked": [str(b) for b in self.blocked],
            "issues": [str(i) for i in self.issues],
        }

    def lines(self) -> list[str]:
        """The plan for a person, one line per source (``+ id``, ``~ id``, ``= id``, ``! ...``)."""
        out = [str(i) for i in self.issues]
        out += [f"+ {s.id} ({s.kind}: {_identity(s) or s.outlet_label})" for s in self.added]
        for old, new in self.changed:
            diff = _diff(entry_of(old), entry_of(new))
            out.append(f"~ {new.id}: {diff}")
        out += [f"= {i}" for i in self.unchanged]
        out += [f"! {b}" for b in self.blocked]
        return out


# --- reading lists ------------------------------------------------------------------------------


def guess_format(name: str, data: bytes) -> ListFormat:
    """``opml`` for ``*.opml``/``*.xml`` or an XML body, else ``csv``."""
    lower = name.lower()
    if lower.endswith((".opml", ".xml")):
        return "opml"
    if lower.endswith((".csv", ".tsv", ".txt")):
        return "csv"
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:64].lower()
    return "opml" if head.startswith((b"<?xml", b"<opml")) else "csv"


def parse_source_list(
    data: bytes, name: str, fmt: ListFormat | None = None
) -> tuple[list[tuple[str, dict[str, Any]]], list[ImportIssue]]:
    """``[(where, raw entry), ...]`` and the problems found while reading (not yet validated)."""
    if len(data) > MAX_LIST_BYTES:
        return [], [ImportIssue(name, "", f"too large ({len(data)} bytes; at most {MAX_LIST_BYTES})")]
    fmt = fmt or guess_format(name, data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return [], [ImportIssue(name, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})")]
    return _read_opml(text, name) if fmt == "opml" else _read_csv(text, name)


def _read_csv(text: str, name: str) -> tuple[list[tuple[str, dict[str, Any]]], list[ImportIssue]]:
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    rows: list[tuple[str, dict[str, Any]]] = []
    issues: list[ImportIssue] = []
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        return [], [ImportIssue(name, "", "empty file")]
    except csv.Error as exc:
        return [], [ImportIssue(name, "row 1", f"unreadable CSV: {exc}")]
    if len(set(header)) != len(header) or "" in header:
        return [], [ImportIssue(name, "row 1", f"header must name each column once: {header}")]
    try:
        for number, cells in enumerate(reader, start=2):
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > len(header):
                issues.append(ImportIssue(name, f"row {number}", f"{len(cells)} cells but {len(header)} columns"))
                continue
            entry = {k: v.strip() for k, v in zip(header, cells, strict=False) if v.strip()}
            rows.append((f"row {number}", entry))
    except csv.Error as exc:
        issues.append(ImportIssue(name, f"row {reader.line_num}", f"unreadable CSV: {exc}"))
    return rows, issues


def _read_opml(text: str, name: str) -> tuple[list[tuple[str, dict[str, Any]]], list[ImportIssue]]:
    try:
        root = SafeET.fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        return [], [ImportIssue(name, "", f"refused: {type(exc).__name__} (DTDs and entities are not allowed)")]
    except SafeET.ParseError as exc:
        return [], [ImportIssue(name, "", f"not well-formed XML: {exc}")]
    if root.tag != "opml" or root.find("body") is None:
        return [], [ImportIssue(name, "", f"not an OPML document (root element <{root.tag}>)")]
    rows: list[tuple[str, dict[str, Any]]] = []
    count = 0

    def walk(node: Any, folders: tuple[str, ...]) -> None:
        nonlocal count
        for outline in node.findall("outline"):
            attrs = {_attr_name(k): v.strip() for k, v in outline.attrib.items() if v.strip()}
            kind = attrs.get("narrawatch:kind")
            if not attrs.get("xmlUrl") and not kind:
                title = attrs.get("text") or attrs.get("title") or ""
                walk(outline, (*folders, title) if title else folders)
                continue
            count += 1
            rows.append((f"outline {count}", _opml_entry(attrs, folders)))

    walk(root.find("body"), ())
    return rows, []


def _attr_name(key: str) -> str:
    return key.replace("{" + OPML_NS + "}", "narrawatch:")


def _opml_entry(attrs: Mapping[str, str], folders: Sequence[str]) -> dict[str, Any]:
    entry: dict[str, Any] = {k.removeprefix("narrawatch:"): v for k, v in attrs.items() if k.startswith("narrawatch:")}
    if "kind" in entry:  # our own export: the narrawatch:* attributes are the whole definition
        return entry
    entry["kind"] = "feed"
    if entry["kind"] == "feed" and attrs.get("xmlUrl"):
        entry.setdefault("url", attrs["xmlUrl"])
    title = attrs.get("title") or attrs.get("text")
    if title:
        entry.setdefault("outlet", title)
    if attrs.get("language"):
        entry.setdefault("language", attrs["language"])
    if "tags" not in entry:
        tags = [t.strip() for t in (attrs.get("category") or "").replace("/", ",").split(",") if t.strip()]
        tags += [f for f in folders if f]
        if tags:
            entry["tags"] = _LIST_SEP.join(dict.fromkeys(tags))
    return entry


# --- validation ---------------------------------------------------------------------------------


def _is_tuple(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin is tuple:
        return True
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        return any(_is_tuple(a) for a in typing.get_args(annotation))
    return False


def _list_keys(model: type[SourceBase]) -> set[str]:
    return {name for name, f in model.model_fields.items() if _is_tuple(f.annotation)}


def validate_entry(entry: Mapping[str, Any], file: str, where: str) -> tuple[SourceBase | None, list[ImportIssue]]:
    """One raw entry (strings from CSV/OPML, or YAML-like values) through its kind's config model.

    List-valued keys given as a string are split on ``;``; a missing ``id`` is made from the
    outlet or the URL's host; a missing ``kind`` is ``feed`` when there is a ``url``."""
    raw = dict(entry)
    if not raw.get("kind") and raw.get("url"):
        raw["kind"] = "feed"
    kind = raw.get("kind")
    if not isinstance(kind, str) or not kind:
        return None, [ImportIssue(file, where, f"kind: missing; one of: {', '.join(SOURCE_KINDS.names())}")]
    try:
        model = SOURCE_KINDS.get(kind).settings
    except UnknownNameError as exc:
        return None, [ImportIssue(file, where, f"kind: {exc}")]
    for key in _list_keys(model):
        if isinstance(raw.get(key), str):
            raw[key] = [p.strip() for p in str(raw[key]).split(_LIST_SEP) if p.strip()]
    if not raw.get("id"):
        raw["id"] = _make_id(raw)
    try:
        return model.model_validate(raw), []
    except ValidationError as exc:
        out = []
        for err in exc.errors():
            loc = format_loc(tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))))
            msg = "unknown key" if err["type"] == "extra_forbidden" else str(err["msg"]).removeprefix("Value error, ")
            out.append(ImportIssue(file, where, f"{loc}: {msg}" if loc else msg))
        return None, out


def _make_id(raw: Mapping[str, Any]) -> str:
    basis = str(raw.get("outlet") or "")
    if not basis:
        for key in _IDENTITY_KEYS:
            value = raw.get(key)
            value = value[0] if isinstance(value, list | tuple) and value else value
            if isinstance(value, str) and value:
                host = urlsplit(value).hostname if "://" in value else None
                basis = (host or value).removeprefix("www.")
                break
    slug = re.sub(r"[^a-z0-9_.-]+", "-", basis.lower()).strip("-._")[:60]
    return slug or "source"


def _identity(s: SourceBase) -> str:
    """What makes two sources the same feed/channel, whatever their ids (lower case)."""
    for key in _IDENTITY_KEYS:
        value = getattr(s, key, None)
        value = value[0] if isinstance(value, tuple) and value else value
        if isinstance(value, str | int) and value != "":
            return f"{s.kind}:{key}={str(value).lower().rstrip('/')}"
    return ""


# --- the plan -----------------------------------------------------------------------------------


def managed_dir(config: Config) -> Path:
    """``<data_dir>/sources.d``: the service-managed source files (:data:`core.settings.SOURCES_INCLUDE_DIR`)."""
    return config.data_dir / SOURCES_INCLUDE_DIR


def _origin(config: Config) -> dict[str, Path]:
    """Which file defines each configured source id (read again: the Config keeps no per-source file)."""
    out: dict[str, Path] = {}
    for path in config.files:
        if path.name == "service.yaml" and path.parent == config.root:
            continue
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue
        for item in data.get("sources") or () if isinstance(data, dict) else ():
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                out.setdefault(item["id"], path)
    return out


def plan_import(config: Config, data: bytes, name: str, fmt: ListFormat | None = None) -> ImportPlan:
    """Read, validate and compare a list with the configured sources (writes nothing)."""
    rows, issues = parse_source_list(data, name, fmt)
    return plan_entries(config, rows, name, issues)


def plan_entries(
    config: Config,
    rows: Sequence[tuple[str, Mapping[str, Any]]],
    name: str,
    issues: Sequence[ImportIssue] = (),
) -> ImportPlan:
    """Validate raw entries (``(where, entry)``) and compare them with the configured sources."""
    issues = list(issues)
    valid: list[tuple[str, SourceBase]] = []
    seen_ids: dict[str, str] = {}
    for where, entry in rows:
        src, errs = validate_entry(entry, name, where)
        issues.extend(errs)
        if src is None:
            continue
        if src.id in seen_ids:
            issues.append(ImportIssue(name, where, f"id: duplicate id {src.id!r} (also at {seen_ids[src.id]})"))
            continue
        seen_ids[src.id] = where
        valid.append((where, src))
    origin = _origin(config)
    managed = managed_dir(config).resolve()
    current = {s.id: s for s in config.sources}
    by_identity = {_identity(s): s.id for s in config.sources if _identity(s)}
    added: list[SourceBase] = []
    changed: list[tuple[SourceBase, SourceBase]] = []
    unchanged: list[str] = []
    blocked: list[ImportIssue] = []
    for where, src in valid:
        old = current.get(src.id)
        same = by_identity.get(_identity(src)) if _identity(src) else None
        if old is None and same is not None:
            blocked.append(
                ImportIssue(name, where, f"{src.id}: already configured as {same!r} (same {_identity(src)})")
            )
        elif old is None:
            added.append(src)
        elif entry_of(old) == entry_of(src):
            unchanged.append(src.id)
        elif origin.get(src.id) is not None and origin[src.id].resolve().parent != managed:
            where_old = display_path(origin[src.id], config.root)
            blocked.append(
                ImportIssue(
                    name, where, f"{src.id}: defined in {where_old}, which narrawatch never rewrites; edit it there"
                )
            )
        else:
            changed.append((old, src))
    return ImportPlan(name, tuple(added), tuple(changed), tuple(unchanged), tuple(blocked), tuple(issues))


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    secure_dir(folder)
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def apply_plan(config: Config, plan: ImportPlan, file_name: str = IMPORT_FILE, *, what: str = "sources import") -> Path:
    """Write the plan's added and changed sources into ``<data_dir>/sources.d/<file_name>``.

    Entries already in that file keep their place (a changed one is replaced). The file is
    written atomically and only kept if the whole config still loads; otherwise it is restored
    and :class:`~core.errors.ConfigError` raised. Raises :class:`InvalidRequestError` when the
    plan has issues.
    """
    if not plan.ok:
        raise InvalidRequestError(f"{len(plan.issues)} invalid row(s) in {plan.file}; nothing imported")
    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*\.yaml", file_name):
        raise InvalidRequestError(f"bad managed file name {file_name!r}")
    folder = managed_dir(config)
    target = folder / file_name
    with _locked(folder):
        previous = target.read_bytes() if target.exists() else None
        entries: list[dict[str, Any]] = []
        if previous is not None:
            data = yaml.safe_load(previous.decode("utf-8")) or {}
            entries = [e for e in (data.get("sources") or []) if isinstance(e, dict)]
        replace = {new.id: entry_of(new) for _, new in plan.changed}
        others = {old.id for old, _ in plan.changed}
        entries = [replace.pop(str(e.get("id")), e) for e in entries]
        entries += list(replace.values())  # changed ids that lived in another managed file
        entries += [entry_of(s) for s in plan.added]
        _write_atomic(target, _HEADER.format(what=what) + source_yaml_entries(entries))
        # An id changed here but defined in another managed file would now be duplicated.
        _drop_from_other_files(folder, target, others)
        try:
            load_config(config.root)
        except ConfigError:
            if previous is None:
                target.unlink(missing_ok=True)
            else:
                _write_atomic(target, previous.decode("utf-8"))
            raise
    return target


def _drop_from_other_files(folder: Path, target: Path, ids: set[str]) -> None:
    for path in sorted(folder.glob("*.yaml")):
        if path == target or not ids:
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        entries = [e for e in (data.get("sources") or []) if isinstance(e, dict)]
        kept = [e for e in entries if e.get("id") not in ids]
        if len(kept) != len(entries):
            head = "".join(line for line in path.read_text(encoding="utf-8").splitlines(True) if line.startswith("#"))
            _write_atomic(path, head + source_yaml_entries(kept))


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- YAML and export ----------------------------------------------------------------------------


def _compact(value: Any) -> Any:
    if isinstance(value, timedelta):
        return _duration(value)
    if isinstance(value, tuple | list):
        return [_compact(v) for v in value]
    if isinstance(value, dict):
        return {k: _compact(v) for k, v in value.items()}
    return value


def _duration(d: timedelta) -> str:
    seconds = d.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def entry_of(source: SourceBase) -> dict[str, Any]:
    """A source as its YAML entry: ``id``, ``kind``, then every key that differs from its default."""
    body = source.model_dump(mode="python", exclude_defaults=True)
    body.pop("id", None)
    body.pop("kind", None)
    return {"id": source.id, "kind": source.kind, **{k: _compact(v) for k, v in body.items()}}


def source_yaml_entries(entries: Sequence[Mapping[str, Any]]) -> str:
    """``{sources: [...]}`` as YAML (Unicode kept, keys in the given order)."""
    return yaml.safe_dump({"sources": [dict(e) for e in entries]}, allow_unicode=True, sort_keys=False, width=120)


def source_yaml(sources: Sequence[SourceBase]) -> str:
    """Sources as a ``sources.yaml`` body (for an operator to paste)."""
    return source_yaml_entries([entry_of(s) for s in sources])


_CSV_FIRST = ("id", "kind", "outlet", "actor", "country", "owner", "language", "tags", "enabled", "every")


def export_csv(sources: Sequence[SourceBase]) -> str:
    """Every source as one CSV row: metadata columns first, then each kind's own keys (lists joined by ``;``)."""
    entries = [entry_of(s) for s in sources]
    columns = list(_CSV_FIRST)
    for e in entries:
        columns += [k for k in e if k not in columns]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for e in entries:
        writer.writerow([_cell(e.get(c)) for c in columns])
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return _LIST_SEP.join(str(v) for v in value)
    return str(value)


def export_opml(sources: Sequence[SourceBase], title: str = "narrawatch sources") -> str:
    """OPML 2.0: one outline per source; feeds carry ``xmlUrl`` (what feed readers import), every
    source its full definition as ``narrawatch:*`` attributes (what :func:`plan_import` reads back)."""
    register_namespace("narrawatch", OPML_NS)
    opml = Element("opml", {"version": "2.0"})
    head = SubElement(opml, "head")
    SubElement(head, "title").text = title
    body = SubElement(opml, "body")
    for s in sources:
        attrs = {"text": s.outlet_label, "title": s.outlet_label}
        url = getattr(s, "url", None)
        if s.kind == "feed" and isinstance(url, str):
            attrs.update({"type": "rss", "xmlUrl": url})
        if s.language:
            attrs["language"] = s.language
        if s.tags:
            attrs["category"] = ",".join(s.tags)
        for key, value in entry_of(s).items():
            attrs[f"{{{OPML_NS}}}{key}"] = _cell(value)
        SubElement(body, "outline", attrs)
    indent(opml)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + tostring(opml, encoding="unicode") + "\n"


def _diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    keys = [k for k in dict.fromkeys([*old, *new]) if old.get(k) != new.get(k)]
    return ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys)
