"""The narrative matcher: documents' passage vectors against the catalogue's exemplars.

Score definition (per document and narrative), see docs/narratives.md:

* ``similarity`` = max over the document's passages and the narrative's exemplars of the cosine
  between passage and exemplar vectors (all L2-normalised, so a dot product);
* ``counter_similarity`` = max over *all* the document's passages and the narrative's
  counter-exemplars of the same cosine;
* the document is *eligible* only if ``similarity - counter_similarity > counter_margin``
  (default 0: strictly closer to a claim than to a debunk/neutral report), the language filter
  passes and, with ``keyword_mode: gate``, a keyword occurs in the title or text;
* ``score`` = ``similarity`` + ``keyword_bonus`` when ``keyword_mode: boost`` and a keyword
  occurs; tier ``alert`` if ``score >= thresholds.alert``, else ``suggest`` if
  ``score >= thresholds.suggest``, else no match.

All passages of a batch are compared with all exemplars in one matrix product.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from core.documents import Document, SearchFilters, Vectors, utcnow
from core.errors import EmbeddingSpaceMismatch
from core.matches import Match, Tier
from index.base import DocumentIndex
from index.embed import Embedder
from monitors.catalogue import Catalogue, Narrative, Thresholds

__all__ = ["NarrativeMatcher", "NarrativeScore", "find_keywords", "keyword_pattern"]

log = logging.getLogger(__name__)

_NEG = np.float32(-2.0)


def _fold(text: str) -> str:
    return text.lower().replace("ё", "е")


def keyword_pattern(keywords: Sequence[str]) -> re.Pattern[str] | None:
    """One regex finding any keyword at a word start (case-insensitive, ё = е); None if none."""
    if not keywords:
        return None
    alts = sorted({re.escape(_fold(k)) for k in keywords}, key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(alts) + ")")


def find_keywords(pattern: re.Pattern[str] | None, text: str) -> tuple[str, ...]:
    """The distinct keywords (folded) the pattern finds in ``text``, in order of appearance."""
    if pattern is None:
        return ()
    return tuple(dict.fromkeys(m.group(0) for m in pattern.finditer(_fold(text))))


@dataclass(frozen=True)
class NarrativeScore:
    """How one document relates to one narrative, before thresholds are applied."""

    narrative_id: str
    score: float
    similarity: float
    counter_similarity: float | None
    passage_index: int
    exemplar_index: int
    """Index into :attr:`NarrativeMatcher.exemplars`."""
    keywords: tuple[str, ...]
    eligible: bool
    """False if the language filter, the keyword gate or the counter-exemplar rule rejects it."""
    reason: str = ""


@dataclass(frozen=True)
class _Exemplars:
    texts: tuple[str, ...]
    languages: tuple[str, ...]
    owners: np.ndarray  # narrative position of each row
    starts: np.ndarray  # first row of each narrative (narratives without rows: excluded)
    has_rows: np.ndarray  # bool per narrative
    vectors: np.ndarray


_VECTOR_CACHE: dict[str, dict[str, np.ndarray]] = {}
"""Embedding space key -> exemplar text -> vector; shared by matchers in one process."""


class NarrativeMatcher:
    """Matches documents (with their precomputed passage vectors) against enabled narratives."""

    def __init__(self, catalogue: Catalogue | Sequence[Narrative], embedder: Embedder) -> None:
        narratives = catalogue.enabled if isinstance(catalogue, Catalogue) else tuple(n for n in catalogue if n.enabled)
        self.narratives: tuple[Narrative, ...] = narratives
        self.embedder = embedder
        space = embedder.space
        self.space_key = space.key
        self.model = space.model
        self._patterns = [keyword_pattern(n.keywords) for n in narratives]
        self.exemplars = self._build([list(n.all_exemplars()) for n in narratives])
        self.counters = self._build([list(n.all_counter_exemplars()) for n in narratives])
        self.warnings: list[str] = []
        for n in narratives:
            th = n.thresholds
            if th is not None and not th.applies_to(self.space_key, self.model):
                msg = (
                    f"narrative {n.id!r}: thresholds were calibrated for {th.calibrated_for!r}, "
                    f"running model is {self.model!r}; re-run 'narratives calibrate'"
                )
                self.warnings.append(msg)
                log.warning("%s", msg)
            elif th is None:
                self.warnings.append(f"narrative {n.id!r}: no thresholds, using defaults")

    def thresholds(self, narrative: Narrative) -> Thresholds:
        """The thresholds applied to ``narrative``."""
        return narrative.effective_thresholds()

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        cache = _VECTOR_CACHE.setdefault(self.space_key, {})
        missing = [t for t in dict.fromkeys(texts) if t not in cache]
        if missing:
            vecs = self.embedder.embed_documents(missing)
            for t, v in zip(missing, vecs, strict=True):
                cache[t] = np.asarray(v, dtype=np.float32)
        dim = self.embedder.space.dim
        if not texts:
            return np.zeros((0, dim), dtype=np.float32)
        return np.stack([cache[t] for t in texts])

    def _build(self, per_narrative: list[list[tuple[str, str]]]) -> _Exemplars:
        texts: list[str] = []
        langs: list[str] = []
        owners: list[int] = []
        starts: list[int] = []
        for pos, items in enumerate(per_narrative):
            starts.append(len(texts))
            for lang, text in items:
                texts.append(text)
                langs.append(lang)
                owners.append(pos)
        has_rows = np.array([bool(items) for items in per_narrative], dtype=bool)
        return _Exemplars(
            texts=tuple(texts),
            languages=tuple(langs),
            owners=np.array(owners, dtype=np.int64),
            starts=np.array(starts, dtype=np.int64),
            has_rows=has_rows,
            vectors=self._embed(texts),
        )

    @staticmethod
    def _per_narrative_max(sims: np.ndarray, ex: _Exemplars, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows x exemplars) -> (rows x narratives) max and the argmax exemplar row."""
        best = np.full((sims.shape[0], k), _NEG, dtype=np.float32)
        arg = np.zeros((sims.shape[0], k), dtype=np.int64)
        if sims.shape[1] == 0 or sims.shape[0] == 0:
            return best, arg
        idx = np.flatnonzero(ex.has_rows)
        starts = ex.starts[idx]
        best[:, idx] = np.maximum.reduceat(sims, starts, axis=1)
        for j, s in zip(idx, starts, strict=True):
            end = ex.starts[j + 1] if j + 1 < len(ex.starts) else sims.shape[1]
            arg[:, j] = s + np.argmax(sims[:, s:end], axis=1)
        return best, arg

    def score_many(self, pairs: Sequence[tuple[Document, Vectors]]) -> list[list[NarrativeScore]]:
        """Every narrative's :class:`NarrativeScore` for every document (same order as ``pairs``)."""
        k = len(self.narratives)
        if not pairs or k == 0:
            return [[] for _ in pairs]
        dim = self.embedder.space.dim
        mats = []
        for doc, vecs in pairs:
            v = np.asarray(vecs, dtype=np.float32).reshape(-1, dim) if np.size(vecs) else np.zeros((0, dim), np.float32)
            if v.shape[0] != len(doc.passages):
                raise ValueError(f"{doc.id}: {v.shape[0]} vectors for {len(doc.passages)} passages")
            mats.append(v)
        allp = np.concatenate(mats, axis=0)
        ex_best, ex_arg = self._per_narrative_max(allp @ self.exemplars.vectors.T, self.exemplars, k)
        co_best, _ = self._per_narrative_max(allp @ self.counters.vectors.T, self.counters, k)
        out: list[list[NarrativeScore]] = []
        row = 0
        for (doc, _vecs), m in zip(pairs, mats, strict=True):
            n_rows = m.shape[0]
            out.append(
                self._score_doc(
                    doc, ex_best[row : row + n_rows], ex_arg[row : row + n_rows], co_best[row : row + n_rows]
                )
            )
            row += n_rows
        return out

    def _score_doc(self, doc: Document, best: np.ndarray, arg: np.ndarray, counter: np.ndarray) -> list[NarrativeScore]:
        scores: list[NarrativeScore] = []
        text = f"{doc.title}\n{doc.text}"
        for j, n in enumerate(self.narratives):
            if best.shape[0] == 0:
                scores.append(NarrativeScore(n.id, float(_NEG), float(_NEG), None, -1, -1, (), False, "no passages"))
                continue
            p = int(np.argmax(best[:, j]))
            sim = float(best[p, j])
            csim: float | None = float(counter[:, j].max()) if self.counters.has_rows[j] else None
            kws = find_keywords(self._patterns[j], text) if n.keyword_mode != "off" else ()
            score = sim + (n.keyword_bonus if n.keyword_mode == "boost" and kws else 0.0)
            reason = ""
            if n.languages and doc.language not in n.languages:
                reason = f"language {doc.language} not in {list(n.languages)}"
            elif n.keyword_mode == "gate" and not kws:
                reason = "keyword gate: no keyword"
            elif csim is not None and not sim - csim > n.counter_margin:
                reason = f"closer to a counter-exemplar ({csim:.3f} vs {sim:.3f})"
            scores.append(NarrativeScore(n.id, score, sim, csim, p, int(arg[p, j]), kws, not reason, reason))
        return scores

    def tier(self, narrative: Narrative, s: NarrativeScore) -> Tier | None:
        """The tier this score reaches for ``narrative`` (None: no match)."""
        if not s.eligible:
            return None
        th = self.thresholds(narrative)
        if s.score >= th.alert:
            return "alert"
        if s.score >= th.suggest:
            return "suggest"
        return None

    def match_many(self, pairs: Iterable[tuple[Document, Vectors]], *, now: datetime | None = None) -> list[Match]:
        """Matches of many documents at once (one matrix product), in input order."""
        pairs = list(pairs)
        now = now or utcnow()
        out: list[Match] = []
        for (doc, _v), scores in zip(pairs, self.score_many(pairs), strict=True):
            for n, s in zip(self.narratives, scores, strict=True):
                tier = self.tier(n, s)
                if tier is None:
                    continue
                out.append(
                    Match(
                        document_id=doc.id,
                        narrative_id=n.id,
                        score=round(s.score, 6),
                        tier=tier,
                        passage_index=doc.passages[s.passage_index].index,
                        passage_text=doc.passages[s.passage_index].text,
                        exemplar=self.exemplars.texts[s.exemplar_index],
                        exemplar_language=self.exemplars.languages[s.exemplar_index],
                        model=self.space_key,
                        source_id=doc.source_id,
                        outlet=doc.outlet,
                        language=doc.language,
                        published=doc.published,
                        url=doc.url,
                        title=doc.title,
                        similarity=round(s.similarity, 6),
                        counter_similarity=None if s.counter_similarity is None else round(s.counter_similarity, 6),
                        keywords=s.keywords,
                        fingerprint=doc.fingerprint,
                        forwarded_from=doc.forwarded_from,
                        matched_at=now,
                    )
                )
        return out

    def match(self, doc: Document, vectors: Vectors) -> list[Match]:
        """Matches of one document; ``vectors`` row i embeds ``doc.passages[i]``."""
        return self.match_many([(doc, vectors)])

    def match_backfill(
        self, index: DocumentIndex, since: datetime | None = None, *, batch: int = 200
    ) -> Iterator[Match]:
        """Match documents already in ``index`` (published at or after ``since``), in batches.

        Refuses an index built in another embedding space than this matcher's embedder.
        """
        space = index.embedding_space
        if space.key != self.space_key:
            raise EmbeddingSpaceMismatch(f"index space {space.key!r} != matcher space {self.space_key!r}")
        docs: list[Document] = []
        for doc in index.iter_documents(SearchFilters(since=since), batch=batch):
            docs.append(doc)
            if len(docs) >= batch:
                yield from self._backfill_batch(index, docs)
                docs = []
        if docs:
            yield from self._backfill_batch(index, docs)

    def _backfill_batch(self, index: DocumentIndex, docs: list[Document]) -> list[Match]:
        pv = index.passage_vectors(SearchFilters(document_ids=tuple(d.id for d in docs)))
        rows: dict[str, dict[int, int]] = {}
        for r, (did, pidx) in enumerate(zip(pv.document_ids, pv.passage_indexes, strict=True)):
            rows.setdefault(did, {})[pidx] = r
        pairs: list[tuple[Document, Vectors]] = []
        for d in docs:
            have = rows.get(d.id, {})
            if not d.passages or any(p.index not in have for p in d.passages):
                log.warning("backfill: %s has no stored vector for some passages; skipped", d.id)
                continue
            pairs.append((d, pv.vectors[[have[p.index] for p in d.passages]]))
        return self.match_many(pairs)
