"""Contract: two OS processes claiming due sources at once never get the same source."""

from __future__ import annotations

import multiprocessing
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crawlers.state import CrawlStateStore

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SOURCES = 60


def _open(where: str, schema: str) -> CrawlStateStore:
    if schema:
        from core.pgsql import PgDatabase

        store = CrawlStateStore(PgDatabase(where, schema=schema, pool_size=1))
        store._owns_db = True
        return store
    return CrawlStateStore(Path(where))


def _claimer(where: str, schema: str, worker: str, start: object, out: object) -> None:
    store = _open(where, schema)
    try:
        start.wait()  # type: ignore[attr-defined]
        got: list[str] = []
        while batch := store.claim_due(worker, T0, 600, limit=1):
            got += [x.source_id for x in batch]
        out.put((worker, got))  # type: ignore[attr-defined]
    finally:
        store.close()


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_two_processes_claim_disjoint(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if engine == "sqlite":
        where, schema = str(tmp_path / "state.db"), ""
    else:
        where, schema = str(request.getfixturevalue("pg_url")), f"t_{uuid.uuid4().hex[:12]}"
    with _open(where, schema) as store:
        store.schedule({f"s{i:03d}": T0 for i in range(SOURCES)})
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_claimer, args=(where, schema, w, start, out)) for w in ("A", "B")]
    for p in procs:
        p.start()
    start.set()
    results = dict(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    a, b = set(results["A"]), set(results["B"])
    assert len(results["A"]) == len(a) and len(results["B"]) == len(b)
    assert not a & b, sorted(a & b)
    assert a | b == {f"s{i:03d}" for i in range(SOURCES)}
    with _open(where, schema) as store:
        assert {x.source_id: x.claims for x in store.leases()} == {f"s{i:03d}": 1 for i in range(SOURCES)}
