"""``narratives learn``: fit the stage-2 decision of every narrative from labelled examples.

Inputs: gold JSONL (the ``narratives eval`` format), optional background news (negatives for
every narrative), analysts' verdicts (gold lines with ``judged``), and the catalogue itself
(exemplars are positives of their narrative and same-register negatives of the others;
counter-exemplars are negatives). Per narrative, with at least :attr:`LearnOptions.min_positives`
labelled positives:

1. the stage-1 features of every labelled row (:meth:`NarrativeMatcher.features`);
2. a class-balanced, L2-regularised logistic regression (scikit-learn) on the standardised
   features, its ``C`` chosen by stratified k-fold average precision;
3. out-of-fold probabilities of that ``C`` choose the stage-1 floor (keeps 98% of positives),
   ``suggest`` (best F1 with background false positives at most ``suggest_background_rate``),
   per-language ``suggest`` where a language has enough labels, and ``alert`` (out-of-fold
   precision >= ``alert_precision`` and background false positives <= ``alert_background_rate``);
4. the final model on all rows, its weights folded back to raw features.

Verdicts weigh more than gold lines (an analyst's rejection must stop that kind of match), and a
near copy of a rejected match is vetoed at match time (:data:`monitors.decision.VETO_SIMILARITY`).
"""

from __future__ import annotations

import hashlib
import logging
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigError, ConfigIssue
from monitors.decision import LabelledExamples, LearnedState, NarrativeModel, excerpt
from monitors.evaluate import GoldItem, gold_document
from monitors.narratives import Features, NarrativeMatcher

__all__ = ["LearnOptions", "file_digest", "learn", "training_rows"]

log = logging.getLogger(__name__)

_KIND_WEIGHT = {"confirmed": 3.0, "rejected": 3.0, "exemplar": 1.0, "counter": 1.0, "gold": 1.0}


@dataclass(frozen=True)
class LearnOptions:
    """Knobs of :func:`learn` (the defaults are what ``narratives learn`` uses)."""

    min_positives: int = 3
    folds: int = 4
    c_grid: tuple[float, ...] = (0.003, 0.01, 0.03, 0.1)
    alert_precision: float = 0.9
    alert_background_rate: float = 0.0005
    """At most this fraction of background rows (out of fold) may reach ``alert``."""
    suggest_background_rate: float = 0.01
    alert_min_probability: float = 0.75
    """``alert`` is never below this probability, nor less than ``alert_gap`` above ``suggest``."""
    alert_gap: float = 0.1
    alert_similarity_quantile: float = 0.25
    """``alert`` also needs stage-1 similarity at least this quantile of the positives' similarity."""
    min_language_labels: int = 10
    """Positives and negatives a language needs in the labelled rows for its own ``suggest``."""
    max_language_shift: float = 0.2
    """A language's own ``suggest`` stays within this distance of the narrative's."""
    background_weight: float = 1.0
    """Weight of one background row relative to one labelled negative. Ordinary news on the
    narrative's topic (a strike, a summit, a decree) is exactly what a topic matcher confuses
    with an assertion, so it must weigh in, not be drowned by the labelled rows."""
    keep_negatives: int = 120
    """Hardest negatives kept per narrative as evidence (all rejected verdicts are kept too)."""
    seed: int = 0


@dataclass(frozen=True)
class _Row:
    item: GoldItem
    kind: str
    """``gold``, ``background``, ``exemplar``, ``counter``, ``confirmed`` or ``rejected``."""
    owner: str = ""
    """For exemplar rows: the narrative the exemplar belongs to."""


def file_digest(path: Path | str) -> str:
    """``<name> sha256:<first 16 hex digits>`` of a file, for the learned state's provenance."""
    p = Path(path)
    return f"{p.name} sha256:{hashlib.sha256(p.read_bytes()).hexdigest()[:16]}"


def _verdict_kind(item: GoldItem) -> str | None:
    if not item.origin.startswith("verdict:"):
        return None
    return "confirmed" if item.narratives else "rejected"


def training_rows(matcher: NarrativeMatcher, gold: Sequence[GoldItem], background: Sequence[GoldItem]) -> list[_Row]:
    """Every labelled row :func:`learn` fits on: gold, verdicts, background, exemplars, counters."""
    rows: list[_Row] = []
    for g in gold:
        kind = "background" if g.kind == "background" else (_verdict_kind(g) or "gold")
        rows.append(_Row(g, kind))
    rows.extend(
        _Row(GoldItem(b.text, b.language, (), b.origin, title=b.title, kind="background"), "background")
        for b in background
    )
    for n in matcher.narratives:
        for lang, text in n.all_exemplars():
            rows.append(_Row(GoldItem(text, lang, (n.id,), f"exemplar:{n.id}"), "exemplar", n.id))
        for lang, text in n.all_counter_exemplars():
            rows.append(_Row(GoldItem(text, lang, (), f"counter:{n.id}"), "counter", n.id))
    return rows


def _features(matcher: NarrativeMatcher, rows: Sequence[_Row], batch: int = 256) -> Features:
    docs = [gold_document(r.item, i) for i, r in enumerate(rows)]
    texts = [p.text for d in docs for p in d.passages]
    vecs = np.asarray(matcher.embedder.embed_documents(texts), dtype=np.float32)
    parts: list[Features] = []
    row = 0
    for start in range(0, len(docs), batch):
        pairs = []
        for d in docs[start : start + batch]:
            pairs.append((d, vecs[row : row + len(d.passages)]))
            row += len(d.passages)
        parts.append(matcher.features(pairs))
    return Features(
        np.concatenate([p.passage_vectors for p in parts]),
        np.concatenate([p.document_vectors for p in parts]),
        np.concatenate([p.scalars for p in parts]),
        np.concatenate([p.has_passages for p in parts]),
    )


def _f1(tp: float, fp: float, fn: float) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def _cut(probs: np.ndarray, t: float) -> float:
    """A threshold between ``t`` and the next lower probability (at most 0.02 below ``t``)."""
    below = probs[probs < t]
    cut = max((t + float(below.max())) / 2, t - 0.02) if below.size else t - 0.02
    return float(max(cut, 1e-6))


def _choose_suggest(p: np.ndarray, y: np.ndarray, w: np.ndarray, bg: np.ndarray, max_bg_rate: float) -> float:
    """Best weighted F1 among cuts at positives' probabilities whose background rate is low enough."""
    best_t, best_f1 = 0.5, -1.0
    n_bg = int(bg.sum())
    for t in np.unique(p[y]):
        sel = p >= t
        if n_bg and float((sel & bg).sum()) / n_bg > max_bg_rate:
            continue
        tp = float(w[sel & y].sum())
        fp = float(w[sel & ~y].sum())
        fn = float(w[~sel & y].sum())
        f1 = _f1(tp, fp, fn)
        if f1 > best_f1 or (f1 == best_f1 and t < best_t):
            best_t, best_f1 = float(t), f1
    if best_f1 < 0:  # no cut keeps the background rate: above every background row
        return float(min(0.999, p[bg].max() + 1e-3)) if n_bg else 0.5
    return _cut(p, best_t)


def _choose_alert(
    p: np.ndarray, y: np.ndarray, bg: np.ndarray, labelled: np.ndarray, strong: np.ndarray, o: LearnOptions
) -> float:
    """Lowest cut at a positive's probability meeting the precision and background targets
    (among rows whose similarity is ``strong`` enough for the alert tier)."""
    n_bg = int(bg.sum())
    for t in np.sort(np.unique(p[y & strong])):
        sel = (p >= t) & strong
        tp = int((sel & y & labelled).sum())
        fp = int((sel & ~y & labelled).sum())
        if tp == 0 or tp / (tp + fp) < o.alert_precision:
            continue
        if n_bg and float((sel & bg).sum()) / n_bg > o.alert_background_rate:
            continue
        return _cut(p, float(t))
    return 1.0


def _fit_lr(x: np.ndarray, y: np.ndarray, w: np.ndarray, c: float) -> Any:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000, tol=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x, y, sample_weight=w)
    return model


def _oof(x: np.ndarray, y: np.ndarray, w: np.ndarray, c: float, folds: Any) -> np.ndarray:
    out = np.zeros(len(y), dtype=np.float64)
    for tr, te in folds:
        out[te] = _fit_lr(x[tr], y[tr], w[tr], c).predict_proba(x[te])[:, 1]
    return out


def _fit_narrative(
    nid: str,
    fingerprint: str,
    x_raw: np.ndarray,
    sims: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    kinds: Sequence[str],
    texts: Sequence[str],
    languages: Sequence[str],
    o: LearnOptions,
    dim: int,
) -> NarrativeModel:
    from sklearn.metrics import average_precision_score
    from sklearn.model_selection import StratifiedKFold

    bg = np.array([k == "background" for k in kinds])
    labelled = np.array([k in ("gold", "confirmed", "rejected") for k in kinds])
    # Thresholds are chosen on real labelled texts; catalogue rows only when those are too few.
    judge = labelled | bg
    if int((y & labelled).sum()) < o.min_positives:
        judge = np.ones(len(y), dtype=bool)
    mu = x_raw.mean(axis=0)
    sd = x_raw.std(axis=0) + 1e-6
    x = (x_raw - mu) / sd
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    k = max(2, min(o.folds, n_pos, n_neg))
    folds = list(StratifiedKFold(n_splits=k, shuffle=True, random_state=o.seed).split(x, y))
    best_c, best_ap, oof = o.c_grid[0], -1.0, np.zeros(len(y))
    for c in o.c_grid:
        p = _oof(x, y, w, c, folds)
        ap = float(average_precision_score(y[judge], p[judge], sample_weight=w[judge]))
        if ap > best_ap:
            best_c, best_ap, oof = c, ap, p
    pos_sims = sims[y & judge] if int((y & judge).sum()) else sims[y]
    floor = float(np.quantile(pos_sims, 0.02) - 0.05)
    oof = np.where(sims >= floor, oof, 0.0)
    pj, yj, wj, bgj = oof[judge], y[judge], w[judge], bg[judge]
    suggest = _choose_suggest(pj, yj, wj, bgj, o.suggest_background_rate)
    alert_sim = float(np.quantile(pos_sims, o.alert_similarity_quantile))
    strong = sims[judge] >= alert_sim
    alert = min(
        1.0,
        max(_choose_alert(pj, yj, bgj, labelled[judge], strong, o), suggest + o.alert_gap, o.alert_min_probability),
    )
    by_language: dict[str, float] = {}
    langs = np.array(languages)
    for lang in sorted(set(languages)):
        m = judge & (langs == lang) & ~bg
        if int((y & m).sum()) >= o.min_language_labels and int((~y & m).sum()) >= o.min_language_labels:
            t = _choose_suggest(
                oof[m | (judge & bg)],
                y[m | (judge & bg)],
                w[m | (judge & bg)],
                bg[m | (judge & bg)],
                o.suggest_background_rate,
            )
            t = min(max(t, suggest - o.max_language_shift), suggest + o.max_language_shift, alert)
            if abs(t - suggest) > 0.02:
                by_language[lang] = round(t, 4)
    sel = pj >= suggest
    lab = labelled[judge]
    tp = int((sel & yj & lab).sum())
    fp = int((sel & ~yj & lab).sum())
    fn = int((~sel & yj & lab).sum())
    metrics = {
        "positives": n_pos,
        "negatives": n_neg,
        "labelled_positives": int((y & labelled).sum()),
        "background": int(bg.sum()),
        "C": best_c,
        "oof_average_precision": round(best_ap, 4),
        "oof_suggest": {
            "precision": round(tp / (tp + fp), 4) if tp + fp else None,
            "recall": round(tp / (tp + fn), 4) if tp + fn else None,
            "f1": round(_f1(tp, fp, fn), 4),
        },
        "oof_background_fp_per_1000": {
            "suggest": round(1000 * float((bg & (oof >= suggest)).sum()) / max(1, int(bg.sum())), 3),
            "alert": round(1000 * float((bg & (oof >= alert) & (sims >= alert_sim)).sum()) / max(1, int(bg.sum())), 3),
        },
        "floor_recall_loss": round(float((y & (sims < floor)).sum()) / max(1, n_pos), 4),
    }
    final = _fit_lr(x, y, w, best_c)
    coef = final.coef_[0] / sd
    bias = float(final.intercept_[0] - (final.coef_[0] * mu / sd).sum())
    keep_pos = np.flatnonzero(y & ~bg)
    negs = np.flatnonzero(~y)
    rejected = [int(i) for i in negs if kinds[int(i)] == "rejected"]
    hardest = [int(i) for i in negs[np.argsort(-oof[negs])][: o.keep_negatives] if kinds[int(i)] != "rejected"]
    keep = np.array([*keep_pos, *rejected, *hardest], dtype=np.int64)
    examples = LabelledExamples(
        vectors=x_raw[keep, :dim].astype(np.float32),
        positive=y[keep].copy(),
        kinds=tuple(kinds[i] for i in keep),
        texts=tuple(excerpt(texts[i]) for i in keep),
    )
    return NarrativeModel(
        narrative_id=nid,
        fingerprint=fingerprint,
        w_passage=coef[:dim].astype(np.float32),
        w_document=coef[dim : 2 * dim].astype(np.float32),
        w_scalar=coef[2 * dim :].astype(np.float32),
        bias=bias,
        floor=round(floor, 4),
        suggest=round(suggest, 4),
        alert=round(alert, 4),
        alert_similarity=round(alert_sim, 4),
        by_language=by_language,
        examples=examples,
        metrics=metrics,
    )


def learn(
    matcher: NarrativeMatcher,
    gold: Sequence[GoldItem],
    background: Sequence[GoldItem] = (),
    *,
    options: LearnOptions | None = None,
    sources: Sequence[str] = (),
    progress: Callable[[str], None] | None = None,
) -> LearnedState:
    """Fit every narrative's decision (see the module docstring); ``matcher`` gives stage 1.

    Narratives with too few positives get no model (they keep their cosine thresholds) and the
    report says so. Raises :class:`ConfigError` when nothing is labelled at all.
    """
    o = options or LearnOptions()
    t0 = time.monotonic()
    rows = training_rows(matcher, gold, background)
    if not gold and not background:
        raise ConfigError([ConfigIssue("gold", "", "no labelled examples: give --gold FILE (or verdicts)")])
    feats = _features(matcher, rows)
    dim = matcher.embedder.space.dim
    n_bg = sum(r.kind == "background" for r in rows)
    models: dict[str, NarrativeModel] = {}
    skipped: dict[str, str] = {}
    for j, n in enumerate(matcher.narratives):
        idx, ys, ws = [], [], []
        for i, r in enumerate(rows):
            if not feats.has_passages[i]:
                continue
            label = r.item.labels(n.id)
            if label is None:
                continue
            idx.append(i)
            ys.append(label)
            ws.append(0.5 if r.kind == "exemplar" and r.owner != n.id else _KIND_WEIGHT.get(r.kind, 1.0))
        y = np.array(ys, dtype=bool)
        w = np.array(ws, dtype=np.float64)
        kinds = [rows[i].kind for i in idx]
        if n_bg:
            w[np.array([k == "background" for k in kinds])] = o.background_weight
        labelled_pos = sum(1 for k, lab in zip(kinds, ys, strict=True) if lab and k in ("gold", "confirmed"))
        if labelled_pos < o.min_positives or int((~y).sum()) < 2:
            skipped[n.id] = f"{labelled_pos} labelled positives (< {o.min_positives}): keeps its cosine thresholds"
            continue
        ii = np.array(idx)
        x_raw = np.concatenate([feats.passage_vectors[ii, j], feats.document_vectors[ii], feats.scalars[ii, j]], axis=1)
        models[n.id] = _fit_narrative(
            n.id,
            n.fingerprint(),
            x_raw.astype(np.float64),
            feats.scalars[ii, j, 0].astype(np.float64),
            y,
            w,
            kinds,
            [rows[i].item.text for i in idx],
            [rows[i].item.language for i in idx],
            o,
            dim,
        )
        if progress:
            m = models[n.id].metrics
            progress(f"{n.id}: {m['positives']} positives, AP {m['oof_average_precision']:.3f}")
    report = {
        "rows": len(rows),
        "gold": len(gold),
        "background": n_bg,
        "verdicts": sum(r.kind in ("confirmed", "rejected") for r in rows),
        "learned": sorted(models),
        "skipped": skipped,
        "seconds": round(time.monotonic() - t0, 1),
        "options": {k: getattr(o, k) for k in o.__dataclass_fields__},
    }
    return LearnedState(
        space_key=matcher.space_key,
        model=matcher.model,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        models=models,
        sources=tuple(sources),
        report=report,
    )
