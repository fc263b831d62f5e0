# ruff: noqa: E501  -- realistic example texts and the verbatim YAML example are kept on one line
"""Narrative catalogue: validation issues located as file:path, the default catalogue, threshold rewrite, import."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from core.errors import ConfigError
from core.settings import load_config
from monitors.catalogue import Catalogue, Narrative, Thresholds, load_catalogue
from monitors.euvsdisinfo import UNASSIGNED, import_cases, write_candidates
from monitors.evaluate import write_thresholds

ROOT = Path(__file__).resolve().parents[2]

MINIMAL = """\
id: exiles-government-in-exile
title: Russian exiles as a Western-backed government-in-exile
description: Exiled Russian politicians, journalists and NGOs are portrayed as a shadow government.
exemplars: {en: ["The West is grooming Russian emigres as a government in exile to seize power."], ru: ["Запад готовит эмигрантов как правительство в изгнании для захвата власти в России."]}
counter_exemplars: {en: ["EUvsDisinfo: the claim that the West keeps a Russian government in exile is false."]}   # optional
keywords: ["government in exile", "правительство в изгнании"]   # optional gate/booster
thresholds: {suggest: 0.5, alert: 0.6}   # optional until calibrated
"""


def _config_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    (tmp_path / "narratives").mkdir()
    for name, text in files.items():
        (tmp_path / "narratives" / name).write_text(text, encoding="utf-8")
    return tmp_path


def test_minimal_example_loads_through_load_config(tmp_path: Path) -> None:
    cfg = load_config(_config_dir(tmp_path, {"exiles.yaml": MINIMAL}), require_sources=False)
    cat = cfg.extra["narratives"]
    assert isinstance(cat, Catalogue)
    n = cat.get("exiles-government-in-exile")
    assert n.keyword_mode == "boost" and n.enabled
    assert n.thresholds == Thresholds(suggest=0.5, alert=0.6)
    assert cat.files[n.id].name == "exiles.yaml"


def test_exemplars_in_any_language_only(tmp_path: Path) -> None:
    kk_only = """\
id: kazakhstan-north-russian
title: Northern Kazakhstan is Russian land
exemplars: {kk: ["Солтүстік Қазақстан – орыс жері, оны Ресейге қайтару керек."]}
"""
    en_only = MINIMAL.replace(
        ', ru: ["Запад готовит эмигрантов как правительство в изгнании для захвата власти в России."]', ""
    )
    cfg = load_config(_config_dir(tmp_path, {"kk.yaml": kk_only, "en.yaml": en_only}), require_sources=False)
    cat = cfg.extra["narratives"]
    assert {n.id: sorted(n.exemplars) for n in cat.narratives} == {
        "exiles-government-in-exile": ["en"],
        "kazakhstan-north-russian": ["kk"],
    }


def test_validation_issues_name_file_and_path(tmp_path: Path) -> None:
    unknown = MINIMAL + "colour: red\n"
    no_ru = MINIMAL.replace(
        ', ru: ["Запад готовит эмигрантов как правительство в изгнании для захвата власти в России."]', ""
    )
    no_ru = no_ru.replace("id: exiles-government-in-exile", "id: no-ru")
    bad_order = MINIMAL.replace("{suggest: 0.5, alert: 0.6}", "{suggest: 0.7, alert: 0.6}").replace(
        "id: exiles-government-in-exile", "id: bad-order"
    )
    no_exemplars = MINIMAL.replace("id: exiles-government-in-exile", "id: none-at-all").replace(
        'exemplars: {en: ["The West is grooming', 'exemplars: {en: []}\nx_old: {en: ["The West is grooming'
    )
    root = _config_dir(tmp_path, {"a.yaml": unknown, "b.yaml": no_ru, "c.yaml": bad_order, "d.yaml": no_exemplars})
    with pytest.raises(ConfigError) as exc:
        load_config(root, require_sources=False)
    lines = str(exc.value).splitlines()
    assert "narratives/a.yaml:colour: unknown key" in lines
    # No language is mandatory: an English-only narrative is valid.
    assert not any(line.startswith("narratives/b.yaml") for line in lines)
    assert any(line.startswith("narratives/d.yaml:exemplars: ") for line in lines)
    assert any(
        line.startswith("narratives/c.yaml:thresholds: ") and "alert (0.6) must be >= suggest (0.7)" in line
        for line in lines
    )


def test_duplicate_ids_and_gate_without_keywords(tmp_path: Path) -> None:
    gate = MINIMAL.replace("id: exiles-government-in-exile", "id: gated").replace(
        'keywords: ["government in exile", "правительство в изгнании"]', "keyword_mode: gate"
    )
    root = _config_dir(tmp_path, {"a.yaml": MINIMAL, "b.yaml": MINIMAL, "c.yaml": gate})
    issues: list = []
    cat = load_catalogue(root, issues)
    text = [str(i) for i in issues]
    assert any(t.startswith("narratives/b.yaml:id: duplicate narrative id") for t in text)
    assert "narratives/c.yaml:keywords: keyword_mode 'gate' needs at least one keyword" in text
    assert [n.id for n in cat.narratives] == ["exiles-government-in-exile"]


def test_default_catalogue_is_valid_and_complete() -> None:
    issues: list = []
    cat = load_catalogue(ROOT / "config", issues)
    assert issues == []
    assert len(cat.enabled) >= 15
    for n in cat.narratives:
        assert len(n.exemplars["ru"]) >= 3 and len(n.exemplars["en"]) >= 3, n.id
        assert n.counter_exemplars.get("ru") and n.counter_exemplars.get("en"), n.id
        assert n.thresholds is not None and n.thresholds.calibrated_for, n.id


def test_ad_hoc_english_only_narrative_is_allowed_by_the_model() -> None:
    n = Narrative(id="x", title="English only", exemplars={"en": ("Some claim here.",)})
    assert n.effective_thresholds().suggest == 0.5


def test_write_thresholds_keeps_everything_else(tmp_path: Path) -> None:
    block = MINIMAL.replace(
        "thresholds: {suggest: 0.5, alert: 0.6}   # optional until calibrated\n",
        "thresholds:\n  suggest: 0.5\n  # old comment\n  alert: 0.6\nenabled: true\n",
    )
    root = _config_dir(
        tmp_path, {"a.yaml": block, "b.yaml": MINIMAL.replace("id: exiles-government-in-exile", "id: other")}
    )
    (root / "narratives" / "b.yaml").write_text(
        (root / "narratives" / "b.yaml")
        .read_text(encoding="utf-8")
        .replace("thresholds: {suggest: 0.5, alert: 0.6}   # optional until calibrated\n", ""),
        encoding="utf-8",
    )
    cat = load_catalogue(root, [])
    before = {p.name: yaml.safe_load(p.read_text(encoding="utf-8")) for p in (root / "narratives").iterdir()}
    write_thresholds(
        cat,
        {"exiles-government-in-exile": {"suggest": 0.41, "alert": 0.52}, "other": {"suggest": 0.45, "alert": 0.5}},
        "model-x",
    )
    again = load_catalogue(root, [])
    a, b = again.get("exiles-government-in-exile"), again.get("other")
    assert a.thresholds == Thresholds(suggest=0.41, alert=0.52, calibrated_for="model-x")
    assert b.thresholds == Thresholds(suggest=0.45, alert=0.5, calibrated_for="model-x")
    text = (root / "narratives" / "a.yaml").read_text(encoding="utf-8")
    assert "# optional gate/booster" in text and "old comment" not in text and text.rstrip().endswith("enabled: true")
    for p in (root / "narratives").iterdir():
        after = yaml.safe_load(p.read_text(encoding="utf-8"))
        after.pop("thresholds")
        before[p.name].pop("thresholds", None)
        assert after == before[p.name]


def test_euvsdisinfo_import_groups_real_cases(shared_data: Path, tmp_path: Path) -> None:
    cat = load_catalogue(ROOT / "config", [])
    cands = import_cases(shared_data / "euvsdisinfo_cases.csv", cat, keywords=["biolog", "laborator"], limit=40)
    assert 5 <= len(cands) <= 40
    bio = [c for c in cands if c.narrative_id == "us-biolabs"]
    assert len(bio) >= 3 and all(c.case_url.startswith("https://euvsdisinfo.eu/") for c in bio)
    counts = write_candidates(cands, tmp_path / "candidates")
    data = yaml.safe_load((tmp_path / "candidates" / "us-biolabs.yaml").read_text(encoding="utf-8"))
    assert data["narrative"] == "us-biolabs" and all(c["accept"] is False for c in data["candidates"])
    assert sum(counts.values()) == len(cands)
    assert all(c.narrative_id in {n.id for n in cat.narratives} | {UNASSIGNED} for c in cands)
