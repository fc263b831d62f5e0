"""Cross-script keyword matches on the demo corpus: before (any word, no down-weighting, no
floor) vs after (the read model). Usage: .venv/bin/python bench/search_script.py CONFIG_DIR"""

import sys

from core.documents import SearchQuery
from core.settings import load_config
from narrawatch.app import open_app
from narrawatch.builtins import register_builtins
from narrawatch.read import search
from narrawatch.read.params import SearchParams

QUERIES = [
    "Russia",
    "Make Russia Great Again",
    "Trump",
    "USA",
    "NATO",
    "Ukraine war",
    "Putin",
    "Biden",
    "Oreshnik missile",
    "COP29 climate",
    "Telegram",
    "iPhone",
    "Bitcoin",
    "ATACMS",
    "Storm Shadow",
    "Zelensky",
    "Kyiv",
    "Moscow",
    "Donald Trump",
    "Elon Musk",
]


def main() -> None:
    register_builtins()
    config = load_config(sys.argv[1])
    with open_app(config, read_only=True) as app:
        n_docs = sum(app.index.count("source").values())
        tb = ta = 0
        rb = []
        ra = []
        sizes_b = []
        sizes_a = []
        for q in QUERIES:
            v = app.embedder.embed_query(q)
            before = app.index.search(SearchQuery(text=q, vector=v, mode="hybrid", k=2000))
            sizes_b.append(len(before))
            top = before[:10]
            for i, h in enumerate(top, 1):
                if h.keyword_rank is not None and h.language == "ru":
                    tb += 1
                    rb.append(i)
            page = search.search(app, SearchParams(q=q, mode="hybrid", page_size=10))
            sizes_a.append(page.total_documents)
            for r in page.results:
                if r.hit.keyword_rank is not None and r.hit.language == "ru":
                    ta += 1
                    ra.append(r.rank)
        print(f"corpus {n_docs} documents; {len(QUERIES)} English queries, hybrid")
        print(
            f"before: results per query (mean) {sum(sizes_b) / len(sizes_b):.0f};"
            " Latin-keyword matches in Russian posts"
            f" in the top 10: {tb},"
            f" mean rank {sum(rb) / max(len(rb), 1):.1f}, at #1: {rb.count(1)}"
        )
        print(
            f"after:  results per query (mean) {sum(sizes_a) / len(sizes_a):.0f};"
            f" Latin-keyword matches in Russian posts in the top 10: {ta},"
            f" mean rank {sum(ra) / max(len(ra), 1):.1f}, at #1: {ra.count(1)}"
        )


if __name__ == "__main__":
    main()
