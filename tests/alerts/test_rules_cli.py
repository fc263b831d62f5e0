"""``narrawatch rules list|show|add|edit|test|delete`` on the fixture world's config (real posts)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from narrawatch.cli import main
from tests.api.world import build_world


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with build_world(tmp_path_factory.mktemp("rules-cli")) as w:
        root = w.config.root
    yield root


def run(capsys: pytest.CaptureFixture[str], cfg: Path, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = main(["--config", str(cfg), "--log-level", "WARNING", *argv])
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_add_edit_test_delete_a_saved_search(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, cfg, "rules", "list", "--json")
    assert code == 0 and {r["id"] for r in json.loads(out) if r["origin"] == "yaml"} >= {"spike", "recurrence"}

    code, out, err = run(capsys, cfg, "rules", "add", "watch", "--query", "Орешник", "--severity", "critical")
    assert code == 0, err
    made = json.loads(out)
    assert made["detector"] == "query" and made["options"]["query"] == "Орешник" and made["origin"] == "store"
    code, _, err = run(capsys, cfg, "rules", "add", "watch", "--query", "Орешник")
    assert code == 1 and "exists already" in err

    code, out, err = run(capsys, cfg, "rules", "edit", "watch", "--mode", "keyword", "--group", "pass")
    assert code == 0, err
    edited = json.loads(out)
    assert (
        edited["options"] == {**made["options"], "mode": "keyword", "group": "pass"}
        and edited["severity"] == "critical"
    )

    code, out, err = run(capsys, cfg, "rules", "test", "watch", "--since", "2020-01-01")
    assert code == 0, err
    result = json.loads(out)
    assert result["sent"] is None and len(result["events"]) == 1 and result["alerts"]
    assert all("орешник" in m["passage"].lower() for m in result["events"][0]["evidence"])

    code, out, err = run(capsys, cfg, "rules", "test", "watch", "--since", "2020-01-01", "--text")
    assert code == 0, err
    assert "1 event(s), 1 alert(s) would have been raised" in out and "matched: орешник" in out

    code, out, _ = run(capsys, cfg, "alerts", "list", "--rule", "watch", "--json")
    assert json.loads(out) == []  # a test raises nothing

    code, out, _ = run(capsys, cfg, "rules", "show", "watch")
    assert code == 0 and json.loads(out)["options"]["group"] == "pass"
    assert run(capsys, cfg, "rules", "delete", "watch")[0] == 0
    code, _, err = run(capsys, cfg, "rules", "delete", "watch")
    assert code == 1 and "no stored rule 'watch'" in err


def test_problems_and_read_only_yaml_rules(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, cfg, "rules", "add", "bad", "--query", "x", "--country", "russia")
    assert code == 1 and "countries" in err
    code, _, err = run(capsys, cfg, "rules", "add", "bad", "--query", "x", "--actor", "spies")
    assert code == 2 and "invalid choice" in err
    code, _, err = run(capsys, cfg, "rules", "delete", "spike")
    assert code == 1 and "YAML" in err
    code, _, err = run(capsys, cfg, "rules", "edit", "spike", "--severity", "info")
    assert code == 1 and "YAML" in err


def test_a_yaml_match_rule_still_dry_runs(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, cfg, "rules", "test", "recurrence", "--since", "2024-11-19", "--step", "21600")
    assert code == 0, err
    result = json.loads(out)
    assert result["detector"] == "recurrence" and result["evaluations"] > 1
