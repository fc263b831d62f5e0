"""``narrawatch matches ...`` in process, on the API test world (real index, match store, outbox)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitors.store import MatchStore
from monitors.verdicts import get_verdict
from narrawatch.cli import main
from tests.api.world import World, build_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with build_world(tmp_path_factory.mktemp("cli-verdicts")) as w:
        yield w


def run(world: World, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--config", str(world.config.root), "--log-level", "WARNING", "matches", *args])
    out, err = capsys.readouterr()
    return code, out, err


def listed(world: World, capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    code, out, _ = run(world, capsys, "list", "--json", "--limit", "1000", *args)
    assert code == 0
    rows: list[dict[str, Any]] = json.loads(out)
    return rows


def test_review_flow(world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    rows = listed(world, capsys, "--narrative", "n-nuclear-threat")
    assert len(rows) >= 20 and all(r["narrative_id"] == "n-nuclear-threat" for r in rows)
    assert rows == sorted(rows, key=lambda r: r["published"], reverse=True)
    assert all(len(r["id"]) == 16 and r["verdict"] is None for r in rows)
    yes, no = rows[0], rows[1]

    code, out, _ = run(world, capsys, "confirm", yes["id"], "--note", "asserts the threat", "--by", "alice")
    assert code == 0 and f"confirmed: match {yes['id']}" in out and "by alice" in out
    monkeypatch.setenv("USER", "carol")
    code, out, _ = run(world, capsys, "reject", no["id"], "--note", "reports on it, does not assert it")
    assert code == 0 and "by carol" in out

    code, out, _ = run(world, capsys, "show", no["id"], "--json")
    shown = json.loads(out)
    assert code == 0 and shown["id"] == no["id"] and shown["passage"]
    assert shown["verdict"]["verdict"] == "rejected" and shown["verdict"]["analyst"] == "carol"
    assert shown["verdict"]["note"] == "reports on it, does not assert it"
    assert shown["decision"] == "threshold" and isinstance(shown["reasons"], list)
    code, out, _ = run(world, capsys, "show", yes["id"])
    assert code == 0 and "verdict: confirmed by alice" in out and "asserts the threat" in out

    assert [r["id"] for r in listed(world, capsys, "--verdict", "rejected")] == [no["id"]]
    assert [r["id"] for r in listed(world, capsys, "--verdict", "confirmed")] == [yes["id"]]
    rest = listed(world, capsys, "--verdict", "none", "--narrative", "n-nuclear-threat")
    assert len(rest) == len(rows) - 2
    code, out, _ = run(world, capsys, "list", "--limit", "3")
    assert code == 0 and len(out.strip().splitlines()) == 3

    # The rejection is what detectors see: the store leaves the match out.
    with MatchStore(world.config.data_dir / "matches.sqlite") as store:
        assert no["id"] not in {m.id for m in store.matches("n-nuclear-threat")}
        assert yes["id"] in {m.id for m in store.matches("n-nuclear-threat")}

    # Changing one's mind replaces the verdict.
    code, _, _ = run(world, capsys, "confirm", no["id"], "--by", "dave")
    assert code == 0
    with MatchStore(world.config.data_dir / "matches.sqlite") as store:
        v = get_verdict(store, no["id"])
        assert v is not None and (v.verdict, v.analyst, v.note) == ("confirmed", "dave", "")
    code, _, _ = run(world, capsys, "reject", no["id"], "--by", "carol", "--note", "no after all")
    assert code == 0


def test_export_verdicts_uses_full_document_text(
    world: World, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rows = listed(world, capsys, "--narrative", "n-nuclear-threat")
    target = rows[5]
    assert run(world, capsys, "reject", target["id"], "--by", "alice")[0] == 0
    out_file = tmp_path / "gold.jsonl"
    code, _, err = run(world, capsys, "export-verdicts", "--out", str(out_file))
    assert code == 0 and "written to" in err
    lines = [json.loads(x) for x in out_file.read_text(encoding="utf-8").splitlines()]
    by_origin = {line["origin"]: line for line in lines}
    line = by_origin[f"verdict:{target['id']}"]
    assert line["narratives"] == [] and line["judged"] == ["n-nuclear-threat"] and line["verdict"] == "rejected"
    doc = world.app.index.get(json.loads(run(world, capsys, "show", target["id"], "--json")[1])["document_id"])
    assert doc is not None and line["text"].endswith(doc.text) and len(doc.text) > 0
    assert line["language"] == "ru" and line["analyst"] == "alice" and line["at"].endswith("+00:00")
    for other in lines:
        assert set(other) == {
            "text", "title", "language", "narratives", "judged", "origin", "verdict", "analyst", "at", "note",
        }  # fmt: skip
        assert other["narratives"] == (other["judged"] if other["verdict"] == "confirmed" else [])
    code, out, _ = run(world, capsys, "export-verdicts", "--narrative", "n-sanctions-relief")
    assert code == 0 and out == ""


def test_export_without_index_falls_back_to_the_passage(
    world: World, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rows = listed(world, capsys, "--narrative", "n-nuclear-threat")
    assert run(world, capsys, "confirm", rows[7]["id"], "--by", "alice")[0] == 0
    cfg = tmp_path / "config"
    cfg.mkdir()
    (cfg / "service.yaml").write_text("embedding: {model: hashing}\n", encoding="utf-8")
    from core.settings import load_config

    bare = load_config(cfg, require_sources=False)
    bare.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(world.config.data_dir / "matches.sqlite", bare.data_dir / "matches.sqlite")
    code = main(["--config", str(cfg), "--log-level", "ERROR", "matches", "export-verdicts"])
    out, _ = capsys.readouterr()
    assert code == 0
    lines = {x["origin"]: x for x in map(json.loads, out.splitlines())}
    line = lines[f"verdict:{rows[7]['id']}"]
    with MatchStore(world.config.data_dir / "matches.sqlite") as store:
        m = store.get(rows[7]["id"])
    assert m is not None and line["text"].endswith(m.passage_text) and line["narratives"] == ["n-nuclear-threat"]


def test_unknown_id_and_bad_usage(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    for action in ("confirm", "reject", "show"):
        code, out, err = run(world, capsys, action, "0123456789abcdef")
        assert code == 1 and out == ""
        assert err.strip().splitlines() == [err.strip()] and "unknown match '0123456789abcdef'" in err
    # Consistent with `alerts ack` of an unknown id.
    assert main(["--config", str(world.config.root), "alerts", "ack", "nope"]) == 1
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["--config", str(world.config.root), "matches", "confirm"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["--config", str(world.config.root), "matches", "list", "--verdict", "maybe"])
    assert info.value.code == 2
