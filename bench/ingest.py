"""Ingest end to end, against the embedding floor measured in the same run.

A loopback :class:`narrawatch.demo.replay.ReplayServer` serves ``--posts`` real Telegram posts
(telegram_ru_posts.jsonl, 24 channels, as ``/s/<handle>`` preview pages with paging) and the 11
real feeds of ../shared/data/feeds. The real ``Pipeline.ingest`` runs over every source once:
crawl subprocess (Scrapy) -> extraction/normalisation -> embedding (use-multilingual-v3 at the
pipeline's batch size and threads) -> embedded index -> narrative matching
(``attach_monitoring``, shipped catalogue). Nothing in the product is changed: the profile comes
from wrappers installed here around the pipeline's embedder, index, hooks and crawl function.

Floor: the same embedder settings embedding the corpus's own passages alone (a sample, before
the ingest) and the first passages the pipeline embedded (after it); the ratio uses their mean,
so both bracket the machine's load during the run.

    .venv/bin/python -m bench.ingest [--posts 1000] [--floor-sample 512] [--dir /tmp/nw-bench-ingest]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from bench.common import SHARED, Stopwatch, append_table, emit, loadavg, real_documents, real_posts

__all__ = ["TimedEmbedder", "TimedIndex", "embed_floor", "main", "run"]


class TimedEmbedder:
    """Delegates to an embedder, timing ``embed_documents`` and keeping a sample of its texts."""

    def __init__(self, inner: Any, keep: int = 1024) -> None:
        self.inner = inner
        self.sw = Stopwatch()
        self.passages = 0
        self.sample: list[str] = []
        self._keep = keep

    def embed_documents(self, texts: Sequence[str]) -> Any:
        """Timed delegate."""
        if len(self.sample) < self._keep:
            self.sample.extend(texts[: self._keep - len(self.sample)])
        with self.sw:
            out = self.inner.embed_documents(texts)
        self.passages += len(texts)
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class TimedIndex:
    """Delegates to an index, timing ``upsert`` and ``content_hashes``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.upsert_sw = Stopwatch()
        self.lookup_sw = Stopwatch()

    def upsert(self, docs: Any) -> Any:
        """Timed delegate."""
        with self.upsert_sw:
            return self.inner.upsert(docs)

    def content_hashes(self, ids: Any) -> Any:
        """Timed delegate."""
        with self.lookup_sw:
            return self.inner.content_hashes(ids)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class TimedCrawl:
    """Wraps the pipeline's crawl function: child wall/CPU time and time the parent waited."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.wall = 0.0
        self.child_cpu = 0.0
        self.waited = 0.0
        self.events = 0

    def __call__(self, config: Any, sources: list[str], state: dict[str, Any]) -> Iterator[dict[str, Any]]:
        t0, c0 = time.perf_counter(), os.times()
        gen = self.inner(config, sources, state)
        try:
            while True:
                t = time.perf_counter()
                try:
                    ev = next(gen)
                except StopIteration:
                    break
                finally:
                    self.waited += time.perf_counter() - t
                self.events += 1
                yield ev
        finally:
            gen.close()
            c1 = os.times()
            self.wall += time.perf_counter() - t0
            self.child_cpu += (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system)


def _count_tokens(emb: Any, texts: Sequence[str]) -> int | None:
    count = getattr(emb, "count_tokens", None)
    return sum(int(count(t)) for t in texts) if count else None


def embed_floor(emb: Any, texts: Sequence[str], batch: int = 64) -> dict[str, Any]:
    """passages/s (and tokens/s) of ``emb`` alone on ``texts`` after a warm-up batch."""
    emb.embed_documents(list(texts[:batch]))
    t0, c0 = time.perf_counter(), time.process_time()
    emb.embed_documents(list(texts))
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    tokens = _count_tokens(emb, texts)
    return {
        "passages": len(texts),
        "passages_per_s": round(len(texts) / dt, 1),
        "passages_per_cpu_s": round(len(texts) / cpu, 1),
        "tokens_per_s": round(tokens / dt) if tokens else None,
        "tokens_per_passage": round(tokens / len(texts), 1) if tokens else None,
        "load": loadavg(),
    }


def write_config(workdir: Path, base_url: str, handles: list[str], feeds: list[str], max_pages: int) -> Path:
    """The demo's config (narratives, alerts, fast crawl settings) with these sources."""
    from narrawatch.demo import write_demo_config

    cfg = write_demo_config(workdir, base_url, handles, [])
    sources: list[dict[str, Any]] = [
        {
            "id": f"tg-{h}",
            "kind": "telegram",
            "channel": h,
            "base_url": base_url,
            "max_pages": max_pages,
            "every": "10m",
            "outlet": f"t.me/{h}",
        }
        for h in handles
    ]
    for i, name in enumerate(feeds):
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower().rsplit(".", 1)[0]).strip("-")
        sources.append(
            {"id": f"feed-{i}-{slug}"[:60], "kind": "feed", "url": f"{base_url}/feeds/{name}", "every": "15m"}
        )
    (cfg / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}, sort_keys=False), encoding="utf-8")
    return cfg


def run(
    posts: int = 1000, *, floor_sample: int = 512, workdir: Path = Path("/tmp/nw-bench-ingest"), write: bool = True
) -> list[dict[str, Any]]:
    """Ingest ``posts`` real posts + the real feeds once; returns the JSON records."""
    from core.settings import load_config
    from narrawatch.app import open_app
    from narrawatch.builtins import register_builtins

    register_builtins()  # as the CLI does before it loads a config
    from narrawatch.backends import open_embedder
    from narrawatch.demo.replay import ReplayServer
    from narrawatch.monitoring import attach_monitoring

    shutil.rmtree(workdir, ignore_errors=True)
    items = real_posts(posts)
    per_channel: dict[str, int] = {}
    for p in items:
        per_channel[p["handle"]] = per_channel.get(p["handle"], 0) + 1
    max_pages = min(1000, max(per_channel.values()) // 20 + 2)
    feed_dir = SHARED / "feeds"
    feeds = {p.name: p.read_bytes() for p in sorted(feed_dir.iterdir()) if p.suffix in (".rss", ".xml", ".json")}
    # The replay rewrites every absolute link, JSON-escaped ones included, to itself (loopback only).
    os.environ.pop("NARRAWATCH_WEBHOOK_URL", None)
    rows: list[dict[str, Any]] = []
    with ReplayServer(items, feeds) as server:
        cfg = write_config(workdir, server.base_url, sorted(per_channel), sorted(feeds), max_pages)
        config = load_config(cfg)
        # 1. the floor: the pipeline's embedder settings, the corpus's own passages, nothing else running
        floor_emb = open_embedder(config)
        sample = [p.text for d in real_documents(floor_sample) for p in d.passages][:floor_sample]
        before = embed_floor(floor_emb, sample, config.service.embedding.batch_size)
        rows.append(emit("ingest", stage="floor_before", model=floor_emb.space.model, **before))
        with open_app(config) as app:
            monitoring = attach_monitoring(app)
            emb = TimedEmbedder(app.pipeline.embedder)
            idx = TimedIndex(app.pipeline.index)
            crawl = TimedCrawl(app.pipeline.crawl)
            hook_sw = Stopwatch()
            app.pipeline.embedder, app.pipeline.index, app.pipeline.crawl = emb, idx, crawl

            def timed(hook: Any) -> Any:
                def wrapper(docs: Any, result: Any) -> None:
                    with hook_sw:
                        hook(docs, result)

                return wrapper

            app.pipeline.hooks[:] = [timed(h) for h in app.pipeline.hooks]
            load0 = loadavg()
            t0, c0 = time.perf_counter(), time.process_time()
            reports = app.pipeline.ingest([s.id for s in config.sources])
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            detect_s = 0.0
            if monitoring is not None:
                t = time.perf_counter()
                monitoring.after_pass()
                detect_s = time.perf_counter() - t
            stats = app.index.stats()
            after = embed_floor(floor_emb, emb.sample, config.service.embedding.batch_size)
            rows.append(emit("ingest", stage="floor_after", model=floor_emb.space.model, **after))
            new = sum(r.new for r in reports)
            floor = (before["passages_per_s"] + after["passages_per_s"]) / 2
            other = wall - crawl.waited - emb.sw.wall - idx.upsert_sw.wall - idx.lookup_sw.wall - hook_sw.wall
            rows.append(
                emit(
                    "ingest",
                    stage="ingest",
                    posts_served=len(items),
                    feeds=len(feeds),
                    sources=len(config.sources),
                    documents=new,
                    passages=emb.passages,
                    index_passages=stats.passages,
                    failed_sources=sum(1 for r in reports if not r.ok),
                    dropped=sum(sum(r.dropped.values()) for r in reports),
                    wall_s=round(wall, 1),
                    articles_per_s=round(new / wall, 2),
                    passages_per_s=round(emb.passages / wall, 1),
                    floor_passages_per_s=round(floor, 1),
                    fraction_of_floor=round(emb.passages / wall / floor, 3),
                    matches=app.pipeline.counters.get("match.matches"),
                    load_before=load0,
                    load_after=loadavg(),
                )
            )
            prof = {
                "waiting for crawl subprocess": crawl.waited,
                "embedding (embed_documents)": emb.sw.wall,
                "index upsert": idx.upsert_sw.wall,
                "index content_hashes lookup": idx.lookup_sw.wall,
                "matching hook": hook_sw.wall,
                "other parent work (event decode, crawl state, batching)": max(0.0, other),
            }
            for stage, secs in prof.items():
                rows.append(
                    emit("ingest", stage="profile", part=stage, seconds=round(secs, 2), share=round(secs / wall, 3))
                )
            rows.append(
                emit(
                    "ingest",
                    stage="profile",
                    part="(crawl subprocess wall, runs concurrently)",
                    seconds=round(crawl.wall, 2),
                    share=round(crawl.wall / wall, 3),
                    cpu_s=round(crawl.child_cpu, 2),
                )
            )
            rows.append(
                emit(
                    "ingest",
                    stage="profile",
                    part="(parent process CPU, all threads)",
                    seconds=round(cpu, 2),
                    share=round(cpu / wall, 3),
                )
            )
            rows.append(
                emit(
                    "ingest",
                    stage="profile",
                    part="(embedding CPU)",
                    seconds=round(emb.sw.cpu, 2),
                    share=round(emb.sw.cpu / wall, 3),
                )
            )
            rows.append(
                emit(
                    "ingest",
                    stage="profile",
                    part="(detectors: one after_pass, not in wall)",
                    seconds=round(detect_s, 2),
                    share="",
                )
            )
    if write:
        params = {
            "posts": len(items),
            "channels": len(per_channel),
            "feeds": len(feeds),
            "max_pages": max_pages,
            "batch": config.service.embedding.batch_size,
            "threads": config.service.embedding.threads or "default",
            "floor_sample": len(sample),
        }
        model = rows[0]["model"]
        append_table(
            "Ingest end to end (loopback replay, real pipeline)",
            [r for r in rows if r["stage"] == "ingest"],
            params=params,
            model=model,
            columns=[
                "documents",
                "passages",
                "wall_s",
                "articles_per_s",
                "passages_per_s",
                "floor_passages_per_s",
                "fraction_of_floor",
                "failed_sources",
                "dropped",
                "load_before",
                "load_after",
            ],
        )
        append_table(
            "Embedding floor in the same run (same settings, corpus passages, embedder alone)",
            [r for r in rows if r["stage"].startswith("floor")],
            params=params,
            model=model,
            columns=[
                "stage",
                "passages",
                "passages_per_s",
                "passages_per_cpu_s",
                "tokens_per_s",
                "tokens_per_passage",
                "load",
            ],
        )
        append_table(
            "Ingest profile: where the wall time goes",
            [r for r in rows if r["stage"] == "profile"],
            params=params,
            model=model,
            columns=["part", "seconds", "share", "cpu_s"],
            notes="rows without parentheses partition the parent's wall time; parenthesised rows "
            "overlap them (the crawl child runs concurrently with embedding)",
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--posts", type=int, default=1000)
    ap.add_argument("--floor-sample", type=int, default=512)
    ap.add_argument("--dir", default="/tmp/nw-bench-ingest")
    ap.add_argument("--no-write", action="store_true", help="do not append to bench/RESULTS.md")
    a = ap.parse_args(argv)
    run(a.posts, floor_sample=a.floor_sample, workdir=Path(a.dir), write=not a.no_write)


if __name__ == "__main__":
    main()
