"""Narrative matches: the record the matcher produces and detectors and alerts consume."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

__all__ = ["Match", "Tier", "match_id"]

Tier = Literal["suggest", "alert"]


@dataclass(frozen=True)
class Match:
    """A document's passage judged close to a narrative. An indication for review, not a verdict."""

    document_id: str
    narrative_id: str
    score: float
    """Final score compared with the narrative's thresholds (cosine-based, embedding-space specific)."""
    tier: Tier
    passage_index: int
    passage_text: str
    exemplar: str
    """The closest exemplar's text."""
    exemplar_language: str
    model: str
    """``EmbeddingSpace.key`` of the vectors that were compared."""
    source_id: str
    outlet: str
    language: str
    published: datetime
    url: str
    title: str
    similarity: float = 0.0
    """Raw cosine to the closest exemplar."""
    counter_similarity: float | None = None
    """Raw cosine to the closest counter-exemplar, if the narrative has any."""
    keywords: tuple[str, ...] = ()
    """Narrative keywords found in the document."""
    fingerprint: tuple[int, ...] = ()
    """The document's near-duplicate fingerprint, so detectors can collapse copies."""
    forwarded_from: str = ""
    matched_at: datetime | None = field(default=None, compare=False)
    seen: datetime | None = field(default=None, compare=False)
    """When the service first learned of this match (the pass that indexed and matched the document).

    Detector windows that ask "is this news?" count items by this time, so an item crawled late
    still alerts; alerts report :attr:`published`. The match store keeps the first value it was
    given: a re-fetch, update or re-match never moves it. None (backfills, older callers): the
    store takes the earlier of :attr:`published` and :attr:`matched_at`.
    """
    decision: str = "threshold"
    """Which stage decided the tier: ``threshold`` (cosine thresholds only) or ``learned``
    (the fitted decision model of ``narratives learn``)."""
    probability: float | None = None
    """The learned model's probability that the document asserts the narrative (None: thresholds only)."""
    reasons: tuple[str, ...] = ()
    """Why the match was raised, in words an analyst can check (nearest confirmed examples, cues)."""

    @property
    def id(self) -> str:
        """Stable id of the (document, narrative) pair: see :func:`match_id`."""
        return match_id(self.document_id, self.narrative_id)


def match_id(document_id: str, narrative_id: str) -> str:
    """Stable short id of a (document, narrative) match: 16 hex digits of SHA-256."""
    return hashlib.sha256(f"{document_id}\x1f{narrative_id}".encode()).hexdigest()[:16]
