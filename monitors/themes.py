"""Emerging themes: clusters of recent passages that match no catalogued narrative.

:func:`discover_themes` takes the passage vectors of documents published in a window, drops
documents with narrative matches, collapses near-duplicate copies (one repost storm is one
text, not a theme), clusters the rest with average-linkage agglomerative clustering on cosine
distance, labels each cluster with c-TF-IDF top terms and its passages closest to the centroid,
and ranks clusters by distinct outlets times growth (second half of the window vs first half).
:func:`promote_theme` writes a theme as a draft narrative YAML for an analyst to finish.

Parameters and their measurements: docs/trace.md.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from core.documents import Document, SearchFilters, utcnow
from index.base import DocumentIndex
from monitors.copies import fingerprint_jaccard
from monitors.store import MatchStore

__all__ = [
    "DEFAULT_DISTANCE",
    "STOP_WORDS",
    "Theme",
    "ThemePassage",
    "discover_themes",
    "promote_theme",
    "top_terms",
]

log = logging.getLogger(__name__)

DEFAULT_DISTANCE = 0.45
"""Cosine distance at which average-linkage clusters stop merging (similarity 0.55), measured on
use-multilingual-v3 over 917 real Telegram posts: 0.40 gives tight single-story clusters, 0.50
starts merging neighbouring stories; HDBSCAN put 669 of them into one cluster."""

COPY_THRESHOLD = 0.8
MAX_PASSAGES = 6000
"""Agglomerative clustering is quadratic in memory; beyond this the newest passages are kept."""

_STOP_TEXT = """
    и в во не что он на я с со как а то все она так его но да ты к у же вы за бы по только ее мне было
    вот от меня еще нет о из ему теперь когда даже ну вдруг ли если уже или ни быть был него до вас
    нибудь опять уж вам ведь там потом себя ничего ей может они тут где есть надо ней для мы тебя их
    чем была сам чтоб без будто чего раз тоже себе под будет ж тогда кто этот того потому этого какой
    совсем ним здесь этом один почти мой тем чтобы нее сейчас были куда зачем всех никогда можно при
    наконец два об другой хоть после над больше тот через эти нас про всего них какая много разве три
    эту моя впрочем хорошо свою этой перед иногда лучше чуть том нельзя такой им более всегда конечно
    всю между это этих также который которые которая которое которых году года лет также время
    сообщает сообщили заявил заявила заявили передает пишет говорит может могут будут стало стал
    подписаться подписывайтесь прислать новость новости канал t me https http www com ru html
    the a an and or of to in on for with at by from is are was were be been it its this that as
    not but have has had will would can could said says also more than after over about into
"""
STOP_WORDS = frozenset(_STOP_TEXT.split())
"""A small Russian + English stop list (plus channel boilerplate: подписаться, канал, https ...)."""

_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)
_URL = re.compile(r"https?://\S+|t\.me/\S+|\[|\]|\(|\)")
_STEM = 6
"""Words are compared by their first 6 letters: a crude, language-agnostic stand-in for stemming
inflected Russian (``узбекистан``/``узбекистана`` agree; short stems like ``вода``/``воду`` do not)."""

Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True)
class ThemePassage:
    """A representative passage of a theme."""

    document_id: str
    passage_index: int
    text: str
    language: str
    outlet: str
    url: str
    published: datetime
    similarity: float
    """Cosine to the theme's centroid."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "document_id": self.document_id,
            "passage_index": self.passage_index,
            "text": self.text,
            "language": self.language,
            "outlet": self.outlet,
            "url": self.url,
            "published": self.published.isoformat(),
            "similarity": round(self.similarity, 4),
        }


@dataclass(frozen=True)
class Theme:
    """A cluster of unmatched recent documents (copies collapsed) with its label and growth."""

    id: str
    label: str
    top_terms: tuple[str, ...]
    documents: tuple[str, ...]
    """Every document of the theme, copies included, oldest first."""
    distinct_texts: int
    """Documents after collapsing copies (what was clustered)."""
    outlets: tuple[str, ...]
    languages: dict[str, int]
    first_seen: datetime
    last_seen: datetime
    early: int
    """Documents in the first half of the window."""
    late: int
    """Documents in the second half of the window."""
    growth: float
    """``(late + 1) / (early + 1)``."""
    score: float
    """Ranking score: distinct outlets x growth."""
    representatives: tuple[ThemePassage, ...]

    @property
    def size(self) -> int:
        """Number of documents, copies included."""
        return len(self.documents)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "id": self.id,
            "label": self.label,
            "top_terms": list(self.top_terms),
            "size": self.size,
            "distinct_texts": self.distinct_texts,
            "documents": list(self.documents),
            "outlets": list(self.outlets),
            "languages": dict(self.languages),
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "early": self.early,
            "late": self.late,
            "growth": round(self.growth, 3),
            "score": round(self.score, 3),
            "representatives": [p.as_dict() for p in self.representatives],
        }


# -- terms ---------------------------------------------------------------------------------------


def _tokens(text: str) -> list[str]:
    words = (w.lower().replace("ё", "е") for w in _WORD.findall(_URL.sub(" ", text)))
    return [w for w in words if w not in STOP_WORDS]


def top_terms(clusters: Sequence[Sequence[str]], rest: Sequence[str] = (), n: int = 8) -> list[list[str]]:
    """c-TF-IDF top terms of each cluster of texts against the other clusters and ``rest``.

    ``tf(t, c) = count(t, c) / words(c)``; ``idf(t) = log(1 + A / f(t))`` with ``A`` the mean
    words per class and ``f(t)`` the count of ``t`` over every class (BERTopic's c-TF-IDF). Words
    are grouped by their first letters; each is shown in its most frequent form.
    """
    classes = [*clusters, rest]
    counts: list[Counter[str]] = []
    forms: dict[str, Counter[str]] = {}
    for texts in classes:
        c: Counter[str] = Counter()
        for text in texts:
            for w in _tokens(text):
                stem = w[:_STEM]
                c[stem] += 1
                forms.setdefault(stem, Counter())[w] += 1
        counts.append(c)
    total: Counter[str] = Counter()
    for c in counts:
        total.update(c)
    avg = max(1.0, sum(sum(c.values()) for c in counts) / max(1, len(counts)))
    out: list[list[str]] = []
    for c in counts[: len(clusters)]:
        words = max(1, sum(c.values()))
        # A term must occur in at least two texts' worth of the cluster to label it.
        scored = [(cnt / words * math.log(1 + avg / total[t]), t) for t, cnt in c.items() if cnt >= 2]
        scored.sort(key=lambda x: (-x[0], x[1]))
        out.append([forms[t].most_common(1)[0][0] for _, t in scored[:n]])
    return out


# -- copies --------------------------------------------------------------------------------------


def _copy_roots(docs: Sequence[Document], threshold: float) -> list[int]:
    """For each document (oldest first) the index of the earliest document it is a copy of (itself if none).

    Candidate pairs come from MinHash banding (8 bands of equal fingerprint slices), then the
    estimated Jaccard is checked, so this stays near-linear on large windows.
    """
    parent = list(range(len(docs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    buckets: dict[tuple[int, tuple[int, ...]], list[int]] = {}
    for i, d in enumerate(docs):
        fp = d.fingerprint
        if not fp:
            continue
        width = max(1, len(fp) // 8)
        for b in range(0, len(fp), width):
            buckets.setdefault((b, tuple(fp[b : b + width])), []).append(i)
    for members in buckets.values():
        if len(members) < 2:
            continue
        for k, j in enumerate(members):
            for i in members[:k]:
                if find(i) != find(j) and fingerprint_jaccard(docs[i].fingerprint, docs[j].fingerprint) >= threshold:
                    ri, rj = find(i), find(j)
                    parent[max(ri, rj)] = min(ri, rj)
    return [find(i) for i in range(len(docs))]


# -- discovery -----------------------------------------------------------------------------------


def _cluster(vectors: Vectors, distance: float) -> npt.NDArray[np.int64]:
    if len(vectors) < 2:
        return np.zeros(len(vectors), np.int64)
    from sklearn.cluster import AgglomerativeClustering

    model = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average", distance_threshold=distance)
    labels: npt.NDArray[np.int64] = model.fit_predict(vectors).astype(np.int64)
    return labels


def _theme_id(doc_ids: Iterable[str]) -> str:
    return "theme-" + hashlib.sha256("\n".join(sorted(doc_ids)).encode("utf-8")).hexdigest()[:10]


def discover_themes(
    index: DocumentIndex,
    *,
    since: datetime,
    until: datetime | None = None,
    matches: MatchStore | None,
    min_size: int = 5,
    max_themes: int = 20,
    distance: float = DEFAULT_DISTANCE,
    min_outlets: int = 2,
    copy_threshold: float = COPY_THRESHOLD,
    filters: SearchFilters | None = None,
) -> list[Theme]:
    """Themes among documents published in ``[since, until)`` that match no narrative; best first.

    A theme needs ``min_size`` distinct texts (copies collapsed) and ``min_outlets`` outlets.
    ``filters`` may restrict sources, languages or kinds (its time bounds are replaced).
    """
    end = until or utcnow()
    base = filters or SearchFilters()
    window = SearchFilters(sources=base.sources, languages=base.languages, kinds=base.kinds, since=since, until=until)
    matched: set[str] = set()
    if matches is not None:
        matched = {m.document_id for m in matches.matches(since=since, until=until)}
    docs = [d for d in index.iter_documents(window) if d.id not in matched and d.passages]
    if not docs:
        return []
    roots = _copy_roots(docs, copy_threshold)
    copies_of: dict[int, list[int]] = {}
    for i, r in enumerate(roots):
        copies_of.setdefault(r, []).append(i)
    distinct = [docs[r] for r in sorted(copies_of)]
    if len(distinct) > MAX_PASSAGES:
        distinct = distinct[-MAX_PASSAGES:]
    by_id = {d.id: d for d in distinct}
    pv = index.passage_vectors(SearchFilters(document_ids=tuple(by_id)))
    if len(pv) == 0:
        return []
    keep = np.arange(len(pv))[-MAX_PASSAGES:]
    vectors = pv.vectors[keep]
    pdocs = [pv.document_ids[k] for k in keep]
    pidx = [pv.passage_indexes[k] for k in keep]
    labels = _cluster(vectors, distance)
    log.info(
        "themes: %d unmatched documents, %d distinct texts, %d passages, %d clusters",
        len(docs),
        len(distinct),
        len(vectors),
        len(set(labels.tolist())),
    )
    root_of = {docs[r].id: [docs[i] for i in members] for r, members in copies_of.items()}
    mid = since + (end - since) / 2
    candidates: list[tuple[int, list[int], list[Document]]] = []
    for label in sorted(set(labels.tolist())):
        rows = [k for k in range(len(labels)) if labels[k] == label]
        texts = sorted({pdocs[k] for k in rows})
        if len(texts) < min_size:
            continue
        members = sorted((m for t in texts for m in root_of.get(t, [by_id[t]])), key=lambda d: (d.published, d.id))
        if len({m.outlet for m in members}) < min_outlets:
            continue
        candidates.append((label, rows, members))
    if not candidates:
        return []
    passage_text = {(d.id, p.index): p.text for d in distinct for p in d.passages}
    clustered = {k for _, rows, _ in candidates for k in rows}
    rest = [passage_text.get((pdocs[k], pidx[k]), "") for k in range(len(labels)) if k not in clustered]
    terms = top_terms(
        [[passage_text.get((pdocs[k], pidx[k]), "") for k in rows] for _, rows, _ in candidates], rest[:5000]
    )
    themes: list[Theme] = []
    for (_, rows, members), words in zip(candidates, terms, strict=True):
        centroid = vectors[rows].mean(axis=0)
        centroid /= float(np.linalg.norm(centroid)) or 1.0
        sims = vectors[rows] @ centroid
        reps: list[ThemePassage] = []
        seen: set[str] = set()
        for k in np.argsort(-sims).tolist():
            row = rows[k]
            if pdocs[row] in seen:
                continue
            seen.add(pdocs[row])
            d = by_id[pdocs[row]]
            reps.append(
                ThemePassage(
                    d.id,
                    pidx[row],
                    passage_text.get((d.id, pidx[row]), ""),
                    d.language,
                    d.outlet,
                    d.url,
                    d.published,
                    float(sims[k]),
                )
            )
            if len(reps) >= 5:
                break
        early = sum(1 for m in members if m.published < mid)
        late = len(members) - early
        outlets = tuple(sorted({m.outlet for m in members}))
        growth = (late + 1) / (early + 1)
        themes.append(
            Theme(
                id=_theme_id(m.id for m in members),
                label=", ".join(words[:4]) or "(no terms)",
                top_terms=tuple(words),
                documents=tuple(m.id for m in members),
                distinct_texts=len({pdocs[r] for r in rows}),
                outlets=outlets,
                languages=dict(Counter(m.language for m in members).most_common()),
                first_seen=members[0].published,
                last_seen=members[-1].published,
                early=early,
                late=late,
                growth=growth,
                score=len(outlets) * growth,
                representatives=tuple(reps),
            )
        )
    themes.sort(key=lambda t: (-t.score, -len(t.outlets), -t.size, t.id))
    return themes[:max_themes]


# -- promotion -----------------------------------------------------------------------------------


def promote_theme(theme: Theme, narrative_id: str, out_dir: Path | str) -> Path:
    """Write ``<out_dir>/<narrative_id>.yaml``: a disabled draft narrative from the theme.

    Title from the top terms, description ``DRAFT: ...``, exemplars from the representative
    passages grouped by language (any languages: matching is cross-lingual), ``enabled: false``.
    Put the file in ``config/narratives/`` to load it.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    exemplars: dict[str, list[str]] = {}
    for p in theme.representatives:
        text = " ".join(p.text.split())
        if len(text) >= 3 and text not in exemplars.get(p.language, []):
            exemplars.setdefault(p.language, []).append(text[:600])
    tags = ["draft", "emerging-theme"]
    title = " / ".join(theme.top_terms[:5]) or theme.id
    data = {
        "id": narrative_id,
        "title": f"DRAFT: {title}" if len(title) >= 3 else f"DRAFT theme {theme.id}",
        "description": (
            f"DRAFT: emerging theme {theme.id} ({theme.size} documents, {len(theme.outlets)} outlets, "
            f"{theme.first_seen:%Y-%m-%d} to {theme.last_seen:%Y-%m-%d}); top terms: {', '.join(theme.top_terms)}. "
            "Rewrite the title, description and exemplars as the claim itself, add counter-exemplars, then enable."
        ),
        "enabled": False,
        "tags": tags,
        "exemplars": exemplars,
    }
    path = out / f"{narrative_id}.yaml"
    header = "# DRAFT narrative promoted from an emerging theme; review before enabling.\n"
    path.write_text(header + yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=120), encoding="utf-8")
    log.info("theme %s promoted to draft narrative %s at %s", theme.id, narrative_id, path)
    return path
