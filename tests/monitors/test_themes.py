"""Emerging themes: a planted new theme among real Telegram posts (tests/data/trace/ORIGIN.md)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.documents import Document, document_id_for_telegram
from core.errors import ConfigIssue
from core.matches import Match
from crawlers.normalize import make_document
from index.embed import Embedder, HashingEmbedder
from index.local import EmbeddedIndex
from monitors.catalogue import load_catalogue
from monitors.store import MatchStore
from monitors.themes import Theme, discover_themes, promote_theme, top_terms

from .spread_world import build_index

DATA = Path(__file__).resolve().parent.parent / "data" / "trace"
SINCE = datetime(2024, 11, 17, tzinfo=UTC)
UNTIL = datetime(2024, 11, 24, tzinfo=UTC)


def _slug(name: str) -> str:
    return "_".join(re.findall(r"[a-z0-9]+", name.lower())) or f"ch{abs(hash(name)) % 10_000}"


def background() -> list[Document]:
    out = []
    for line in (DATA / "background.jsonl").read_text(encoding="utf-8").splitlines():
        p = json.loads(line)
        handle = f"ch{sum(map(ord, p['channel'])) % 100_000}"
        when = datetime.fromisoformat(p["date"])
        out.append(
            make_document(
                source_id=f"tg-{handle}",
                kind="telegram",
                url=f"https://t.me/{handle}/{p['message_id']}",
                title=p["text"].strip().splitlines()[0][:120],
                text=p["text"],
                published=when,
                fetched=when,
                language_hint="ru",
                extraction="telegram",
                outlet=f"t.me/{handle}",
                doc_id=document_id_for_telegram(handle, p["message_id"]),
            )
        )
    return out


def planted() -> list[Document]:
    out = []
    for k, line in enumerate((DATA / "planted_theme.jsonl").read_text(encoding="utf-8").splitlines()):
        p = json.loads(line)
        handle = p["outlet"].removeprefix("t.me/")
        when = datetime.fromisoformat(p["date"])
        out.append(
            make_document(
                source_id=f"tg-{handle}",
                kind="telegram",
                url=f"https://t.me/{handle}/{900 + k}",
                title=p["text"][:80],
                text=p["text"],
                published=when,
                fetched=when,
                language_hint="ru",
                extraction="telegram",
                outlet=p["outlet"],
                doc_id=document_id_for_telegram(handle, 900 + k),
            )
        )
    return out


def load_written(path: Path) -> None:
    issues: list[ConfigIssue] = []
    catalogue = load_catalogue(path.parent.parent, issues)
    assert issues == [], issues
    assert len(catalogue) == 1


def test_top_terms_are_cyrillic_aware_and_skip_stop_words() -> None:
    terms = top_terms(
        [["Водный спор: Кыргызстан и вода Токтогула", "Кыргызстан продаёт воду, водный кризис"]],
        ["Погода в Москве: снег и ветер", "Биткоин вырос"],
    )
    assert set(terms[0][:2]) == {"кыргызстан", "водный"}  # both twice; "вода"/"воду" differ in stem
    assert "и" not in terms[0]


def test_plumbing_with_hashing_embedder(tmp_path: Path) -> None:
    docs = planted()
    # A repost storm: one text copied by many channels must count as one text, not a theme.
    storm = [
        make_document(
            source_id=f"tg-storm{k}",
            kind="telegram",
            url=f"https://t.me/storm{k}/1",
            title="storm",
            text="Срочно: в Москве ураганный ветер, деревья падают на машины, МЧС просит не выходить из дома.",
            published=SINCE + timedelta(days=5, minutes=k),
            fetched=SINCE + timedelta(days=5, minutes=k),
            language_hint="ru",
            outlet=f"t.me/storm{k}",
            doc_id=document_id_for_telegram(f"storm{k}", 1),
        )
        for k in range(8)
    ]
    emb = HashingEmbedder()
    with build_index(tmp_path / "ix", emb, docs + storm) as index, MatchStore(tmp_path / "m.sqlite") as store:
        themes = discover_themes(index, since=SINCE, until=UNTIL, matches=store, min_size=3, distance=0.9)
        assert themes and all(isinstance(t, Theme) for t in themes)
        assert not any(set(t.documents) >= {d.id for d in storm} and t.distinct_texts < 3 for t in themes)
        json.dumps([t.as_dict() for t in themes], ensure_ascii=False)
        # Matched documents are not themes.
        store.add(
            Match(
                d.id,
                "n",
                0.9,
                "alert",
                0,
                "x",
                "x",
                "ru",
                "hashing",
                d.source_id,
                d.outlet,
                d.language,
                d.published,
                d.url,
                d.title,
            )
            for d in docs
        )
        assert discover_themes(index, since=SINCE, until=UNTIL, matches=store, min_size=3, distance=0.9) == []
        path = promote_theme(themes[0], "draft-theme", tmp_path / "cfg" / "narratives")
        load_written(path)


@pytest.mark.slow
def test_planted_theme_is_found_ranked_and_promotable(tmp_path: Path) -> None:
    from core.settings import EmbeddingSettings
    from index.embed import make_embedder

    emb: Embedder = make_embedder(EmbeddingSettings(model="use-multilingual-v3"))
    plant = planted()
    planted_ids = {d.id for d in plant}
    with build_index(tmp_path / "ix", emb, background() + plant) as index:
        assert isinstance(index, EmbeddedIndex)
        themes = discover_themes(index, since=SINCE, until=UNTIL, matches=None)
    best = max(themes, key=lambda t: len(planted_ids & set(t.documents)))
    assert len(planted_ids & set(best.documents)) >= 11  # most of the 14 planted texts
    assert len(set(best.documents) - planted_ids) <= 2  # and little else
    assert themes.index(best) < 3
    assert len(best.outlets) >= 4
    stems = {t[:5] for t in best.top_terms}
    assert len(stems & {"кыргы", "узбек", "токто", "водох", "бишке", "нарын"}) >= 2
    assert best.representatives and best.representatives[0].document_id in planted_ids
    path = promote_theme(best, "central-asia-water-fee", tmp_path / "cfg" / "narratives")
    load_written(path)
    text = path.read_text(encoding="utf-8")
    assert "DRAFT" in text and "enabled: false" in text
