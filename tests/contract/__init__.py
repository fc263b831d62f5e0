"""Contract tests run against every implementation of a seam; helpers to build realistic data.

The DocumentIndex corpus: 200 real Russian Telegram posts and 25 real English Korea Times feed
items (``tests/data/index``), split into passages by paragraph and embedded with
:class:`index.embed.HashingEmbedder`.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.documents import Document, IndexedDocument, Passage, document_id_for_telegram, document_id_for_url
from index.embed import HashingEmbedder

__all__ = ["embed", "load_corpus", "make_document", "split_passages"]

_LINK_RE = re.compile(r"https?://[^\s)\]>«»\"']+")
DATA = Path(__file__).resolve().parent.parent / "data" / "index"


def split_passages(text: str) -> tuple[Passage, ...]:
    """Paragraph passages (blank-line separated) with their character offsets."""
    out: list[Passage] = []
    for m in re.finditer(r"[^\n]+(?:\n(?!\s*\n)[^\n]*)*", text):
        chunk = m.group(0).strip()
        if chunk:
            out.append(Passage(index=len(out), text=chunk, start=m.start() + m.group(0).index(chunk)))
    return tuple(out)


def make_document(
    *,
    doc_id: str,
    source_id: str,
    kind: str,
    url: str,
    title: str,
    text: str,
    language: str,
    published: datetime,
    **extra_fields: object,
) -> Document:
    """A Document with passages, content hash, links and a small fingerprint filled in."""
    digest = hashlib.sha256(f"{title}\n{text}".encode()).hexdigest()
    return Document(
        id=doc_id,
        source_id=source_id,
        kind=kind,
        url=url,
        title=title,
        text=text,
        language=language,
        published=published,
        fetched=published + timedelta(minutes=7, microseconds=123),
        passages=split_passages(text),
        content_hash=digest,
        fingerprint=tuple(int(digest[i : i + 8], 16) for i in range(0, 32, 8)),
        links=tuple(dict.fromkeys(_LINK_RE.findall(text))),
        **extra_fields,  # type: ignore[arg-type]
    )


def load_corpus(data: Path = DATA) -> list[Document]:
    """The 225 real documents of the contract suite (200 ru Telegram posts, 25 en feed items)."""
    docs: list[Document] = []
    for i, line in enumerate((data / "posts.jsonl").read_text("utf-8").splitlines()):
        r = json.loads(line)
        channel = f"c{abs(r['channel_id'])}"
        text = r["text"].strip()
        title = text.split("\n", 1)[0][:120]
        docs.append(
            make_document(
                doc_id=document_id_for_telegram(channel, r["message_id"]),
                source_id=f"tg_{channel}",
                kind="telegram",
                url=f"https://t.me/{channel}/{r['message_id']}",
                title=title,
                text=text,
                language="ru",
                published=datetime.fromisoformat(r["date"]),
                outlet=f"t.me/{channel}",
                extraction="telegram",
                forwarded_from="rian_ru" if i % 10 == 3 else "",
                views=1000 + i * 37 if i % 4 else None,
                media=("photo",) if i % 3 == 0 else (),
                extra={"channel_name": r["channel"]},
            )
        )
    base = datetime(2022, 7, 27, 19, 35, tzinfo=UTC)
    for i, line in enumerate((data / "en_items.jsonl").read_text("utf-8").splitlines()):
        r = json.loads(line)
        docs.append(
            make_document(
                doc_id=document_id_for_url(r["url"]),
                source_id="koreatimes",
                kind="feed",
                url=r["url"],
                title=r["title"],
                text=r["text"],
                language="en",
                published=base + timedelta(minutes=13 * i),
                outlet="www.koreatimes.co.kr",
                extraction="feed_summary",
                author="Korea Times",
            )
        )
    return docs


def embed(docs: list[Document], embedder: HashingEmbedder) -> list[IndexedDocument]:
    """One vector per passage (passage text only, as the pipeline embeds passages)."""
    return [IndexedDocument(d, embedder.embed_documents([p.text for p in d.passages])) for d in docs]
