"""The narrative matcher: documents' passage vectors against the catalogue, in two stages.

**Stage 1, retrieval** (per document and narrative), see docs/narratives.md:

* ``similarity`` = max over the document's passages and the narrative's exemplars of the cosine
  between passage and exemplar vectors (all L2-normalised, so a dot product);
* ``counter_similarity`` = max over *all* the document's passages and the narrative's
  counter-exemplars of the same cosine.

**Stage 2, decision.** With a learned model for the narrative (``narratives learn``,
:mod:`monitors.decision`), the document is a candidate when ``similarity`` reaches the
model's recall floor, and the model's probability that it *asserts* the claim is compared with
the learned (per-language) thresholds. Without one, ``score`` = ``similarity`` (+ ``keyword_bonus``
with ``keyword_mode: boost``) against ``thresholds``. In both, the rules the operator wrote always
apply: the language filter, the keyword gate (``keyword_mode: gate``) and the counter-exemplar rule
(eligible only if ``similarity - counter_similarity > counter_margin``).

All passages of a batch are compared with all exemplars (and all learned weight vectors) in
one matrix product each.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np

from core.documents import Document, SearchFilters, Vectors, utcnow
from core.errors import EmbeddingSpaceMismatch
from core.matches import Match, Tier
from index.base import DocumentIndex
from index.embed import Embedder
from monitors.catalogue import Catalogue, Narrative, Thresholds
from monitors.decision import SCALAR_FEATURES, VETO_SIMILARITY, LearnedState, NarrativeModel, excerpt, sigmoid

__all__ = ["Features", "NarrativeMatcher", "NarrativeScore", "find_keywords", "keyword_pattern"]

log = logging.getLogger(__name__)

_NEG = np.float32(-2.0)


def _fold(text: str) -> str:
    return text.lower().replace("ё", "е")


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return (v / n).astype(np.float32) if n > 0 else v.astype(np.float32)


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
    """How one document relates to one narrative: stage-1 retrieval and the stage-2 decision."""

    narrative_id: str
    score: float
    """What the tier is decided on: the learned probability, or (thresholds only) the cosine score."""
    similarity: float
    counter_similarity: float | None
    passage_index: int
    exemplar_index: int
    """Index into :attr:`NarrativeMatcher.exemplars`."""
    keywords: tuple[str, ...]
    eligible: bool
    """False if the language filter, the keyword gate, the stage-1 floor, the counter-exemplar
    rule (thresholds only) or an analyst-rejected near copy rejects it."""
    reason: str = ""
    probability: float | None = None
    """The learned model's probability of asserting the narrative (None: thresholds only)."""
    tier: Tier | None = None
    """The tier reached (None: no match)."""
    reasons: tuple[str, ...] = ()
    """For a match: why, in words an analyst can check."""

    @property
    def decision(self) -> str:
        """``learned`` or ``threshold``."""
        return "threshold" if self.probability is None else "learned"


@dataclass(frozen=True)
class Features:
    """Stage-2 inputs of a batch of documents for every narrative (see :mod:`monitors.decision`)."""

    passage_vectors: np.ndarray
    """(documents, narratives, dim): each document's passage closest to each narrative."""
    document_vectors: np.ndarray
    """(documents, dim): L2-normalised mean passage vector per document."""
    scalars: np.ndarray
    """(documents, narratives, len(SCALAR_FEATURES))."""
    has_passages: np.ndarray
    """(documents,) bool."""


@dataclass(frozen=True)
class _Exemplars:
    texts: tuple[str, ...]
    languages: tuple[str, ...]
    owners: np.ndarray  # narrative position of each row
    starts: np.ndarray  # first row of each narrative (narratives without rows: excluded)
    has_rows: np.ndarray  # bool per narrative
    vectors: np.ndarray


@dataclass(frozen=True)
class _Stage1:
    """Passage x narrative retrieval for a batch; ``offsets[i]:offsets[i+1]`` are document i's rows."""

    passages: np.ndarray
    offsets: np.ndarray
    best: np.ndarray
    arg: np.ndarray
    counter: np.ndarray


_VECTOR_CACHE: dict[str, dict[str, np.ndarray]] = {}
"""Embedding space key -> exemplar text -> vector; shared by matchers in one process."""


class NarrativeMatcher:
    """Matches documents (with their precomputed passage vectors) against enabled narratives.

    ``learned`` (default: the catalogue's own, from ``<config>/learned/``) adds the stage-2
    decision for every narrative it has a usable model of; ``use_learned=False`` gives the
    thresholds-only matcher (the baseline, and what ``narratives learn`` fits on top of).
    """

    def __init__(
        self,
        catalogue: Catalogue | Sequence[Narrative],
        embedder: Embedder,
        learned: LearnedState | None = None,
        *,
        use_learned: bool = True,
    ) -> None:
        narratives = catalogue.enabled if isinstance(catalogue, Catalogue) else tuple(n for n in catalogue if n.enabled)
        if learned is None and isinstance(catalogue, Catalogue):
            learned = catalogue.learned
        self.narratives: tuple[Narrative, ...] = narratives
        self.embedder = embedder
        space = embedder.space
        self.space_key = space.key
        self.model = space.model
        self._patterns = [keyword_pattern(n.keywords) for n in narratives]
        self.exemplars = self._build([list(n.all_exemplars()) for n in narratives])
        self.counters = self._build([list(n.all_counter_exemplars()) for n in narratives])
        self.warnings: list[str] = []
        self.models: list[NarrativeModel | None] = []
        self._why_threshold: dict[str, str] = {}
        for n in narratives:
            model: NarrativeModel | None = None
            why = "no learned state (run 'narratives learn')"
            if use_learned and learned is not None:
                model, why = learned.usable(self.space_key, n.id, n.fingerprint())
                if model is None:
                    msg = f"narrative {n.id!r}: learned model not used: {why}; using cosine thresholds"
                    self.warnings.append(msg)
                    log.warning("%s", msg)
            self.models.append(model)
            self._why_threshold[n.id] = why
            th = n.thresholds
            if model is not None:
                continue
            if th is not None and not th.applies_to(self.space_key, self.model):
                msg = (
                    f"narrative {n.id!r}: thresholds were calibrated for {th.calibrated_for!r}, "
                    f"running model is {self.model!r}; re-run 'narratives calibrate'"
                )
                self.warnings.append(msg)
                log.warning("%s", msg)
            elif th is None:
                self.warnings.append(f"narrative {n.id!r}: no thresholds, using defaults")
        dim = space.dim
        k = len(narratives)
        self._wp = np.zeros((k, dim), dtype=np.float32)
        self._wd = np.zeros((k, dim), dtype=np.float32)
        self._ws = np.zeros((k, len(SCALAR_FEATURES)), dtype=np.float32)
        self._bias = np.zeros(k, dtype=np.float32)
        for j, m in enumerate(self.models):
            if m is not None:
                self._wp[j], self._wd[j], self._ws[j], self._bias[j] = m.w_passage, m.w_document, m.w_scalar, m.bias

    @property
    def learned_ids(self) -> tuple[str, ...]:
        """Narratives decided by a learned model."""
        return tuple(n.id for n, m in zip(self.narratives, self.models, strict=True) if m is not None)

    def thresholds(self, narrative: Narrative) -> Thresholds:
        """The cosine thresholds applied to ``narrative`` when it has no learned model."""
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

    def _stage1(self, pairs: Sequence[tuple[Document, Vectors]]) -> _Stage1:
        k = len(self.narratives)
        dim = self.embedder.space.dim
        mats = []
        for doc, vecs in pairs:
            v = np.asarray(vecs, dtype=np.float32).reshape(-1, dim) if np.size(vecs) else np.zeros((0, dim), np.float32)
            if v.shape[0] != len(doc.passages):
                raise ValueError(f"{doc.id}: {v.shape[0]} vectors for {len(doc.passages)} passages")
            mats.append(v)
        allp = np.concatenate(mats, axis=0) if mats else np.zeros((0, dim), np.float32)
        offsets = np.cumsum([0, *(m.shape[0] for m in mats)])
        best, arg = self._per_narrative_max(allp @ self.exemplars.vectors.T, self.exemplars, k)
        counter, _ = self._per_narrative_max(allp @ self.counters.vectors.T, self.counters, k)
        return _Stage1(allp, offsets, best, arg, counter)

    def _doc_keywords(self, doc: Document) -> list[tuple[str, ...]]:
        """The keywords each narrative finds in the document's title and text (none with ``off``)."""
        text = f"{doc.title}\n{doc.text}"
        return [
            find_keywords(pat, text) if n.keyword_mode != "off" else ()
            for n, pat in zip(self.narratives, self._patterns, strict=True)
        ]

    def _doc_scalars(
        self, kws: Sequence[tuple[str, ...]], best: np.ndarray, counter: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(best passage per narrative, scalars (narratives x features)) for one document's rows."""
        k = len(self.narratives)
        p = np.argmax(best, axis=0)
        sim = best[p, np.arange(k)].astype(np.float64)
        top2 = np.sort(best, axis=0)[-2:].mean(axis=0) if best.shape[0] >= 2 else sim
        csim = np.where(self.counters.has_rows, counter.max(axis=0), 0.0).astype(np.float64)
        kw = np.array([1.0 if found else 0.0 for found in kws])
        return p, np.stack([sim, top2, csim, sim - csim, kw], axis=1)

    def features(self, pairs: Sequence[tuple[Document, Vectors]]) -> Features:
        """Stage-2 inputs of every (document, narrative) (what ``narratives learn`` fits on)."""
        k, dim = len(self.narratives), self.embedder.space.dim
        st = self._stage1(pairs)
        pv = np.zeros((len(pairs), k, dim), dtype=np.float32)
        dv = np.zeros((len(pairs), dim), dtype=np.float32)
        sc = np.zeros((len(pairs), k, len(SCALAR_FEATURES)), dtype=np.float32)
        has = np.zeros(len(pairs), dtype=bool)
        for i, (doc, _v) in enumerate(pairs):
            lo, hi = int(st.offsets[i]), int(st.offsets[i + 1])
            if hi == lo:
                continue
            has[i] = True
            p, scal = self._doc_scalars(self._doc_keywords(doc), st.best[lo:hi], st.counter[lo:hi])
            pv[i] = st.passages[lo + p]
            dv[i] = _unit(st.passages[lo:hi].mean(axis=0))
            sc[i] = scal
        return Features(pv, dv, sc, has)

    def score_many(self, pairs: Sequence[tuple[Document, Vectors]]) -> list[list[NarrativeScore]]:
        """Every narrative's :class:`NarrativeScore` for every document (same order as ``pairs``)."""
        k = len(self.narratives)
        if not pairs or k == 0:
            return [[] for _ in pairs]
        st = self._stage1(pairs)
        learned = any(m is not None for m in self.models)
        pass_logit = st.passages @ self._wp.T if learned else None
        out: list[list[NarrativeScore]] = []
        for i, (doc, _v) in enumerate(pairs):
            lo, hi = int(st.offsets[i]), int(st.offsets[i + 1])
            if hi == lo:
                out.append(
                    [
                        NarrativeScore(n.id, float(_NEG), float(_NEG), None, -1, -1, (), False, "no passages")
                        for n in self.narratives
                    ]
                )
                continue
            kws = self._doc_keywords(doc)
            p, scal = self._doc_scalars(kws, st.best[lo:hi], st.counter[lo:hi])
            logits = None
            if pass_logit is not None:
                dvec = _unit(st.passages[lo:hi].mean(axis=0))
                logits = pass_logit[lo + p, np.arange(k)] + self._wd @ dvec + (self._ws * scal).sum(axis=1) + self._bias
            out.append(self._score_doc(doc, st, lo, p, scal, kws, logits))
        return out

    def _score_doc(
        self,
        doc: Document,
        st: _Stage1,
        lo: int,
        p: np.ndarray,
        scal: np.ndarray,
        doc_kws: Sequence[tuple[str, ...]],
        logits: np.ndarray | None,
    ) -> list[NarrativeScore]:
        scores: list[NarrativeScore] = []
        for j, n in enumerate(self.narratives):
            pj = int(p[j])
            sim = float(scal[j, 0])
            csim: float | None = float(scal[j, 2]) if self.counters.has_rows[j] else None
            kws = doc_kws[j]
            ex_row = int(st.arg[lo + pj, j])
            model = self.models[j]
            reason = ""
            if n.languages and doc.language not in n.languages:
                reason = f"language {doc.language} not in {list(n.languages)}"
            elif n.keyword_mode == "gate" and not kws:
                reason = "keyword gate: no keyword"
            # The operator's counter-exemplars are a rule in both stages: a document closer to a
            # debunk or neutral report of the topic than to any statement of the claim is not raised.
            if not reason and csim is not None and not sim - csim > n.counter_margin:
                reason = f"closer to a counter-exemplar ({csim:.3f} vs {sim:.3f})"
            if model is None:
                score = sim + (n.keyword_bonus if n.keyword_mode == "boost" and kws else 0.0)
                s = NarrativeScore(n.id, score, sim, csim, pj, ex_row, kws, not reason, reason)
                scores.append(self._threshold_tier(n, s))
                continue
            assert logits is not None
            prob = float(sigmoid(np.array(logits[j]))) if sim >= model.floor else 0.0
            if not reason and sim < model.floor:
                reason = f"below the stage-1 floor ({sim:.3f} < {model.floor:.3f})"
            s = NarrativeScore(n.id, prob, sim, csim, pj, ex_row, kws, not reason, reason, probability=prob)
            scores.append(self._learned_tier(n, model, s, doc, st.passages[lo + pj]))
        return scores

    def _threshold_tier(self, n: Narrative, s: NarrativeScore) -> NarrativeScore:
        if not s.eligible:
            return s
        th = self.thresholds(n)
        tier: Tier | None = "alert" if s.score >= th.alert else "suggest" if s.score >= th.suggest else None
        if tier is None:
            return s
        cut = th.alert if tier == "alert" else th.suggest
        reasons = [
            f"thresholds only ({self._why_threshold[n.id]}): cosine score {s.score:.3f} >= {tier} threshold {cut:.3f}",
            f"closest exemplar ({s.similarity:.3f}): «{excerpt(self.exemplars.texts[s.exemplar_index])}»",
        ]
        if s.counter_similarity is not None:
            reasons.append(f"closest counter-exemplar {s.counter_similarity:.3f} (lower than the exemplar)")
        if s.keywords:
            reasons.append("keywords: " + ", ".join(s.keywords))
        return replace(s, tier=tier, reasons=tuple(reasons))

    def _learned_tier(
        self, n: Narrative, model: NarrativeModel, s: NarrativeScore, doc: Document, evidence: np.ndarray
    ) -> NarrativeScore:
        if not s.eligible or s.probability is None:
            return s
        tier = model.tier(s.probability, doc.language, s.similarity)
        if tier is None:
            return s
        reasons = [
            f"learned model: p={s.probability:.2f} that it asserts the claim "
            f"(suggest >= {model.suggest_for(doc.language):.2f}; alert >= {model.alert:.2f} "
            f"with similarity >= {model.alert_similarity:.2f})",
            f"closest exemplar ({s.similarity:.3f}): «{excerpt(self.exemplars.texts[s.exemplar_index])}»",
        ]
        ex = model.examples
        if ex is not None and len(ex):
            sims = ex.vectors @ evidence
            pos = np.flatnonzero(ex.positive)
            neg = np.flatnonzero(~ex.positive)
            best_pos = float(sims[pos].max()) if pos.size else -1.0
            rejected = [i for i in neg if ex.kinds[i] == "rejected"]
            if rejected:
                r = max(rejected, key=lambda i: float(sims[i]))
                if float(sims[r]) >= VETO_SIMILARITY and float(sims[r]) > best_pos:
                    why = f"near copy ({float(sims[r]):.2f}) of a match an analyst rejected: «{ex.texts[r]}»"
                    return replace(s, eligible=False, reason=why)
            if pos.size:
                i = int(pos[np.argmax(sims[pos])])
                reasons.append(f"most like labelled instance ({ex.kinds[i]}, {float(sims[i]):.2f}): «{ex.texts[i]}»")
            if neg.size:
                i = int(neg[np.argmax(sims[neg])])
                reasons.append(f"nearest labelled non-instance ({ex.kinds[i]}, {float(sims[i]):.2f}): «{ex.texts[i]}»")
        if s.keywords:
            reasons.append("keywords: " + ", ".join(s.keywords))
        return replace(s, tier=tier, reasons=tuple(reasons))

    def tier(self, narrative: Narrative, s: NarrativeScore) -> Tier | None:
        """The tier this score reached for ``narrative`` (None: no match)."""
        return s.tier if s.eligible else None

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
                        decision=s.decision,
                        probability=None if s.probability is None else round(s.probability, 6),
                        reasons=s.reasons,
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
