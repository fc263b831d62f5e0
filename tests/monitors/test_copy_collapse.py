"""Copy collapsing with banded candidates finds exactly the groups an all-pairs comparison finds."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.matches import Match
from crawlers.normalize import fingerprint
from monitors.store import collapse_copies, fingerprint_jaccard

POSTS = Path(__file__).resolve().parents[1] / "data" / "index" / "posts.jsonl"


def brute_force_groups(matches: list[Match], threshold: float) -> set[frozenset[str]]:
    ids = [m.document_id for m in matches]
    parent = {i: i for i in ids}

    def find(x: str) -> str:
        while parent[x] != x:
            x = parent[x]
        return x

    for a in matches:
        for b in matches:
            if a is not b and fingerprint_jaccard(a.fingerprint, b.fingerprint) >= threshold:
                parent[find(a.document_id)] = find(b.document_id)
    groups: dict[str, set[str]] = {}
    for i in ids:
        groups.setdefault(find(i), set()).add(i)
    return {frozenset(g) for g in groups.values()}


def make_matches() -> list[Match]:
    rng = random.Random(11)
    posts = [json.loads(line) for line in POSTS.open(encoding="utf-8")][:150]
    texts = [p["text"] for p in posts if len(p["text"].split()) > 25]
    variants = []
    for t in texts[:40]:  # reposts with small edits: some stay copies, some drift apart
        words = t.split()
        for edits in (1, 3, 8):
            w = list(words)
            for _ in range(edits):
                w[rng.randrange(len(w))] = "правка"
            variants.append(" ".join(w))
    t0 = datetime(2024, 11, 20, tzinfo=UTC)
    out = []
    for i, text in enumerate(texts + variants):
        out.append(
            Match(
                document_id=f"d{i}",
                narrative_id="n",
                score=0.7,
                tier="alert",
                passage_index=0,
                passage_text=text[:80],
                exemplar="e",
                exemplar_language="ru",
                model="m",
                source_id=f"s{i % 7}",
                outlet=f"t.me/c{i % 7}",
                language="ru",
                published=t0 + timedelta(minutes=i),
                url=f"https://t.me/c/{i}",
                title="",
                fingerprint=fingerprint(text),
            )
        )
    return out


@pytest.mark.parametrize("threshold", [0.5, 0.8, 0.9])
def test_banded_collapse_equals_all_pairs(threshold: float) -> None:
    matches = make_matches()
    got = {frozenset(m.document_id for m in g.members) for g in collapse_copies(matches, threshold, forwards=False)}
    assert got == brute_force_groups(matches, threshold)
    assert any(len(g) > 1 for g in got)  # the corpus really has copies at this threshold
