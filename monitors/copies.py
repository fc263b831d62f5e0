"""Copy detection: which matches are one text, reposted, lightly edited or forwarded.

:func:`collapse_copies` groups matches that are copies of each other (near-duplicate MinHash
fingerprints, or a Telegram forward joined to the item it forwards), so detectors count a text
reposted by ten channels once; :func:`fingerprint_jaccard` and :func:`normalize_outlet` serve
the trace and themes as well.
"""

from __future__ import annotations

import operator
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from core.matches import Match

__all__ = ["COPY_THRESHOLD", "CopyGroup", "collapse_copies", "fingerprint_jaccard", "normalize_outlet"]

COPY_THRESHOLD = 0.8
"""Estimated Jaccard (fraction of equal MinHash positions) at which two texts are copies."""


def fingerprint_jaccard(a: Sequence[int], b: Sequence[int]) -> float:
    """Estimated Jaccard similarity of two MinHash signatures: the fraction of equal positions.

    0.0 when either is empty or their lengths differ (signatures made with other settings).
    """
    if not a or not b or len(a) != len(b):
        return 0.0
    equal: int = sum(map(operator.eq, a, b))
    return equal / len(a)


def normalize_outlet(name: str) -> str:
    """``https://t.me/RIA_novosti``, ``@ria_novosti`` and ``ria_novosti`` -> ``ria_novosti``."""
    out = name.strip().lower()
    for prefix in ("https://", "http://"):
        out = out.removeprefix(prefix)
    out = out.removeprefix("www.").removeprefix("t.me/s/").removeprefix("t.me/").removeprefix("@")
    return out.rstrip("/")


@dataclass(frozen=True)
class CopyGroup:
    """Matches that are one text: the earliest is the original, the rest copies of it."""

    original: Match
    copies: tuple[Match, ...] = ()

    @property
    def members(self) -> tuple[Match, ...]:
        """The original followed by its copies."""
        return (self.original, *self.copies)

    @property
    def outlets(self) -> tuple[str, ...]:
        """Distinct outlets of the group, sorted."""
        return tuple(sorted({m.outlet for m in self.members}))


def _order(m: Match) -> tuple[datetime, str]:
    return (m.published, m.document_id)


def _candidate_pairs(items: Sequence[Match], threshold: float) -> Iterator[tuple[int, int]]:
    """Pairs that can reach ``threshold``, found by banding the signatures (exact, not sampled).

    Two signatures of length L with estimated Jaccard >= t differ in at most ``L(1-t)``
    positions; cut into ``floor(L(1-t)) + 1`` bands, at least one band is then identical
    (pigeonhole), so comparing only pairs that share a band finds every such pair while the
    rest (almost all pairs) are never compared. This keeps detectors linear in practice.
    """
    by_length: dict[int, list[int]] = {}
    for i, m in enumerate(items):
        if m.fingerprint:
            by_length.setdefault(len(m.fingerprint), []).append(i)
    seen: set[tuple[int, int]] = set()
    for length, idx in by_length.items():
        n_bands = min(length, int(length * (1.0 - threshold) + 1e-9) + 1)
        bounds = [round(b * length / n_bands) for b in range(n_bands + 1)]
        for b in range(n_bands):
            buckets: dict[tuple[int, ...], list[int]] = {}
            for i in idx:
                buckets.setdefault(tuple(items[i].fingerprint[bounds[b] : bounds[b + 1]]), []).append(i)
            for members in buckets.values():
                for x in range(1, len(members)):
                    for y in range(x):
                        pair = (members[x], members[y]) if members[x] > members[y] else (members[y], members[x])
                        if pair not in seen:
                            seen.add(pair)
                            yield pair


def collapse_copies(
    matches: Iterable[Match], threshold: float = COPY_THRESHOLD, *, forwards: bool = True
) -> list[CopyGroup]:
    """Group matches whose fingerprints are near-duplicates or that were forwarded from each other.

    A match is a copy when its fingerprint agrees with another's in ``>= threshold`` of positions,
    or when its ``forwarded_from`` names the outlet of another match in the input. Groups are the
    connected components; each is ordered by publication time, and the result by its original.
    ``forwards=False`` groups by text similarity only.
    """
    items = sorted(matches, key=_order)
    parent = list(range(len(items)))
    # Identical signatures (a text reposted verbatim) are copies outright (Jaccard 1.0): union them
    # and band only one representative per signature; the components are the same, found faster.
    firsts: dict[tuple[int, ...], int] = {}
    for i, m in enumerate(items):
        if m.fingerprint:
            firsts.setdefault(m.fingerprint, i)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)

    if threshold <= 1.0:
        for i, m in enumerate(items):
            if m.fingerprint and firsts[m.fingerprint] != i:
                union(i, firsts[m.fingerprint])
    reps = list(firsts.values()) if threshold <= 1.0 else list(range(len(items)))
    rep_items = [items[i] for i in reps]
    for a, b in _candidate_pairs(rep_items, threshold):
        i, j = reps[a], reps[b]
        if find(i) != find(j) and fingerprint_jaccard(items[i].fingerprint, items[j].fingerprint) >= threshold:
            union(i, j)
    if forwards and any(m.forwarded_from for m in items):
        _union_forwards(items, union)
    groups: dict[int, list[Match]] = {}
    for i, m in enumerate(items):
        groups.setdefault(find(i), []).append(m)
    out = [CopyGroup(original=ms[0], copies=tuple(ms[1:])) for ms in groups.values()]
    out.sort(key=lambda g: _order(g.original))
    return out


def _union_forwards(items: Sequence[Match], union: Callable[[int, int], None]) -> None:
    """Join each forward to its original: the latest item of the named outlet published no later
    (else the outlet's latest item). ``items`` are in publication order."""
    by_outlet: dict[str, list[int]] = {}
    for i, m in enumerate(items):
        by_outlet.setdefault(normalize_outlet(m.outlet), []).append(i)
    published = {key: [items[j].published for j in idx] for key, idx in by_outlet.items()}
    for i, m in enumerate(items):
        if not m.forwarded_from:
            continue
        key = normalize_outlet(m.forwarded_from)
        idx = by_outlet.get(key)
        if not idx:
            continue
        k = bisect_right(published[key], m.published) - 1  # idx[: k + 1] were published no later
        if k >= 0 and idx[k] == i:
            k -= 1
        if k >= 0:
            union(i, idx[k])
        elif idx[-1] != i or len(idx) > 1:
            union(i, idx[-1] if idx[-1] != i else idx[-2])
