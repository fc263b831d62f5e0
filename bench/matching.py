"""Narrative matching and detector cost.

* ``match``: ``NarrativeMatcher.match_many`` per document, in pipeline-sized batches (64
  documents), with the shipped catalogue (config/narratives) and with ``--narratives`` (1,000)
  synthetic narratives recombined from real exemplars: English claims are EUvsDisinfo case titles
  (real debunked claims), plus one Russian exemplar and one counter-exemplar drawn from the shipped
  catalogue, keywords from the cases' tags (``boost``). Documents are real Telegram posts; their
  passage vectors are computed once with the real model, outside the timed region (the pipeline
  hands the matcher the vectors it already computed).
* ``detect``: one detector pass = ``alerts.rules.run_rules`` with the shipped rules
  (config/alerts) over a ``MatchStore`` holding N matches (real matches recombined: real posts'
  texts/fingerprints, real narrative ids, outlets from the real channels, published over 48 h).

    .venv/bin/python -m bench.matching [--docs 1000] [--narratives 1000] [--store-matches 10000,100000]
"""

from __future__ import annotations

import argparse
import csv
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import ROOT, SHARED, Stopwatch, append_table, emit, loadavg, real_documents

__all__ = ["main", "run", "synthetic_narratives"]

BATCH = 64


def synthetic_narratives(n: int, seed: int = 7) -> list[Any]:
    """``n`` narratives recombined from EUvsDisinfo claims and the shipped catalogue's exemplars."""
    from monitors.catalogue import Narrative, load_catalogue

    shipped = load_catalogue(ROOT / "config").enabled
    ru = [t for nar in shipped for lang, t in nar.all_exemplars() if lang == "ru"]
    counters = [t for nar in shipped for _, t in nar.all_counter_exemplars()]
    with (SHARED / "euvsdisinfo_cases.csv").open(encoding="utf-8") as fh:
        cases = [r for r in csv.DictReader(fh) if len(r["title"]) >= 20]
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b = rng.sample(cases, 2)
        kws = sorted(
            {k.strip().lower() for k in (a["keywords"] + "+" + b["keywords"]).split("+") if len(k.strip()) > 2}
        )
        out.append(
            Narrative(
                id=f"synthetic-{i:04d}",
                title=a["title"][:120],
                exemplars={"en": (a["title"], b["title"]), "ru": (rng.choice(ru),)},
                counter_exemplars={"ru": (rng.choice(counters),)},
                keywords=tuple(kws[:6]),
                keyword_mode="boost",
            )
        )
    return out


def _match_cost(label: str, matcher: Any, pairs: list[tuple[Any, Any]], build_s: float) -> dict[str, Any]:
    sw = Stopwatch()
    found = 0
    for i in range(0, len(pairs), BATCH):
        with sw:
            found += len(matcher.match_many(pairs[i : i + BATCH]))
    n = len(pairs)
    passages = sum(len(d.passages) for d, _ in pairs)
    return emit(
        "matching",
        stage="match",
        catalogue=label,
        narratives=len(matcher.narratives),
        exemplars=len(matcher.exemplars.texts),
        documents=n,
        passages=passages,
        batch=BATCH,
        ms_per_doc=round(sw.wall / n * 1000, 3),
        cpu_ms_per_doc=round(sw.cpu / n * 1000, 3),
        docs_per_s=round(n / sw.wall),
        matches=found,
        matcher_build_s=round(build_s, 2),
        load=loadavg(),
    )


def _synthetic_matches(n: int, docs: list[Any], narrative_ids: list[str], now: datetime, seed: int = 3) -> list[Any]:
    from core.matches import Match

    rng = random.Random(seed)
    out = []
    for i in range(n):
        d = docs[rng.randrange(len(docs))]
        p = d.passages[0]
        score = round(rng.uniform(0.5, 0.75), 4)
        out.append(
            Match(
                document_id=f"{d.id}#{i}",
                narrative_id=rng.choice(narrative_ids),
                score=score,
                tier="alert" if score >= 0.6 else "suggest",
                passage_index=p.index,
                passage_text=p.text,
                exemplar="",
                exemplar_language="ru",
                model="bench",
                source_id=d.source_id,
                outlet=d.outlet,
                language=d.language,
                published=now - timedelta(seconds=rng.randrange(48 * 3600)),
                url=d.url,
                title=d.title,
                similarity=score,
                fingerprint=d.fingerprint,
                matched_at=now,
            )
        )
    return out


def _detect_cost(n_matches: int, docs: list[Any], narratives: dict[str, str], passes: int) -> dict[str, Any]:
    from alerts.config import load_alerts
    from alerts.rules import run_rules
    from monitors.store import MatchStore
    from narrawatch.builtins import register_builtins

    register_builtins()  # detectors and channel kinds, as the CLI registers them
    issues: list[Any] = []
    rules = load_alerts(ROOT / "config", issues)
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="nw-bench-match-") as tmp, MatchStore(Path(tmp) / "m.sqlite") as store:
        t0 = time.perf_counter()
        store.add(_synthetic_matches(n_matches, docs, list(narratives), now))
        fill = time.perf_counter() - t0
        sw = Stopwatch()
        events = 0
        for _ in range(passes):
            with sw:
                events = len(run_rules(rules, store, [], now, narratives))
        return emit(
            "matching",
            stage="detect",
            store_matches=n_matches,
            narratives=len(narratives),
            rules=sum(1 for r in rules.rules if r.enabled),
            passes=passes,
            ms_per_pass=round(sw.wall / passes * 1000, 1),
            cpu_ms_per_pass=round(sw.cpu / passes * 1000, 1),
            events=events,
            store_fill_s=round(fill, 2),
            load=loadavg(),
        )


def run(
    docs: int = 1000,
    narratives: int = 1000,
    store_matches: tuple[int, ...] = (10_000,),
    passes: int = 3,
    model: str = "use-multilingual-v3",
    write: bool = True,
) -> list[dict[str, Any]]:
    """Run the matching and detector benchmarks; returns the JSON records."""
    from core.settings import EmbeddingSettings
    from index.embed import make_embedder
    from monitors.catalogue import load_catalogue
    from monitors.narratives import NarrativeMatcher

    emb = make_embedder(EmbeddingSettings(model=model, batch_size=BATCH, threads=2))
    documents = real_documents(docs)
    vecs = emb.embed_documents([p.text for d in documents for p in d.passages])
    pairs, row = [], 0
    for d in documents:
        pairs.append((d, vecs[row : row + len(d.passages)]))
        row += len(d.passages)
    rows = []
    shipped = load_catalogue(ROOT / "config")
    t0 = time.perf_counter()
    m1 = NarrativeMatcher(shipped, emb)
    rows.append(_match_cost("shipped", m1, pairs, time.perf_counter() - t0))
    if narratives:
        synth = synthetic_narratives(narratives)
        t0 = time.perf_counter()
        m2 = NarrativeMatcher(synth, emb)
        rows.append(_match_cost(f"synthetic x{narratives}", m2, pairs, time.perf_counter() - t0))
    titles = {n.id: n.title for n in shipped.enabled}
    for n in store_matches:
        rows.append(_detect_cost(n, documents, titles, passes))
    if write:
        params = {
            "docs": len(documents),
            "narratives": narratives,
            "store_matches": list(store_matches),
            "passes": passes,
            "batch": BATCH,
        }
        append_table(
            "Matching: cost per document",
            [r for r in rows if r["stage"] == "match"],
            params=params,
            model=emb.space.model,
            columns=[
                "catalogue",
                "narratives",
                "exemplars",
                "documents",
                "passages",
                "ms_per_doc",
                "cpu_ms_per_doc",
                "docs_per_s",
                "matches",
                "matcher_build_s",
                "load",
            ],
        )
        append_table(
            "Detectors: one pass of run_rules (shipped rules)",
            [r for r in rows if r["stage"] == "detect"],
            params=params,
            columns=[
                "store_matches",
                "narratives",
                "rules",
                "passes",
                "ms_per_pass",
                "cpu_ms_per_pass",
                "events",
                "store_fill_s",
                "load",
            ],
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=1000)
    ap.add_argument("--narratives", type=int, default=1000)
    ap.add_argument("--store-matches", default="10000,100000")
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--model", default="use-multilingual-v3")
    ap.add_argument("--no-write", action="store_true", help="do not append to bench/RESULTS.md")
    a = ap.parse_args(argv)
    run(
        a.docs,
        a.narratives,
        tuple(int(x) for x in a.store_matches.split(",") if x),
        a.passes,
        a.model,
        write=not a.no_write,
    )


if __name__ == "__main__":
    main()
