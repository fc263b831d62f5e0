"""Config loading: every problem reported as file:path: message, unknown keys rejected."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from core.errors import ConfigError, UnknownNameError
from core.settings import FeedSource, SiteSource, TelegramSource, load_config, parse_duration

ROOT = Path(__file__).resolve().parents[2]


def write(dir_: Path, name: str, text: str) -> None:
    (dir_ / name).parent.mkdir(parents=True, exist_ok=True)
    (dir_ / name).write_text(text, encoding="utf-8")


def issues_of(dir_: Path) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        load_config(dir_)
    return [str(i) for i in exc.value.issues]


def test_minimal_shape_from_the_issue_loads(tmp_path: Path) -> None:
    write(
        tmp_path,
        "sources.yaml",
        """
sources:
  - {id: meduza, kind: feed, url: "https://meduza.io/rss/all", language: ru, every: 15m}
  - {id: rian_ru, kind: telegram, channel: rian_ru, every: 10m}
  - {id: asiaplus, kind: site, start_urls: ["https://asiaplustj.info/ru/news"], allow: ["/ru/news/"], every: 1h}
""",
    )
    cfg = load_config(tmp_path)
    feed, tg, site = cfg.sources
    assert isinstance(feed, FeedSource) and feed.every == timedelta(minutes=15) and feed.language == "ru"
    assert isinstance(tg, TelegramSource) and tg.base_url == "https://t.me" and tg.channel == "rian_ru"
    assert isinstance(site, SiteSource) and site.allow == ("/ru/news/",) and site.every == timedelta(hours=1)
    assert cfg.data_dir == tmp_path / "data"


def test_sources_folder_and_duplicate_ids(tmp_path: Path) -> None:
    write(tmp_path, "sources/a.yaml", "sources:\n  - {id: x, kind: telegram, channel: abc}\n")
    write(tmp_path, "sources/b.yaml", "sources:\n  - {id: x, kind: telegram, channel: abcd}\n")
    assert issues_of(tmp_path) == ["sources/b.yaml:sources[0].id: duplicate id 'x' (also in sources/a.yaml)"]


def test_every_problem_is_reported_with_file_and_path(tmp_path: Path) -> None:
    write(
        tmp_path,
        "sources.yaml",
        "sources:\n"
        '  - {id: a, kind: feed, url: "ftp://x", every: 5q, pasword: 1}\n'
        "  - {id: b, kind: rss}\n"
        "  - {kind: telegram, channel: ok_channel}\n",
    )
    write(tmp_path, "service.yaml", "crawl: {bogus: 1}\nindex: {elasticsearch: {password: hunter2}}\n")
    got = issues_of(tmp_path)
    assert "sources.yaml:sources[0].url: not an http(s) URL: 'ftp://x'" in got
    assert any(i.startswith("sources.yaml:sources[0].every: invalid duration '5q'") for i in got)
    assert "sources.yaml:sources[0].pasword: unknown key" in got
    assert (
        "sources.yaml:sources[1].kind: unknown source kind 'rss'; known: feed, rutube, site, telegram, vk, youtube"
        in got
    )
    assert "sources.yaml:sources[2].id: Field required" in got
    assert "service.yaml:crawl.bogus: unknown key" in got
    assert any(
        i.startswith("service.yaml:index.elasticsearch.password: unknown key (secrets are read from environment")
        for i in got
    )
    assert len(got) == 7


def test_invalid_yaml_reports_line(tmp_path: Path) -> None:
    write(tmp_path, "sources.yaml", "sources:\n  - {id: a, kind: feed\n")
    (issue,) = issues_of(tmp_path)
    assert issue.startswith("sources.yaml:line ") and "invalid YAML" in issue


def test_bad_regex_in_allow(tmp_path: Path) -> None:
    write(tmp_path, "sources.yaml", 'sources:\n  - {id: s, kind: site, start_urls: ["https://a.b/"], allow: ["(["]}\n')
    (issue,) = issues_of(tmp_path)
    assert issue.startswith("sources.yaml:sources[0].allow: invalid regular expression '(['")


def test_unknown_source_lookup_lists_ids(tmp_path: Path) -> None:
    write(tmp_path, "sources.yaml", "sources:\n  - {id: one, kind: telegram, channel: abc}\n")
    cfg = load_config(tmp_path)
    with pytest.raises(UnknownNameError, match="unknown source 'two'; known: one"):
        cfg.source("two")


@pytest.mark.parametrize(
    ("text", "seconds"), [("15m", 900), ("1h30m", 5400), ("2.5s", 2.5), ("7d", 604800), (30, 30), ("500ms", 0.5)]
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("bad", ["", "15", "m", "1x", "-5m", True, -1])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_shipped_catalogue_is_valid() -> None:
    cfg = load_config(ROOT / "config")
    kinds = {s.kind for s in cfg.sources}
    assert kinds == {"feed", "site", "telegram"}
    assert len(cfg.sources) >= 30


def test_parse_when_accepts_iso_and_durations() -> None:
    from datetime import UTC, datetime

    from core.settings import parse_when

    now = datetime(2024, 11, 30, 12, 0, tzinfo=UTC)
    assert parse_when("7d", now) == datetime(2024, 11, 23, 12, 0, tzinfo=UTC)
    assert parse_when("2024-11-01", now) == datetime(2024, 11, 1, tzinfo=UTC)
    assert parse_when("2024-11-01T10:00:00Z", now) == datetime(2024, 11, 1, 10, tzinfo=UTC)
    assert parse_when("2024-11-01T12:00:00+02:00", now) == datetime(2024, 11, 1, 10, tzinfo=UTC)
    assert parse_when("", now) is None and parse_when(None, now) is None
    with pytest.raises(ValueError, match="neither an ISO date/time nor a duration"):
        parse_when("yesterday", now)
