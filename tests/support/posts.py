"""Saved Telegram posts (``telegram_ru_posts.jsonl`` rows: ``channel_id``, ``message_id``,
``channel``, ``date``, ``text``) as the Documents the Telegram crawler makes of them."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from core.documents import Document, document_id_for_telegram
from crawlers.normalize import make_document


def telegram_document(post: dict[str, Any], fetched: datetime) -> Document:
    """One saved post as a Document; source ``tg<channel id>``, outlet the channel's name."""
    cid = abs(int(post["channel_id"]))
    return make_document(
        source_id=f"tg{cid}",
        kind="telegram",
        url=f"https://t.me/c{cid}/{post['message_id']}",
        title="",
        text=post["text"],
        published=datetime.fromisoformat(post["date"]),
        fetched=fetched,
        language_hint="ru",
        extraction="telegram",
        outlet=str(post["channel"]),
        doc_id=document_id_for_telegram(str(cid), int(post["message_id"])),
    )


def telegram_documents(path: Path, fetched: datetime) -> list[Document]:
    """One Document per JSONL row of ``path`` (:func:`telegram_document`)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [telegram_document(json.loads(line), fetched) for line in lines]
