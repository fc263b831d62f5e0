"""JSON-ready conversion of records (crawler subprocess stream, exports, the HTTP API)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from core.documents import Document, Passage
from core.evidence import Capture

__all__ = ["document_from_dict", "document_to_dict", "optional_fields", "optional_fields_json", "optional_fields_of"]


def document_to_dict(doc: Document, *, passages: bool = True) -> dict[str, Any]:
    """A plain dict with ISO-8601 dates; inverse of :func:`document_from_dict`."""
    out: dict[str, Any] = {
        "id": doc.id,
        "source_id": doc.source_id,
        "kind": doc.kind,
        "url": doc.url,
        "title": doc.title,
        "text": doc.text,
        "language": doc.language,
        "published": doc.published.isoformat(),
        "fetched": doc.fetched.isoformat(),
        "content_hash": doc.content_hash,
        **optional_fields_of(doc),
    }
    if passages:
        out["passages"] = [{"index": p.index, "text": p.text, "start": p.start} for p in doc.passages]
    return out


def optional_fields_of(doc: Document) -> dict[str, Any]:
    """The optional :class:`Document` fields as plain JSON values (inverse: :func:`optional_fields`)."""
    return {
        "fingerprint": list(doc.fingerprint),
        "author": doc.author,
        "extraction": doc.extraction,
        "outlet": doc.outlet,
        "links": list(doc.links),
        "forwarded_from": doc.forwarded_from,
        "views": doc.views,
        "media": list(doc.media),
        "capture": doc.capture.to_dict() if doc.capture is not None else None,
        "extra": dict(doc.extra),
    }


def optional_fields_json(doc: Document) -> str:
    """:func:`optional_fields_of` as one JSON text (how the index backends store them)."""
    return json.dumps(optional_fields_of(doc), ensure_ascii=False, default=str)


def document_from_dict(data: dict[str, Any]) -> Document:
    """Rebuild a :class:`Document` from :func:`document_to_dict` output."""
    return Document(
        id=data["id"],
        source_id=data["source_id"],
        kind=data["kind"],
        url=data["url"],
        title=data["title"],
        text=data["text"],
        language=data["language"],
        published=datetime.fromisoformat(data["published"]),
        fetched=datetime.fromisoformat(data["fetched"]),
        passages=tuple(Passage(p["index"], p["text"], p.get("start", 0)) for p in data.get("passages", [])),
        content_hash=data["content_hash"],
        **optional_fields(data),
    )


def optional_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The optional :class:`Document` fields from a stored dict, with their defaults."""
    return {
        "fingerprint": tuple(int(x) for x in data.get("fingerprint", ())),
        "author": data.get("author", ""),
        "extraction": data.get("extraction", "page"),
        "outlet": data.get("outlet", ""),
        "links": tuple(data.get("links", ())),
        "forwarded_from": data.get("forwarded_from", ""),
        "views": data.get("views"),
        "media": tuple(data.get("media", ())),
        "capture": Capture.from_dict(data["capture"]) if data.get("capture") else None,
        "extra": dict(data.get("extra", {})),
    }
