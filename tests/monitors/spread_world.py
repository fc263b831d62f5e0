"""The spread-tracing fixture world (tests/data/trace/world.jsonl) as Documents in an EmbeddedIndex."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from core.documents import Document, IndexedDocument, document_id_for_telegram
from crawlers.normalize import make_document
from index.embed import Embedder
from index.local import EmbeddedIndex

WORLD = Path(__file__).resolve().parent.parent / "data" / "trace" / "world.jsonl"


def load_world() -> list[tuple[str, Document]]:
    """``(role, document)`` for every fixture document, in file order."""
    out: list[tuple[str, Document]] = []
    for line in WORLD.read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        published = datetime.fromisoformat(d["published"])
        tg = d["kind"] == "telegram"
        text: str = d["text"]
        doc = make_document(
            source_id=f"tg-{d['channel']}" if tg else d["outlet"],
            kind=d["kind"],
            url=d["url"],
            title=d.get("title") or text.strip().splitlines()[0][:120],
            text=text,
            published=published,
            fetched=published,
            language_hint=d["language_hint"],
            extraction="telegram" if tg else "page",
            outlet=d["outlet"],
            links=d.get("links", ()),
            forwarded_from=d.get("forwarded_from", ""),
            doc_id=document_id_for_telegram(d["channel"], d["message_id"]) if tg else None,
            extra={"forwarded_from_url": d.get("forwarded_from_url", "")},
        )
        out.append((d["role"], doc))
    return out


def build_index(path: Path, embedder: Embedder, docs: list[Document]) -> EmbeddedIndex:
    """An EmbeddedIndex at ``path`` holding ``docs`` embedded passage by passage."""
    index = EmbeddedIndex(path, embedder.space)
    docs = [d for d in docs if d.passages]
    vectors = embedder.embed_documents([p.text for d in docs for p in d.passages])  # one batch: much faster
    items, start = [], 0
    for d in docs:
        items.append(IndexedDocument(d, vectors[start : start + len(d.passages)]))
        start += len(d.passages)
    index.upsert(items)
    return index
