"""Evaluate the narrative matcher on a gold set, calibrate thresholds, write them back.

Gold format (JSON Lines): ``{"text": ..., "language": "ru", "narratives": ["id", ...]}`` a line,
optional ``title``; ``judged: ["id", ...]`` limits what the line's label speaks for (an
analyst's rejection of one match says "not this narrative", nothing about the others);
``kind: "background"`` marks ordinary news whose false positives are reported per 1,000 items.
Other keys (``origin``, ``note``) are ignored. An empty ``narratives`` list is a negative.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from core.documents import Document, Passage
from core.errors import ConfigError, ConfigIssue
from core.matches import Tier
from core.passages import split_passages
from core.settings import Config
from index.embed import make_embedder
from monitors.catalogue import Catalogue, Thresholds, catalogue_of
from monitors.narratives import NarrativeMatcher, NarrativeScore

__all__ = [
    "PRF",
    "EvalReport",
    "GoldItem",
    "calibrate",
    "calibrate_command",
    "calibrate_details",
    "calibrated_catalogue",
    "eval_command",
    "evaluate",
    "gold_document",
    "gold_item",
    "load_gold",
    "matcher_for",
    "score_gold",
    "write_thresholds",
]

log = logging.getLogger(__name__)

_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class GoldItem:
    """One labelled text."""

    text: str
    language: str
    narratives: tuple[str, ...]
    origin: str = ""
    title: str = ""
    judged: tuple[str, ...] | None = None
    """The narratives this label speaks for (None: all of them)."""
    kind: str = ""
    """Free text (``assertion``, ``debunk``, ...); ``background`` counts towards the FP rate."""

    def labels(self, narrative_id: str) -> bool | None:
        """True (asserts it), False (does not) or None (the label says nothing about it)."""
        if narrative_id in self.narratives:
            return True
        if self.judged is not None and narrative_id not in self.judged:
            return None
        return False


def gold_item(obj: Any, *, background: bool = False) -> GoldItem:
    """One gold line (a parsed JSON object) as a :class:`GoldItem`; ValueError/KeyError/TypeError if malformed."""
    if not isinstance(obj, dict):
        raise TypeError("each line must be a JSON object")
    text, lang = obj["text"], obj["language"]
    nars = obj.get("narratives", []) if background else obj["narratives"]
    judged = obj.get("judged")
    if not (isinstance(text, str) and isinstance(lang, str) and isinstance(nars, list)):
        raise TypeError("text and language must be strings, narratives a list")
    if judged is not None and not isinstance(judged, list):
        raise TypeError("judged must be a list of narrative ids")
    if background and nars:
        raise ValueError("a background item must have no narratives")
    return GoldItem(
        text,
        lang,
        tuple(str(n) for n in nars),
        str(obj.get("origin", "")),
        title=str(obj.get("title") or ""),
        judged=None if judged is None else tuple(str(n) for n in judged),
        kind="background" if background else str(obj.get("kind") or ""),
    )


def load_gold(path: Path | str, *, background: bool = False) -> list[GoldItem]:
    """Read a gold JSONL file; a malformed line raises :class:`ConfigError` naming the line.

    With ``background``, every item is background news (``narratives`` may be omitted and
    must be empty). A missing, unreadable or non-UTF-8 file is a :class:`ConfigError` too.
    """
    path = Path(path)
    items: list[GoldItem] = []
    issues: list[ConfigIssue] = []
    try:
        with path.open(encoding="utf-8") as fh:
            lines = list(fh)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigIssue(str(path), "", f"cannot read gold file: {exc}")]) from exc
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            items.append(gold_item(json.loads(line), background=background))
        except (ValueError, KeyError, TypeError) as exc:
            issues.append(ConfigIssue(str(path), f"line {no}", f"bad gold item: {exc}"))
    if issues:
        raise ConfigError(issues)
    return items


def gold_document(item: GoldItem, i: int) -> Document:
    """A :class:`Document` for a gold item (first line as title)."""
    passages = split_passages(item.text) or (Passage(index=0, text=item.text.strip() or item.title or "-"),)
    return Document(
        id=f"gold:{i}",
        source_id="gold",
        kind="gold",
        url=f"gold:{i}",
        title=item.title,
        text=item.text,
        language=item.language,
        published=_EPOCH,
        fetched=_EPOCH,
        passages=passages,
        content_hash=str(i),
    )


def score_gold(matcher: NarrativeMatcher, gold: Sequence[GoldItem]) -> list[list[NarrativeScore]]:
    """Embed each item's passages and score every narrative (one list per item, catalogue order)."""
    docs = [gold_document(g, i) for i, g in enumerate(gold)]
    texts = [p.text for d in docs for p in d.passages]
    vecs = matcher.embedder.embed_documents(texts)
    pairs = []
    row = 0
    for d in docs:
        pairs.append((d, vecs[row : row + len(d.passages)]))
        row += len(d.passages)
    return matcher.score_many(pairs)


@dataclass
class PRF:
    """Counts and precision/recall/F1 (precision 1 with no predictions, recall 1 with no positives)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        """tp / (tp + fp)."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        """tp / (tp + fn)."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def add(self, predicted: bool, expected: bool) -> None:
        """Count one (item, narrative) decision."""
        if predicted and expected:
            self.tp += 1
        elif predicted:
            self.fp += 1
        elif expected:
            self.fn += 1

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "support": self.tp + self.fn,
        }


@dataclass
class EvalReport:
    """Micro-averaged results over (item, narrative) decisions, samples-F1, background FP rate."""

    tier: Tier
    overall: PRF = field(default_factory=PRF)
    per_narrative: dict[str, PRF] = field(default_factory=dict)
    per_language: dict[str, PRF] = field(default_factory=dict)
    items: list[dict[str, Any]] = field(default_factory=list)
    samples_f1_sum: float = 0.0
    samples: int = 0
    background: int = 0
    background_fp: dict[str, int] = field(default_factory=lambda: {"suggest": 0, "alert": 0})
    background_fp_by_narrative: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def samples_f1(self) -> float:
        """Mean per-item F1 of predicted vs gold label sets (an empty set counts as the label "none")."""
        return self.samples_f1_sum / self.samples if self.samples else 0.0

    def as_dict(self) -> dict[str, Any]:
        """``{"overall", "per_narrative", "per_language", "background", "items"}``."""
        per_k = 1000.0 / self.background if self.background else 0.0
        return {
            "overall": {"tier": self.tier, **self.overall.as_dict(), "samples_f1": round(self.samples_f1, 4)},
            "per_narrative": {k: v.as_dict() for k, v in sorted(self.per_narrative.items())},
            "per_language": {k: v.as_dict() for k, v in sorted(self.per_language.items())},
            "background": {
                "items": self.background,
                "false_positives": dict(self.background_fp),
                "fp_per_1000": {k: round(v * per_k, 3) for k, v in self.background_fp.items()},
                "by_narrative": {k: v for k, v in sorted(self.background_fp_by_narrative.items()) if any(v.values())},
            },
            "items": self.items,
        }


def _set_f1(pred: set[str], gold: set[str]) -> float:
    pred, gold = pred or {"<none>"}, gold or {"<none>"}
    tp = len(pred & gold)
    return 2 * tp / (len(pred) + len(gold))


def evaluate(
    matcher: NarrativeMatcher,
    gold: Sequence[GoldItem],
    tier: Tier = "suggest",
    background: Sequence[GoldItem] = (),
) -> EvalReport:
    """Precision/recall/F1 of the matcher's decisions at ``tier`` on ``gold``, and false positives
    per 1,000 ``background`` items (plus gold items of kind ``background``) at both tiers.

    Gold labels naming narratives that are not in the matcher's catalogue are ignored; so are
    (item, narrative) pairs the item's ``judged`` list excludes. Background items count towards
    the false-positive rate only, not towards precision/recall.
    """
    report = EvalReport(tier=tier)
    known = {n.id for n in matcher.narratives}
    for n in matcher.narratives:
        report.per_narrative[n.id] = PRF()
        report.background_fp_by_narrative[n.id] = {"suggest": 0, "alert": 0}
    everything = [*gold, *background]
    for i, (item, scores) in enumerate(zip(everything, score_gold(matcher, everything), strict=True)):
        tiers = {n.id: matcher.tier(n, s) for n, s in zip(matcher.narratives, scores, strict=True)}
        predicted = [nid for nid, t in tiers.items() if t == "alert" or (t == "suggest" and tier == "suggest")]
        if i >= len(gold) or item.kind == "background":
            report.background += 1
            hits = {
                "suggest": [nid for nid, t in tiers.items() if t is not None],
                "alert": [nid for nid, t in tiers.items() if t == "alert"],
            }
            for level, ids in hits.items():
                report.background_fp[level] += bool(ids)
                for nid in ids:
                    report.background_fp_by_narrative[nid][level] += 1
            if predicted:
                report.items.append({"index": i, "background": True, "predicted": predicted, "text": item.text[:200]})
            continue
        lang = report.per_language.setdefault(item.language, PRF())
        item_scores: dict[str, float] = {}
        judged_all = item.judged is None
        for n, s in zip(matcher.narratives, scores, strict=True):
            exp = item.labels(n.id)
            if s.eligible:
                item_scores[n.id] = round(s.score, 4)
            if exp is None:
                continue
            hit = n.id in predicted
            report.per_narrative[n.id].add(hit, exp)
            lang.add(hit, exp)
            report.overall.add(hit, exp)
        if judged_all:
            report.samples += 1
            report.samples_f1_sum += _set_f1(set(predicted), set(item.narratives) & known)
        report.items.append({"index": i, "predicted": predicted, "scores": item_scores})
    return report


def _choose(scores: np.ndarray, labels: np.ndarray, target: float) -> tuple[float | None, dict[str, Any]]:
    """Lowest threshold (max recall) whose precision reaches ``target``; else the best-F1 one."""
    pos = np.sort(scores[labels & np.isfinite(scores)])[::-1]
    if pos.size == 0:
        return None, {"reason": "no reachable positives"}
    best: tuple[float, float, float, float] | None = None  # (t, p, r, f1)
    fallback: tuple[float, float, float, float] | None = None
    n_pos = int(labels.sum())
    for t in pos:
        sel = scores >= t
        tp = int((sel & labels).sum())
        p = tp / int(sel.sum())
        r = tp / n_pos
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        if p >= target and (best is None or r >= best[2]):
            best = (float(t), p, r, f1)
        if fallback is None or f1 > fallback[3]:
            fallback = (float(t), p, r, f1)
    chosen = best or fallback
    assert chosen is not None
    t = chosen[0]
    below = scores[np.isfinite(scores) & (scores < t)]
    # Put the cut between the lowest accepted score and the next one below, at most 0.02 lower.
    cut = max((t + float(below.max())) / 2, t - 0.02) if below.size else t - 0.02
    info = {"precision": round(chosen[1], 4), "recall": round(chosen[2], 4), "met_target": best is not None}
    return math.floor(cut * 1000) / 1000, info


MIN_POSITIVES = 3
"""Fewer gold positives than this: a narrative is not calibrated, only kept above its negatives."""
ALERT_GAP = 0.03
"""``alert`` is at least ``suggest`` + this, so the tiers stay distinct."""


def calibrate_details(
    matcher: NarrativeMatcher, gold: Sequence[GoldItem], target_precision: float = 0.8
) -> dict[str, dict[str, Any]]:
    """Per narrative: chosen ``suggest``/``alert`` and how they do on ``gold``.

    ``suggest`` is the lowest cut reaching ``target_precision``; ``alert`` the lowest reaching
    the stricter ``1 - (1 - target_precision) / 2`` and at least ``suggest + ALERT_GAP``. A
    narrative with fewer than :data:`MIN_POSITIVES` gold positives keeps its thresholds, raised
    just above its best-scoring gold negative if needed (one positive would be over-fitted).
    """
    all_scores = score_gold(matcher, gold)
    alert_target = 1 - (1 - target_precision) / 2
    out: dict[str, dict[str, Any]] = {}
    for j, n in enumerate(matcher.narratives):
        sc = np.array([s[j].score if s[j].eligible else -np.inf for s in all_scores], dtype=np.float64)
        lab = np.array([n.id in g.narratives for g in gold], dtype=bool)
        cur = matcher.thresholds(n)
        if int(lab.sum()) < MIN_POSITIVES:
            neg = sc[np.isfinite(sc) & ~lab]
            floor = math.ceil((float(neg.max()) + 0.01) * 1000) / 1000 if neg.size else cur.suggest
            sug = max(cur.suggest, floor)
            out[n.id] = {
                "suggest": round(sug, 3),
                "alert": round(max(cur.alert, sug + ALERT_GAP), 3),
                "note": f"only {int(lab.sum())} gold positives: kept above the gold negatives, not calibrated",
            }
            continue
        sug_t, sug_info = _choose(sc, lab, target_precision)
        al_t, al_info = _choose(sc, lab, alert_target)
        sug = cur.suggest if sug_t is None else sug_t
        al = cur.alert if al_t is None else al_t
        al = max(al, sug + ALERT_GAP)
        out[n.id] = {"suggest": round(sug, 3), "alert": round(al, 3), "suggest_at": sug_info, "alert_at": al_info}
    return out


def calibrate(
    matcher: NarrativeMatcher, gold: Sequence[GoldItem], target_precision: float = 0.8
) -> dict[str, dict[str, float]]:
    """``{narrative_id: {"suggest": x, "alert": y}}`` (see :func:`calibrate_details`)."""
    return {
        k: {"suggest": v["suggest"], "alert": v["alert"]}
        for k, v in calibrate_details(matcher, gold, target_precision).items()
    }


_TOP_KEY = re.compile(r"^[A-Za-z_][\w-]*\s*:")


def _render_thresholds(suggest: float, alert: float, calibrated_for: str) -> str:
    return f"thresholds: {{suggest: {suggest:.3f}, alert: {alert:.3f}, calibrated_for: {json.dumps(calibrated_for)}}}\n"


def _rewrite(text: str, new_line: str) -> str:
    lines = text.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if re.match(r"^thresholds\s*:", ln)), None)
    if start is None:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        return "".join([*lines, new_line])
    end = start + 1
    # A block value continues on indented, blank or comment lines until the next top-level key.
    while end < len(lines) and not _TOP_KEY.match(lines[end]) and not lines[end].startswith("---"):
        end += 1
    while end - 1 > start and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
        end -= 1
    return "".join([*lines[:start], new_line, *lines[end:]])


def _same_except_thresholds(old: str, new: str, suggest: float) -> bool:
    """True when ``new`` parses to ``old`` with only ``thresholds`` changed (to ``suggest``)."""
    try:
        before, after = yaml.safe_load(old), yaml.safe_load(new)
    except yaml.YAMLError:
        return False
    if not isinstance(before, dict) or not isinstance(after, dict):
        return False
    before.pop("thresholds", None)
    got = after.pop("thresholds", None)
    return before == after and isinstance(got, dict) and got.get("suggest") == round(suggest, 3)


def _round_trip(old: str, th: dict[str, float], calibrated_for: str) -> str:
    """The file re-dumped by PyYAML with new thresholds (for flow style, which a line edit cannot change)."""
    data = yaml.safe_load(old)
    if not isinstance(data, dict):
        return old
    data["thresholds"] = {
        "suggest": round(th["suggest"], 3),
        "alert": round(th["alert"], 3),
        "calibrated_for": calibrated_for,
    }
    return str(yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=1000, default_flow_style=False))


def write_thresholds(catalogue: Catalogue, thresholds: dict[str, dict[str, float]], calibrated_for: str) -> list[Path]:
    """Rewrite only the top-level ``thresholds:`` entry of each narrative's YAML file.

    Everything else (comments, order, exemplars) is kept byte for byte. A file written in flow
    style (``{id: ..., exemplars: {...}}``, or JSON) cannot be edited line by line: it is loaded
    and dumped again in block style with the same content and key order (comments in it are
    lost; a warning says so). Each rewritten file is parsed again and must still describe the
    same narrative, else nothing is written for it and :class:`ConfigError` names the file.
    """
    written: list[Path] = []
    for nid, th in thresholds.items():
        path = catalogue.files.get(nid)
        if path is None:
            log.warning("write_thresholds: no file for narrative %r", nid)
            continue
        try:
            old = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError([ConfigIssue(str(path), "", f"cannot read narrative file: {exc}")]) from exc
        new = _rewrite(old, _render_thresholds(th["suggest"], th["alert"], calibrated_for))
        if not _same_except_thresholds(old, new, th["suggest"]):
            new = _round_trip(old, th, calibrated_for)
            if not _same_except_thresholds(old, new, th["suggest"]):
                raise ConfigError(
                    [ConfigIssue(str(path), "thresholds", "cannot rewrite the thresholds safely; file left unchanged")]
                )
            if any(line.lstrip().startswith("#") for line in old.splitlines()):
                log.warning("%s: rewritten in block style to store thresholds; its comments were dropped", path)
            else:
                log.info("%s: rewritten in block style to store thresholds", path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(new, encoding="utf-8")
        tmp.replace(path)
        written.append(path)
    return written


def calibrated_catalogue(
    matcher: NarrativeMatcher, catalogue: Catalogue, gold: Sequence[GoldItem], target_precision: float = 0.8
) -> Catalogue:
    """``catalogue`` with the cosine thresholds :func:`calibrate` chooses on ``gold`` (no files written)."""
    th = calibrate(matcher, gold, target_precision)
    return Catalogue(
        narratives=tuple(
            n.model_copy(update={"thresholds": Thresholds(suggest=th[n.id]["suggest"], alert=th[n.id]["alert"])})
            if n.id in th
            else n
            for n in catalogue.narratives
        ),
        files=dict(catalogue.files),
    )


def matcher_for(config: Config, *, use_learned: bool = True) -> NarrativeMatcher:
    """The matcher the service would run for ``config`` (``use_learned=False``: thresholds only)."""
    return NarrativeMatcher(catalogue_of(config), make_embedder(config.service.embedding), use_learned=use_learned)


def eval_command(
    config: Config,
    gold_path: Path | str,
    tier: Tier = "suggest",
    *,
    background: Sequence[Path | str] = (),
    baseline: bool = False,
) -> dict[str, Any]:
    """``narratives eval``: the :class:`EvalReport` as a dict (plus ``model``, ``decision``, ``warnings``).

    ``baseline`` evaluates the thresholds-only matcher (ignoring any learned state).
    """
    gold = load_gold(gold_path)
    bg = [g for path in background for g in load_gold(path, background=True)]
    matcher = matcher_for(config, use_learned=not baseline)
    report = evaluate(matcher, gold, tier, bg).as_dict()
    report["overall"]["model"] = matcher.space_key
    report["overall"]["learned"] = list(matcher.learned_ids)
    report["overall"]["decision"] = "learned" if matcher.learned_ids else "threshold"
    report["overall"]["warnings"] = [
        w for w in matcher.warnings if "calibrated for" in w or "learned model not used" in w
    ]
    return report


def calibrate_command(
    config: Config, gold_path: Path | str, target_precision: float = 0.8, write: bool = False
) -> dict[str, Any]:
    """``narratives calibrate``: chosen thresholds per narrative; with ``write``, saved to the YAML files."""
    matcher = matcher_for(config, use_learned=False)
    details = calibrate_details(matcher, load_gold(gold_path), target_precision)
    result: dict[str, Any] = {
        "model": matcher.model,
        "space": matcher.space_key,
        "target_precision": target_precision,
        "thresholds": details,
        "written": [],
    }
    if write:
        catalogue = catalogue_of(config)
        ths = {k: {"suggest": v["suggest"], "alert": v["alert"]} for k, v in details.items()}
        result["written"] = [str(p) for p in write_thresholds(catalogue, ths, matcher.model)]
    return result
