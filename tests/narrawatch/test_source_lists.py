"""Source list import/export (narrawatch.source_lists): CSV and OPML through the config's own models,
per-row errors, the plan (added / changed / unchanged / blocked), the managed include files, and
hostile XML. Lists: tests/data/source_lists (real outlets and feed URLs, see ORIGIN.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from core.errors import ConfigError, InvalidRequestError
from core.settings import Config, load_config
from narrawatch.builtins import register_builtins
from narrawatch.source_lists import (
    apply_plan,
    entry_of,
    export_csv,
    export_opml,
    managed_dir,
    plan_import,
)

LISTS = Path(__file__).resolve().parents[1] / "data" / "source_lists"

OPERATOR_YAML = """\
# Operator's sources: this comment must survive every import.
sources:
  - id: meduza            # Meduza, Riga
    kind: feed
    url: https://meduza.io/rss/all
    actor: exile_media
"""


@pytest.fixture
def config(tmp_path: Path) -> Config:
    register_builtins()
    (tmp_path / "sources.yaml").write_text(OPERATOR_YAML, encoding="utf-8")
    (tmp_path / "service.yaml").write_text("data_dir: data\n", encoding="utf-8")
    return load_config(tmp_path)


def test_opml_from_a_feed_reader_becomes_feed_sources(config: Config) -> None:
    plan = plan_import(config, (LISTS / "feeds.opml").read_bytes(), "feeds.opml")
    assert plan.ok, plan.issues
    added = {s.id: s for s in plan.added}
    assert sorted(added) == ["onliner", "pravda.com.ua", "tut.by"]
    onliner = added["onliner"]
    assert onliner.kind == "feed" and onliner.url == "http://www.onliner.by/feed"
    assert onliner.outlet == "Onliner" and onliner.tags == ("belarus", "tech", "Russian-language")
    assert added["pravda.com.ua"].tags == ("Ukrainian",)
    # Meduza is configured already (same URL, other id): reported, not added twice.
    assert [str(b) for b in plan.blocked] == [
        "feeds.opml:outline 1: meduza: defined in sources.yaml, which narrawatch never rewrites; edit it there"
    ]


def test_csv_rows_validate_through_the_source_models_with_row_numbers(config: Config, tmp_path: Path) -> None:
    good = (LISTS / "sources.csv").read_text(encoding="utf-8")
    bad = good + (
        "rt,telegram,,rt_russian,RT,kremlin,RU,,ru,\n"  # unknown actor
        "ria2,feed,ftp://ria.ru/export/rss2/index.xml,,РИА,state_media,ru,,ru,\n"  # bad URL, lower-case country
        "x,carrier-pigeon,,,,,,,,\n"
        "tutby,feed,https://news.tut.by/rss/all.rss,,TUT.BY,independent,BY,,ru,\n"  # duplicate id in the file
    )
    plan = plan_import(config, bad.encode(), "list.csv")
    assert not plan.ok
    issues = [str(i) for i in plan.issues]
    assert any(i.startswith("list.csv:row 6: actor: Input should be 'state_media'") for i in issues), issues
    assert any(i.startswith("list.csv:row 7: url: not an http(s) URL") for i in issues), issues
    assert any(i.startswith("list.csv:row 7: country: String should match pattern") for i in issues), issues
    assert any(i.startswith("list.csv:row 8: kind: unknown source kind 'carrier-pigeon'") for i in issues), issues
    assert "list.csv:row 9: id: duplicate id 'tutby' (also at row 3)" in issues
    with pytest.raises(InvalidRequestError):
        apply_plan(config, plan)
    assert not managed_dir(config).exists() or not list(managed_dir(config).glob("*.yaml"))


def test_import_writes_a_managed_include_and_keeps_operator_yaml(config: Config) -> None:
    plan = plan_import(config, (LISTS / "sources.csv").read_bytes(), "sources.csv")
    assert plan.ok, plan.issues
    assert sorted(s.id for s in plan.added) == ["bbcrussian", "rian", "tutby"]
    assert plan.unchanged == () and len(plan.blocked) == 1  # meduza: the operator's file, different owner
    assert "meduza: defined in sources.yaml, which narrawatch never rewrites" in str(plan.blocked[0])
    lines = plan.lines()
    assert "+ rian (telegram: telegram:channel=rian_ru)" in lines

    target = apply_plan(config, plan)
    assert target == config.data_dir / "sources.d" / "imported.yaml"
    assert (config.root / "sources.yaml").read_text(encoding="utf-8") == OPERATOR_YAML
    again = load_config(config.root)
    rian = again.source("rian")
    assert (rian.actor, rian.country, rian.owner, rian.tags) == (
        "state_media",
        "RU",
        "Rossiya Segodnya",
        ("state", "agency"),
    )
    assert again.source("bbcrussian").outlet == "Би-би-си"
    assert target in again.files
    # Re-importing the same list changes nothing; an edited row is a change of the managed entry.
    assert plan_import(again, (LISTS / "sources.csv").read_bytes(), "sources.csv").added == ()
    edited = (LISTS / "sources.csv").read_text(encoding="utf-8").replace("Rossiya Segodnya", "MIA Rossiya Segodnya")
    plan2 = plan_import(again, edited.encode(), "sources.csv")
    assert [new.id for _, new in plan2.changed] == ["rian"] and set(plan2.unchanged) == {"tutby", "bbcrussian"}
    assert plan2.lines()[0] == "~ rian: owner: 'Rossiya Segodnya' -> 'MIA Rossiya Segodnya'"
    apply_plan(again, plan2)
    assert load_config(config.root).source("rian").owner == "MIA Rossiya Segodnya"
    stored = yaml.safe_load(target.read_text(encoding="utf-8"))["sources"]
    assert [e["id"] for e in stored] == ["tutby", "bbcrussian", "rian"]  # kept in place


def test_a_plan_that_breaks_the_config_is_rolled_back(config: Config) -> None:
    plan = plan_import(config, b"id,kind,url\nnew1,feed,https://example.org/rss\n", "a.csv")
    apply_plan(config, plan)
    # Someone adds the same id to the operator's file meanwhile: the next write must not stick.
    (config.root / "sources.yaml").write_text(
        OPERATOR_YAML + "  - {id: new2, kind: feed, url: 'https://example.net/rss'}\n", encoding="utf-8"
    )
    later = plan_import(config, b"id,kind,url\nnew2,feed,https://example.com/rss\n", "b.csv")
    before = (managed_dir(config) / "imported.yaml").read_text(encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        apply_plan(config, later)
    assert "duplicate id 'new2'" in str(err.value.issues)
    assert (managed_dir(config) / "imported.yaml").read_text(encoding="utf-8") == before


def test_export_round_trips_through_import(config: Config) -> None:
    apply_plan(config, plan_import(config, (LISTS / "sources.csv").read_bytes(), "sources.csv"))
    full = load_config(config.root)
    for text, name in ((export_csv(full.sources), "x.csv"), (export_opml(full.sources), "x.opml")):
        plan = plan_import(full, text.encode(), name)
        assert plan.ok and plan.added == () and plan.changed == () and plan.blocked == (), plan.lines()
        assert sorted(plan.unchanged) == sorted(s.id for s in full.sources)
    csv_text = export_csv(full.sources)
    assert csv_text.splitlines()[0].startswith("id,kind,outlet,actor,country,owner,language,tags,enabled,every")
    assert "rian,telegram,РИА Новости,state_media,RU,Rossiya Segodnya,ru,state;agency" in csv_text
    opml = export_opml(full.sources)
    assert 'xmlUrl="https://meduza.io/rss/all"' in opml and 'narrawatch:actor="exile_media"' in opml
    # Into an empty config they are all new, with their metadata.
    (config.root / "sources.yaml").write_text("sources: []\n", encoding="utf-8")
    for path in managed_dir(config).glob("*.yaml"):
        path.unlink()
    empty = load_config(config.root)
    plan = plan_import(empty, opml.encode(), "x.opml")
    assert {entry_of(s)["id"]: entry_of(s) for s in plan.added} == {
        entry_of(s)["id"]: entry_of(s) for s in full.sources
    }


@pytest.mark.parametrize(
    "body",
    [
        # billion laughs
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        '<opml version="2.0"><body><outline text="&lol2;" xmlUrl="https://a.example/rss"/></body></opml>',
        # external entity (file read)
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        '<opml version="2.0"><body><outline text="&xxe;" xmlUrl="https://a.example/rss"/></body></opml>',
    ],
)
def test_hostile_opml_is_refused(config: Config, body: str) -> None:
    plan = plan_import(config, body.encode(), "evil.opml")
    assert not plan.ok and plan.added == ()
    assert "refused" in str(plan.issues[0]) and "root:" not in str(plan.issues[0])


def test_not_opml_and_not_utf8_are_clear_errors(config: Config) -> None:
    assert str(plan_import(config, b"<rss><channel/></rss>", "a.opml").issues[0]) == (
        "a.opml: not an OPML document (root element <rss>)"
    )
    assert "not UTF-8" in str(plan_import(config, "id,kind\nx,feed\n".encode("utf-16"), "a.csv").issues[0])
    assert "not well-formed" in str(plan_import(config, b"<opml><body>", "a.opml").issues[0])
