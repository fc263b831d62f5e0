"""Issue 10 item 7: inputs that crashed, hung or silently did nothing now get a clear error and exit 2.

Exit codes (README, CLI reference): 0 ok, 1 a command failed, 2 invalid config or usage. Inputs
that used to abort or hang the process (``-k 3000000000`` aborts inside tantivy, ``--step 0``
loops forever) run in a subprocess with a timeout, so a regression fails the test instead of
taking pytest down with it; the rest go through :func:`narrawatch.cli.main` in-process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from core.settings import load_config
from narrawatch.cli import MAX_K, main
from tests.api.fresh import NARRATIVE_ID, ingest_posts, load_posts, write_fresh_config

DATA = Path(__file__).resolve().parents[1] / "data"
GOLD = DATA / "gold" / "dev.jsonl"
CASES = DATA / "euvsdisinfo" / "cases_sample.csv"
CASES_OTHER_LAYOUT = DATA / "euvsdisinfo" / "cases_with_text_sample.csv"
EXPECTED_HEADER = "date,id,title,countries,keywords,languages,outlets"


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config directory whose embedded index holds 60 real Telegram posts."""
    root = tmp_path_factory.mktemp("cli-inputs")
    cfg = write_fresh_config(root)
    ingest_posts(load_config(cfg))
    return cfg


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``narrawatch ARGV`` in-process: (exit code, stdout, stderr); argparse's usage errors exit 2."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def run_process(cfg: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``narrawatch --config CFG ARGS`` as a child process (a hang raises TimeoutExpired, an abort is rc < 0)."""
    return subprocess.run(
        [sys.executable, "-m", "narrawatch", "--config", str(cfg), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )


# -- durations -------------------------------------------------------------------------------------


@pytest.mark.parametrize("every", ["99999999999d", "1.0e+400", "3651d"])
@pytest.mark.parametrize("command", [["config", "check"], ["sources"]])
def test_huge_every_in_config_is_a_located_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], every: str, command: list[str]
) -> None:
    cfg = write_fresh_config(tmp_path)
    (cfg / "sources.yaml").write_text(
        f"sources:\n  - {{id: tg-bbc, kind: telegram, channel: bbcrussian, every: {every}}}\n", encoding="utf-8"
    )
    code, _, err = run(["--config", str(cfg), *command], capsys)
    assert code == 2, err
    assert "sources.yaml:sources[0].every: duration" in err and "at most 3650d" in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["search", "санкции", "--since", "999999d"],
        ["search", "санкции", "--until", "9999-12-31T23:00-05:00"],
        ["export", "--since", "999999d"],
        ["trace", "--claim", "санкции", "--since", "999999d"],
        ["themes", "--since", "999999d"],
        ["narratives", "match", "--since", "999999d"],
        ["rules", "test", "recurrence", "--since", "999999d"],
    ],
)
def test_since_out_of_range_is_a_usage_error(cfg: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, err = run(["--config", str(cfg), *argv], capsys)
    assert code == 2 and out == "", (code, out, err)
    assert "too long; at most 3650d" in err or "out of the range of dates" in err, err


@pytest.mark.parametrize(
    "argv",
    [
        ["search", "санкции", "--since", "2024-11-20", "--until", "2024-11-01"],
        ["search", "санкции", "--since", "2d", "--until", "3d"],
        ["export", "--since", "2024-11-20", "--until", "2024-11-20"],
        ["trace", "--claim", "санкции", "--since", "2024-11-20", "--until", "2024-11-01"],
    ],
)
def test_since_after_until_is_a_usage_error(cfg: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, err = run(["--config", str(cfg), *argv], capsys)
    assert code == 2 and out == "", (code, out, err)
    assert "is not before --until" in err and "the range is empty" in err, err


# -- bounds on counts ------------------------------------------------------------------------------


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["search", "санкции", "-k", "3000000000"], f"use 1..{MAX_K}"),
        (["search", "санкции", "-k", "0"], f"use 1..{MAX_K}"),
        (["search", "санкции", "-k", "-1"], f"use 1..{MAX_K}"),
        (["search", "санкции", "-k", str(MAX_K + 1)], f"use 1..{MAX_K}"),
        (["trace", "--claim", "санкции", "--max-items", "3000000000"], "use 1..1000"),
        (["rules", "test", "recurrence", "--step", "0"], "use 1..604800"),
        (["rules", "test", "recurrence", "--step", "-5"], "use 1..604800"),
        (["rules", "test", "recurrence", "--step", "1"], "raise --step or shorten --since"),
    ],
)
def test_counts_out_of_range_exit_2_instead_of_aborting_or_hanging(cfg: Path, argv: list[str], message: str) -> None:
    done = run_process(cfg, *argv)
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert message in done.stderr and "Traceback" not in done.stderr, done.stderr[-2000:]


def test_search_at_the_k_bound_still_works(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        ["--config", str(cfg), "search", "Telegram", "--mode", "keyword", "-k", str(MAX_K), "--json"], capsys
    )
    assert code == 0, err
    assert 0 < len(json.loads(out)) <= MAX_K


@pytest.mark.timeout(120)
def test_rules_test_with_a_sane_step_runs(cfg: Path) -> None:
    done = run_process(cfg, "rules", "test", "recurrence", "--since", "2d", "--step", "3600")
    assert done.returncode == 0, done.stderr[-2000:]
    # every hour from 2 days ago, plus the final "now" (later than the parsed --since by the start-up time)
    assert json.loads(done.stdout)["evaluations"] in (49, 50)


# -- input files -----------------------------------------------------------------------------------


def _cp1251_gold(tmp_path: Path) -> Path:
    """Real Russian posts as gold lines, saved in Windows-1251 (as a Windows editor might)."""
    lines = [
        json.dumps({"text": p["text"], "language": "ru", "narratives": []}, ensure_ascii=False) for p in load_posts()
    ]
    path = tmp_path / "gold-cp1251.jsonl"
    path.write_bytes("\n".join(lines[:5]).encode("cp1251", errors="replace"))
    return path


def _utf16_cases(tmp_path: Path) -> Path:
    """The real EUvsDisinfo sample saved as UTF-16 (a spreadsheet's "Unicode text" export)."""
    path = tmp_path / "cases-utf16.csv"
    path.write_bytes(CASES.read_text(encoding="utf-8").encode("utf-16"))
    return path


@pytest.mark.parametrize(
    "command",
    [
        ["narratives", "eval", "--gold", "{bad}"],
        ["narratives", "eval", "--gold", str(GOLD), "--background", "{bad}"],
        ["narratives", "calibrate", "--gold", "{bad}"],
        ["narratives", "learn", "--dry-run", "--gold", "{bad}"],
    ],
)
@pytest.mark.parametrize("which", ["missing", "cp1251"])
def test_gold_file_missing_or_not_utf8(
    cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str], which: str
) -> None:
    gold = tmp_path / "no-such-gold.jsonl" if which == "missing" else _cp1251_gold(tmp_path)
    argv = [str(gold) if a == "{bad}" else a for a in command]
    code, out, err = run(["--config", str(cfg), *argv], capsys)
    assert code == 2 and out == "", (code, out, err)
    assert f"{gold}: cannot read gold file" in err and "Traceback" not in err, err


@pytest.mark.parametrize("which", ["missing", "utf16", "other-layout"])
def test_euvsdisinfo_import_bad_file(cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], which: str) -> None:
    csv_path = {
        "missing": tmp_path / "no-such-cases.csv",
        "utf16": _utf16_cases(tmp_path) if which == "utf16" else None,
        "other-layout": CASES_OTHER_LAYOUT,
    }[which]
    assert csv_path is not None
    out_dir = tmp_path / "candidates"
    code, out, err = run(
        ["--config", str(cfg), "narratives", "import-euvsdisinfo", str(csv_path), "--out", str(out_dir)], capsys
    )
    assert code == 2 and out == "", (code, out, err)
    assert str(csv_path) in err and "Traceback" not in err, err
    if which == "other-layout":
        assert "missing column(s) date, id, title, keywords" in err and EXPECTED_HEADER in err, err
    else:
        assert "cannot read EUvsDisinfo CSV" in err, err
    assert not out_dir.exists()


def test_euvsdisinfo_import_of_the_real_export_still_works(
    cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with_bom = tmp_path / "cases-bom.csv"  # the same export saved by a spreadsheet (UTF-8 with BOM)
    with_bom.write_bytes(b"\xef\xbb\xbf" + CASES.read_bytes())
    for path in (CASES, with_bom):
        code, out, err = run(
            ["--config", str(cfg), "narratives", "import-euvsdisinfo", str(path), "--out", str(tmp_path / path.stem)],
            capsys,
        )
        assert code == 0, err
        result = json.loads(out)
        assert result["cases"] == 8 and sum(result["files"].values()) == 8, result


def test_calibrate_write_on_a_flow_style_narrative_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_fresh_config(tmp_path)
    path = cfg / "narratives" / f"{NARRATIVE_ID}.yaml"
    before = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert path.read_text(encoding="utf-8").startswith("{")  # flow style: no line edit can add a key
    code, out, err = run(["--config", str(cfg), "narratives", "calibrate", "--gold", str(GOLD), "--write"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["written"] == [str(path)]
    after = yaml.safe_load(path.read_text(encoding="utf-8"))
    th = after.pop("thresholds")
    before.pop("thresholds")
    assert after == before  # every other field, in the same order
    assert list(after) == list(before)
    assert th["suggest"] == result["thresholds"][NARRATIVE_ID]["suggest"] and th["calibrated_for"] == "hashing"
    narrative = load_config(cfg).extra["narratives"].get(NARRATIVE_ID)
    assert narrative.thresholds is not None and narrative.thresholds.suggest == th["suggest"]
    assert run(["--config", str(cfg), "config", "check"], capsys)[0] == 0
