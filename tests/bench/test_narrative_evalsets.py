"""bench.narrative_evalsets: the time-split evaluation sets hold their promises on the real shared data.

Skipped (with the reason) when ``../shared/data`` (or ``$NARRAWATCH_SHARED_DATA``) is absent.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench import narrative_evalsets as ne
from core.errors import ConfigIssue
from monitors.catalogue import load_catalogue

SHARED = ne.shared_data_dir()
HAVE_DATA = all((SHARED / f).is_file() for f in (ne.CASES_WITH_TEXT_FILE, ne.CASES_FILE, ne.TELEGRAM_FILE))
needs_data = pytest.mark.skipif(not HAVE_DATA, reason=f"shared data folder not found at {SHARED}")

TEST_SPLITS = [s for s in ne.SPLITS if s not in ne.TRAIN_SPLITS]
MIN_TRAIN, MIN_TEST = 15, 8
KINDS = {"assertion", "debunk", "background", "claim"}


@pytest.fixture(scope="module")
def sets() -> dict[str, list[dict[str, Any]]]:
    if not HAVE_DATA:
        pytest.skip(f"shared data folder not found at {SHARED}")
    return ne.build_all(SHARED)


def _yaml_ids() -> dict[str, Path]:
    out = {}
    for path in sorted((ne.CATALOGUE_DIR / "narratives").glob("*.yaml")):
        out[yaml.safe_load(path.read_text(encoding="utf-8"))["id"]] = path
    return out


def test_tag_mapping_is_case_insensitive_and_ordered() -> None:
    assert ne.narratives_for_tags([" mh17", "Nazi/Fascist", "no such tag"]) == [
        "ukraine-nazi-regime",
        "mh17-not-russia",
    ]
    assert ne.narratives_for_tags(["MIGRATION"]) == ["migrants-destroying-europe"]
    assert ne.narratives_for_tags([]) == []


def test_subsample_is_even_and_deterministic() -> None:
    items = [{"i": i} for i in range(100)]
    picked = ne.subsample(items, 10)
    assert [p["i"] for p in picked] == list(range(0, 100, 10))
    assert ne.subsample(items, None) == items and ne.subsample(items, 500) == items and ne.subsample(items, 0) == []


def test_catalogue_loads_without_issues_and_matches_the_mapping() -> None:
    issues: list[ConfigIssue] = []
    cat = load_catalogue(ne.CATALOGUE_DIR, issues)
    # The catalogue carries one Russian exemplar per narrative, so the loader's (soon removed)
    # "'ru' exemplar required" rule is satisfied and no issue needs filtering.
    assert issues == []
    ids = {n.id for n in cat.narratives}
    assert ids == set(ne.NARRATIVE_TAGS) == set(_yaml_ids())
    assert 10 <= len(ids) <= 14
    for n in cat.narratives:
        assert n.thresholds is None, f"{n.id}: evaluation catalogue must not carry thresholds"
        assert 3 <= len(n.exemplars.get("en", ())) <= 5, n.id
        assert 2 <= len(n.counter_exemplars.get("en", ())) <= 3, n.id
    for nid, path in _yaml_ids().items():
        head = path.read_text(encoding="utf-8")
        assert path.stem == nid
        for tag in ne.NARRATIVE_TAGS[nid]:
            assert tag in head, f"{path.name}: header comment should list tag {tag!r}"


@needs_data
def test_items_are_well_formed(sets: dict[str, list[dict[str, Any]]]) -> None:
    assert list(sets) == list(ne.SPLITS)
    for name, items in sets.items():
        assert items, name
        for item in items:
            assert set(item) == {"text", "language", "narratives", "origin", "date", "kind"}
            assert item["kind"] in KINDS and item["language"] in ("en", "ru")
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", item["date"])
            assert item["text"].strip() == item["text"]
            assert all(n in ne.NARRATIVE_TAGS for n in item["narratives"])
            assert len(set(item["narratives"])) == len(item["narratives"])


@needs_data
def test_date_split_holds(sets: dict[str, list[dict[str, Any]]]) -> None:
    assert max(i["date"] for i in sets["euvsdisinfo-train"]) <= "2016-12-31"
    assert min(i["date"] for i in sets["euvsdisinfo-train"]) >= "2015-01-01"
    test = sets["euvsdisinfo-test"]
    assert min(i["date"] for i in test) >= "2017-01-01" and max(i["date"] for i in test) <= "2017-12-31"
    claims = sets["euvsdisinfo-claims-2018-2019"]
    assert min(i["date"] for i in claims) >= "2018-01-01" and max(i["date"] for i in claims) <= "2019-12-31"
    for name in TEST_SPLITS:
        assert min(i["date"] for i in sets[name]) >= "2017-01-01", name


@needs_data
def test_background_splits_are_disjoint_by_date(sets: dict[str, list[dict[str, Any]]]) -> None:
    bg_train, bg_test = sets["telegram-background-train"], sets["telegram-background-test"]
    assert max(i["date"] for i in bg_train) < "2024-11-15" <= min(i["date"] for i in bg_test)
    assert not {i["origin"] for i in bg_train} & {i["origin"] for i in bg_test}
    for item in (*bg_train, *bg_test):
        assert item["kind"] == "background" and item["narratives"] == [] and item["language"] == "ru"
        assert len(item["text"]) >= ne.POST_MIN_CHARS


@needs_data
def test_no_train_text_in_any_test_split(sets: dict[str, list[dict[str, Any]]]) -> None:
    train = {ne.normalise_text(i["text"]) for s in ne.TRAIN_SPLITS for i in sets[s]}
    for name in TEST_SPLITS:
        leaked = [i["origin"] for i in sets[name] if ne.normalise_text(i["text"]) in train]
        assert not leaked, f"{name}: {leaked[:5]}"
    for name, items in sets.items():
        counts = Counter(ne.normalise_text(i["text"]) for i in items)
        assert max(counts.values()) == 1, f"{name} has duplicate texts"


@needs_data
def test_debunks_are_unlabelled_and_assertions_come_with_them(sets: dict[str, list[dict[str, Any]]]) -> None:
    for name in ("euvsdisinfo-train", "euvsdisinfo-test"):
        kinds = Counter(i["kind"] for i in sets[name])
        assert set(kinds) == {"assertion", "debunk"} and kinds["debunk"] > 100, (name, kinds)
        for item in sets[name]:
            if item["kind"] == "debunk":
                assert item["narratives"] == [] and len(item["text"]) >= ne.DEBUNK_MIN_CHARS
                assert not re.search(r"https?://", item["text"])
        negatives = [i for i in sets[name] if i["kind"] == "assertion" and not i["narratives"]]
        assert len(negatives) > 100, f"{name}: few same-register negatives"
    assert {i["kind"] for i in sets["euvsdisinfo-claims-2018-2019"]} == {"claim"}


@needs_data
def test_every_narrative_has_enough_positives(sets: dict[str, list[dict[str, Any]]]) -> None:
    for split, floor in (("euvsdisinfo-train", MIN_TRAIN), ("euvsdisinfo-test", MIN_TEST)):
        counts = Counter(n for i in sets[split] if i["kind"] == "assertion" for n in i["narratives"])
        thin = {nid: counts[nid] for nid in ne.NARRATIVE_TAGS if counts[nid] < floor}
        assert not thin, f"{split}: fewer than {floor} positives: {thin}"
    claims = Counter(n for i in sets["euvsdisinfo-claims-2018-2019"] for n in i["narratives"])
    assert all(claims[nid] >= MIN_TEST for nid in ne.NARRATIVE_TAGS), claims


@needs_data
def test_origins_lead_back_to_the_source_rows(sets: dict[str, list[dict[str, Any]]]) -> None:
    with (SHARED / ne.CASES_WITH_TEXT_FILE).open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter=";"))
    for item in sets["euvsdisinfo-train"][::97] + sets["euvsdisinfo-test"][::53]:
        m = re.fullmatch(r"euvsdisinfo_2015_2017:row(\d+):issue=(\S+):(summary|disproof)", item["origin"])
        assert m, item["origin"]
        row = rows[int(m.group(1))]
        assert row["issue"].strip() == m.group(2)
        source = row["summary"] if m.group(3) == "summary" else row["disproof"]
        assert ne.normalise_text(item["text"].split("\n\n")[-1])[:60] in ne.normalise_text(source)
    claim = sets["euvsdisinfo-claims-2018-2019"][0]
    assert re.fullmatch(r"euvsdisinfo_cases:https://euvsdisinfo\.eu/\S+:title", claim["origin"])
    assert re.fullmatch(r"telegram_ru_posts:-?\d+/\d+", sets["telegram-background-test"][0]["origin"])


@needs_data
def test_exemplars_are_not_copied_from_the_sets(sets: dict[str, list[dict[str, Any]]]) -> None:
    cat = load_catalogue(ne.CATALOGUE_DIR, [])
    texts = {ne.normalise_text(i["text"]) for items in sets.values() for i in items}
    for n in cat.narratives:
        for _, text in (*n.all_exemplars(), *n.all_counter_exemplars()):
            key = ne.normalise_text(text)
            assert not any(key in t for t in texts), f"{n.id}: exemplar found in an eval text: {text!r}"


@needs_data
def test_cli_writes_splits_and_manifest_with_a_small_background(tmp_path: Path) -> None:
    assert ne.main(["--out", str(tmp_path), "--limit-background", "50"]) == 0
    meta = json.loads((tmp_path / "MANIFEST.json").read_text(encoding="utf-8"))
    assert set(meta["splits"]) == set(ne.SPLITS) and meta["narrative_tags"].keys() == ne.NARRATIVE_TAGS.keys()
    assert all(len(v["sha256"]) == 64 for v in meta["sources"].values())
    for name in ne.SPLITS:
        lines = (tmp_path / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(lines) == meta["splits"][name]["items"]
        if name.startswith("telegram"):
            assert len(lines) == 50
            dates = [json.loads(line)["date"] for line in lines]
            assert dates == sorted(dates)
    again = ne.build_all(SHARED, limit_background=50)
    assert [i["origin"] for i in again["telegram-background-train"]] == [
        json.loads(line)["origin"]
        for line in (tmp_path / "telegram-background-train.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    # spread over time, not just the first 50 posts
    assert again["telegram-background-train"][-1]["date"] >= "2024-10-01"
