"""A writer process for the shared-backend contract cases (``python -m tests.contract.pg_writer``).

Arguments: ``URL PREFIX NAME FIRST LAST ROUNDS BATCH SEED [HOLD_ROUND]``: upserts the contract
corpus documents ``FIRST:LAST``, ``ROUNDS`` times, each round a new version of every document
(:func:`version`), in shuffled batches of ``BATCH``; prints ``committed <round>`` after each
round. With ``HOLD_ROUND``, that round's first batch stops inside its transaction (rows written,
not committed), prints ``inside <round>`` and sleeps, for the parent to ``kill -9`` it.
"""

from __future__ import annotations

import random
import sys
import time
from typing import Any

from core.documents import Document
from index.embed import HashingEmbedder
from index.postgres import PostgresIndex
from tests.contract import embed, load_corpus, make_document

EMB = HashingEmbedder(256)


def version(doc: Document, writer: str, round_: int) -> Document:
    """Version ``round_`` of ``doc`` by ``writer``: one more paragraph naming both."""
    return make_document(
        doc_id=doc.id,
        source_id=doc.source_id,
        kind=doc.kind,
        url=doc.url,
        title=doc.title,
        text=f"{doc.text}\n\nВерсия {writer}-{round_}.",
        language=doc.language,
        published=doc.published,
    )


def main(argv: list[str]) -> None:
    url, prefix, name = argv[0], argv[1], argv[2]
    first, last, rounds, batch, seed = (int(a) for a in argv[3:8])
    hold = int(argv[8]) if len(argv) > 8 else -1
    docs = load_corpus()[first:last]
    rng = random.Random(seed)
    index = PostgresIndex(url, EMB.space, table_prefix=prefix, pool_size=1)
    original = index._write

    def holding_write(*args: Any) -> None:
        original(*args)
        print(f"inside {current}", flush=True)
        time.sleep(600)

    for current in range(rounds):
        order = list(docs)
        rng.shuffle(order)
        if current == hold:
            index._write = holding_write  # type: ignore[method-assign]
        for i in range(0, len(order), batch):
            index.upsert(embed([version(d, name, current) for d in order[i : i + batch]], EMB))
        print(f"committed {current}", flush=True)
    index.close()


if __name__ == "__main__":
    main(sys.argv[1:])
