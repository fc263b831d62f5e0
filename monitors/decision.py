"""The learned decision stage: does a document *assert* a narrative, or only share its topic?

Stage 1 (:mod:`monitors.narratives`) is embedding retrieval: the best passage-to-exemplar
cosine. Stage 2, here, is one logistic model per narrative, fitted by ``narratives learn``
(:mod:`monitors.learn`) on labelled examples: assertions against neutral reports, debunks,
quotes attributed and rejected, other narratives of the same topic, background news and
analysts' rejected matches. Its inputs, per (document, narrative):

* the vector of the document's passage closest to the narrative's exemplars (what is said),
* the document's mean passage vector (the register and context of the whole text),
* five scalars: best exemplar cosine, mean of the two best passages' cosines, best
  counter-exemplar cosine, their margin, and whether a keyword occurs.

The logit is linear in these, so a whole batch is scored with two matrix products (passages x
weights, documents x weights) and a gather; nothing is re-embedded. Probabilities are
compared with per-narrative (and, where enough labels exist, per-language) thresholds chosen
on out-of-fold predictions. Each narrative keeps its labelled examples' vectors, so a match
can say which confirmed instance it resembles, and a new document that is a near copy of a
rejected match is vetoed (:data:`VETO_SIMILARITY`).

The state is bound to one embedding space and, per narrative, to a fingerprint of its
exemplars, counter-exemplars and keywords: a model fitted for other vectors or another
wording of the narrative is refused and the narrative falls back to cosine thresholds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigError, ConfigIssue
from core.files import private_file
from core.matches import Tier

__all__ = [
    "LEARNED_DIR",
    "SCALAR_FEATURES",
    "VETO_SIMILARITY",
    "LabelledExamples",
    "LearnedState",
    "NarrativeModel",
    "excerpt",
    "load_learned",
    "narrative_fingerprint",
    "save_learned",
    "sigmoid",
]

log = logging.getLogger(__name__)

LEARNED_DIR = "learned"
"""``<config>/learned/narratives.json`` + ``narratives.npz``: the fitted state, kept with the config."""

SCALAR_FEATURES: tuple[str, ...] = ("similarity", "support", "counter", "margin", "keyword")
"""The scalar inputs of the model, in order (see the module docstring)."""

VETO_SIMILARITY = 0.9
"""A candidate whose evidence passage is at least this close to an analyst-rejected match of
the narrative (and closer to it than to any positive example) is not raised."""

_FORMAT = 1


def excerpt(text: str, n: int = 160) -> str:
    """``text`` on one line, cut to ``n`` characters (reasons and kept examples shown to analysts)."""
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically safe logistic function."""
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(x, -40.0, 40.0))), dtype=np.float64)


def narrative_fingerprint(exemplars: Sequence[str], counters: Sequence[str], keywords: Sequence[str]) -> str:
    """What a fitted model depends on besides the embedding space: 16 hex digits of SHA-256."""
    blob = json.dumps([sorted(exemplars), sorted(counters), sorted(keywords)], ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class LabelledExamples:
    """Evidence vectors of one narrative's labelled examples, for explanations and vetoes."""

    vectors: np.ndarray
    """(n, dim) float32, L2-normalised: each example's evidence passage."""
    positive: np.ndarray
    """(n,) bool."""
    kinds: tuple[str, ...]
    """``gold``, ``exemplar``, ``counter``, ``background``, ``confirmed``, ``rejected`` per row."""
    texts: tuple[str, ...]
    """A short excerpt per row (for reasons shown to analysts)."""

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class NarrativeModel:
    """One narrative's fitted decision: weights, stage-1 floor, thresholds, evidence."""

    narrative_id: str
    fingerprint: str
    w_passage: np.ndarray
    w_document: np.ndarray
    w_scalar: np.ndarray
    bias: float
    floor: float
    """Stage-1 recall floor: documents whose best exemplar cosine is below it are not scored."""
    suggest: float
    alert: float
    by_language: Mapping[str, float] = field(default_factory=dict)
    """Language -> ``suggest`` probability threshold, where enough labels in it existed."""
    alert_similarity: float = -1.0
    """``alert`` also needs stage-1 similarity at least this (a quartile of the positives'): two
    independent signals must agree before anyone is paged."""
    examples: LabelledExamples | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)

    def suggest_for(self, language: str) -> float:
        """The suggest threshold for documents in ``language``."""
        return float(self.by_language.get(language, self.suggest))

    def tier(self, probability: float, language: str, similarity: float) -> Tier | None:
        """``alert``, ``suggest`` or None for this probability (and stage-1 similarity)."""
        if probability >= self.alert and similarity >= self.alert_similarity:
            return "alert"
        if probability >= self.suggest_for(language):
            return "suggest"
        return None


@dataclass(frozen=True)
class LearnedState:
    """Everything ``narratives learn`` fitted, for one embedding space."""

    space_key: str
    model: str
    created: str
    models: Mapping[str, NarrativeModel]
    sources: tuple[str, ...] = ()
    """What it was fitted on (gold files with their SHA-256, verdict counts)."""
    report: Mapping[str, Any] = field(default_factory=dict)

    def usable(self, space_key: str, narrative_id: str, fingerprint: str) -> tuple[NarrativeModel | None, str]:
        """The model for ``narrative_id`` if it applies, else None and why not."""
        if space_key != self.space_key:
            return None, f"learned for embedding space {self.space_key!r}, running {space_key!r}"
        m = self.models.get(narrative_id)
        if m is None:
            return None, "no learned model (not enough labelled positives when it was learned)"
        if m.fingerprint != fingerprint:
            return None, "exemplars, counter-exemplars or keywords changed since it was learned"
        return m, ""


def _paths(root: Path) -> tuple[Path, Path]:
    folder = root / LEARNED_DIR
    return folder / "narratives.json", folder / "narratives.npz"


def save_learned(root: Path | str, state: LearnedState) -> tuple[Path, Path]:
    """Write the state next to the config (atomic per file: temporary file, then rename)."""
    meta_path, arr_path = _paths(Path(root))
    arrays: dict[str, np.ndarray] = {}
    models: dict[str, Any] = {}
    for i, (nid, m) in enumerate(sorted(state.models.items())):
        key = f"n{i}"
        arrays[f"{key}_wp"] = m.w_passage.astype(np.float32)
        arrays[f"{key}_wd"] = m.w_document.astype(np.float32)
        arrays[f"{key}_ws"] = m.w_scalar.astype(np.float32)
        ex = m.examples
        if ex is not None:
            arrays[f"{key}_ev"] = ex.vectors.astype(np.float16)
            arrays[f"{key}_ep"] = ex.positive.astype(np.bool_)
        models[nid] = {
            "key": key,
            "fingerprint": m.fingerprint,
            "bias": m.bias,
            "floor": m.floor,
            "suggest": m.suggest,
            "alert": m.alert,
            "alert_similarity": m.alert_similarity,
            "by_language": dict(m.by_language),
            "metrics": dict(m.metrics),
            "example_kinds": list(ex.kinds) if ex is not None else [],
            "example_texts": list(ex.texts) if ex is not None else [],
        }
    meta = {
        "format": _FORMAT,
        "space_key": state.space_key,
        "model": state.model,
        "created": state.created,
        "sources": list(state.sources),
        "report": dict(state.report),
        "narratives": models,
    }
    tmp_arr = private_file(arr_path.with_name(arr_path.name + ".tmp.npz"), sqlite=False)  # 0600 (core.files)
    with tmp_arr.open("wb") as fh:
        np.savez_compressed(fh, allow_pickle=False, **arrays)
    tmp_meta = private_file(meta_path.with_name(meta_path.name + ".tmp"), sqlite=False)
    tmp_meta.write_text(json.dumps(meta, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    for tmp, final in ((tmp_arr, arr_path), (tmp_meta, meta_path)):
        os.replace(tmp, final)
    return meta_path, arr_path


def load_learned(root: Path | str) -> LearnedState | None:
    """The state saved under ``<root>/learned/``; None if there is none.

    A damaged or foreign file raises :class:`ConfigError` naming it (never pickle: arrays are
    loaded with ``allow_pickle=False``).
    """
    meta_path, arr_path = _paths(Path(root))
    if not meta_path.exists():
        return None
    rel = f"{LEARNED_DIR}/{meta_path.name}"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("format") != _FORMAT:
            raise ValueError(f"unsupported format {meta.get('format')!r} (expected {_FORMAT})")
        with np.load(arr_path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        models: dict[str, NarrativeModel] = {}
        for nid, m in meta["narratives"].items():
            key = m["key"]
            examples = None
            if f"{key}_ev" in arrays:
                examples = LabelledExamples(
                    vectors=arrays[f"{key}_ev"].astype(np.float32),
                    positive=arrays[f"{key}_ep"].astype(bool),
                    kinds=tuple(m["example_kinds"]),
                    texts=tuple(m["example_texts"]),
                )
            models[nid] = NarrativeModel(
                narrative_id=nid,
                fingerprint=str(m["fingerprint"]),
                w_passage=arrays[f"{key}_wp"].astype(np.float32),
                w_document=arrays[f"{key}_wd"].astype(np.float32),
                w_scalar=arrays[f"{key}_ws"].astype(np.float32),
                bias=float(m["bias"]),
                floor=float(m["floor"]),
                suggest=float(m["suggest"]),
                alert=float(m["alert"]),
                alert_similarity=float(m.get("alert_similarity", -1.0)),
                by_language={str(k): float(v) for k, v in m.get("by_language", {}).items()},
                examples=examples,
                metrics=m.get("metrics", {}),
            )
        return LearnedState(
            space_key=str(meta["space_key"]),
            model=str(meta["model"]),
            created=str(meta["created"]),
            models=models,
            sources=tuple(meta.get("sources", ())),
            report=meta.get("report", {}),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError([ConfigIssue(rel, "", f"unreadable learned state: {exc}")]) from exc
