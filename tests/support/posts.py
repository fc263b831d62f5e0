"""Saved Telegram posts (``telegram_ru_posts.jsonl`` rows: ``channel_id``, ``message_id``,
``channel``, ``date``, ``text``) as the Documents the Telegram crawler makes of them."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from core.documents import Document, document_id_for_telegram
from crawlers.normalize import make_document


def telegram_documents(path: Path, fetched: datetime) -> list[Document]:
    """One Document per JSONL row of ``path``; source ``tg<channel id>``, outlet the channel's name."""
    docs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        p = json.loads(line)
        cid = abs(int(p["channel_id"]))
        docs.append(
            make_document(
                source_id=f"tg{cid}",
                kind="telegram",
                url=f"https://t.me/c{cid}/{p['message_id']}",
                title="",
                text=p["text"],
                published=datetime.fromisoformat(p["date"]),
                fetched=fetched,
                language_hint="ru",
                extraction="telegram",
                outlet=str(p["channel"]),
                doc_id=document_id_for_telegram(str(cid), int(p["message_id"])),
            )
        )
    return docs
