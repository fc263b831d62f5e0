"""The benchmark harness's cheapest paths produce well-formed JSON lines and tables (no timing checks)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import matching, search
from bench.common import append_table


def _records(out: str) -> list[dict[str, object]]:
    lines = [line for line in out.splitlines() if line.startswith("{")]
    assert lines
    return [json.loads(line) for line in lines]


def test_matching_and_detectors_emit_json(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # shared_data: the benchmark reads ../shared/data (bench.common.SHARED); skips with the reason without it
    rows = matching.run(docs=20, narratives=5, store_matches=(200,), passes=1, model="hashing", write=False)
    recs = _records(capsys.readouterr().out)
    assert {r["stage"] for r in recs} == {"match", "detect"}
    match = [r for r in recs if r["stage"] == "match"]
    assert [r["catalogue"] for r in match] == ["shipped", "synthetic x5"]
    assert all(r["documents"] == 20 and float(r["ms_per_doc"]) >= 0 for r in match)  # type: ignore[arg-type]
    assert recs[-1]["store_matches"] == 200
    assert rows == recs


def test_search_at_500_passages_emits_json(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    search.run((500,), queries=5, base=tmp_path, write=False)
    recs = _records(capsys.readouterr().out)
    modes = {(r["mode"], r["filters"]) for r in recs if r.get("stage") == "search"}
    assert len(modes) == 6
    semantic = [r for r in recs if r.get("mode") == "semantic"]
    assert all(r["recall_at_10"] == 1.0 for r in semantic)  # exact kNN
    foot = [r for r in recs if r.get("stage") == "footprint"]
    assert foot and float(foot[0]["searcher_rss_after_open_mib"]) > 0  # type: ignore[arg-type]


def test_append_table_writes_markdown(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    append_table("t", [{"a": 1, "b": "x|y"}], params={"n": 1}, path=path)
    text = path.read_text()
    assert "| a | b |" in text and "| 1 | x\\|y |" in text and "load avg" in text
