"""Measure a semantic floor for one embedding space on the demo corpus (held-out evaluation).

Pseudo-relevance labels: an English (or Russian paraphrase) query is "about" a passage when the
passage contains the Russian stem of the query's topic word. Queries are split into a fitting
half and a held-out half; the floor is fitted on the first (largest cosine keeping recall >= 0.8
of the labelled passages among those above it ... see fit()), and reported on the second.
Usage: .venv/bin/python bench/search_floor.py CONFIG_DIR
"""

import json
import re
import sys

import numpy as np

from core.settings import load_config
from narrawatch.app import open_app

TOPICS = [  # (query, russian regex that marks a passage as on-topic)
    ("NATO", r"\bнато\b"),
    ("sanctions", r"санкци"),
    ("nuclear weapons", r"ядерн"),
    ("elections", r"выбор"),
    ("drone attack", r"беспилот|дрон"),
    ("oil prices", r"нефт"),
    ("Zelensky", r"зеленск"),
    ("Trump", r"трамп"),
    ("gas supplies to Europe", r"\bгаз"),
    ("Central Bank interest rate", r"ключев\w* ставк|центробанк|\bцб\b"),
    ("Crimea", r"крым"),
    ("mobilization", r"мобилиз"),
    ("Bitcoin cryptocurrency", r"биткоин|криптовалют"),
    ("earthquake", r"землетрясен"),
    ("Olympic Games", r"олимпи"),
    ("Belarus Lukashenko", r"лукашенк|белорус"),
    ("China Xi Jinping", r"\bкита|си цзиньпин"),
    ("Israel Gaza", r"израил|газ[аеу]\b|хамас"),
    ("migrants", r"мигрант"),
    ("inflation", r"инфляц"),
    ("Moldova", r"молдав|молдов"),
    ("Kazakhstan", r"казахстан"),
]


def main(cfg: str) -> None:
    from narrawatch.builtins import register_builtins

    register_builtins()
    config = load_config(cfg)
    with open_app(config, read_only=True) as app:
        pv = app.index.passage_vectors()
        ids = pv.document_ids
        texts = {}
        for d in app.index.iter_documents():
            for p in d.passages:
                texts[(d.id, p.index)] = (d.title + "\n" + p.text).lower().replace("ё", "е")
        rows = [texts.get((i, j), "") for i, j in zip(ids, pv.passage_indexes, strict=True)]
        out = []
        for q, rx in TOPICS:
            v = app.embedder.embed_query(q)
            cos = pv.vectors @ v
            lab = np.array([bool(re.search(rx, t)) for t in rows])
            out.append((q, cos, lab))
        space = app.index.embedding_space.key
    fit, held = out[0::2], out[1::2]

    def stats(group, floor):
        tp = sum(int(((c >= floor) & lab).sum()) for _, c, lab in group)
        fp = sum(int(((c >= floor) & ~lab).sum()) for _, c, lab in group)
        pos = sum(int(lab.sum()) for _, c, lab in group)
        above = tp + fp
        return dict(
            precision=round(tp / above, 3) if above else None,
            recall=round(tp / pos, 3) if pos else None,
            returned_per_query=round(above / len(group), 1),
            share_of_corpus=round(above / len(group) / len(rows), 4),
        )

    grid = np.round(np.arange(0.05, 0.60, 0.01), 2)
    table = {float(f): stats(fit, f) for f in grid}
    # the floor: the lowest cosine at which precision on the fitting half reaches 0.5
    chosen = next(f for f in grid if (table[float(f)]["precision"] or 0) >= 0.5)
    rand = np.concatenate([c[~lab] for _, c, lab in fit])
    print(
        json.dumps(
            {
                "space": space,
                "passages": len(rows),
                "queries_fit": [q for q, _, _ in fit],
                "queries_heldout": [q for q, _, _ in held],
                "off_topic_cosine_p50_p95_p99": [round(float(np.percentile(rand, x)), 3) for x in (50, 95, 99)],
                "chosen_floor": float(chosen),
                "fit": table[float(chosen)],
                "heldout": stats(held, float(chosen)),
                "heldout_at": {str(f): stats(held, f) for f in (0.2, 0.25, 0.3, 0.35, 0.4)},
                "no_floor_heldout": stats(held, -1.0),
            },
            indent=1,
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
