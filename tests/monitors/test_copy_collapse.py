"""Copy collapsing with banded candidates finds exactly the groups an all-pairs comparison finds."""

from __future__ import annotations

import dataclasses
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.matches import Match
from crawlers.normalize import fingerprint
from monitors.copies import CopyGroup, collapse_copies, fingerprint_jaccard, normalize_outlet

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


def reference_collapse_copies(matches: list[Match], threshold: float = 0.8, *, forwards: bool = True) -> list[Any]:
    """The pre-optimisation ``collapse_copies`` (all pairs, linear forward search), kept as the oracle."""

    def jaccard(a: tuple[int, ...], b: tuple[int, ...]) -> float:
        if not a or not b or len(a) != len(b):
            return 0.0
        return sum(1 for x, y in zip(a, b, strict=True) if x == y) / len(a)

    items = sorted(matches, key=lambda m: (m.published, m.document_id))
    parent = list(range(len(items)))

    def find(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)

    for i in range(len(items)):
        for j in range(i):
            if jaccard(items[i].fingerprint, items[j].fingerprint) >= threshold:
                union(i, j)
    by_outlet: dict[str, list[int]] = {}
    for i, m in enumerate(items):
        by_outlet.setdefault(normalize_outlet(m.outlet), []).append(i)
    for i, m in enumerate(items):
        if not forwards or not m.forwarded_from:
            continue
        candidates = [j for j in by_outlet.get(normalize_outlet(m.forwarded_from), []) if j != i]
        earlier = [j for j in candidates if items[j].published <= m.published]
        if earlier or candidates:
            union(i, (earlier or candidates)[-1])
    groups: dict[int, list[Match]] = {}
    for i, m in enumerate(items):
        groups.setdefault(find(i), []).append(m)
    out = [CopyGroup(original=ms[0], copies=tuple(ms[1:])) for ms in groups.values()]
    out.sort(key=lambda g: (g.original.published, g.original.document_id))
    return out


def with_reposts_and_forwards(matches: list[Match]) -> list[Match]:
    """Add verbatim reposts (identical fingerprints, equal times too) and forwards, as Telegram has."""
    rng = random.Random(5)
    out = list(matches)
    for k, m in enumerate(matches[::4]):
        out.append(
            dataclasses.replace(
                m,
                document_id=f"{m.document_id}-repost{k}",
                outlet=f"t.me/c{(k + 3) % 7}",
                published=m.published + timedelta(minutes=rng.choice([0, 0, 2, 30])),
            )
        )
    for k, m in enumerate(matches[1::6]):
        out.append(
            dataclasses.replace(
                m,
                document_id=f"{m.document_id}-fwd{k}",
                outlet=f"https://t.me/fwd{k % 3}",
                fingerprint=() if k % 2 else m.fingerprint[:32],  # no text, or another signature length
                forwarded_from=rng.choice(["@" + m.outlet.removeprefix("t.me/"), "t.me/c6", "t.me/nowhere"]),
                published=m.published + timedelta(minutes=rng.choice([-5, 0, 1, 90])),
            )
        )
    return out


@pytest.mark.parametrize(("threshold", "forwards"), [(0.5, True), (0.8, True), (0.8, False), (1.0, True)])
def test_collapse_equals_reference_with_reposts_and_forwards(threshold: float, forwards: bool) -> None:
    matches = with_reposts_and_forwards(make_matches())
    got = collapse_copies(matches, threshold, forwards=forwards)
    assert got == reference_collapse_copies(matches, threshold, forwards=forwards)
    assert sum(len(g.copies) for g in got) >= 50  # verbatim reposts alone give 40+ copies
