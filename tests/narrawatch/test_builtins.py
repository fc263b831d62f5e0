"""Built-ins are registered explicitly by the composition root, never by importing a module."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.settings import FeedSource, TelegramSource, load_config
from narrawatch.builtins import register_builtins

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
import alerts.channels, alerts.config, crawlers.sources, index.builtins, index.embedders, index.local
import monitors.catalogue, monitors.detectors, narrawatch.backends
from alerts.channels import CHANNEL_KINDS
from core.events import DETECTORS
from core.settings import SOURCE_KINDS, _SECTION_LOADERS, load_config
from index.base import INDEX_BACKENDS
from index.embed import EMBEDDERS

def names():
    return {
        "sources": SOURCE_KINDS.names(), "detectors": DETECTORS.names(), "channels": CHANNEL_KINDS.names(),
        "backends": INDEX_BACKENDS.names(), "embedders": EMBEDDERS.names(), "sections": list(_SECTION_LOADERS),
    }

before = names()
from narrawatch.builtins import register_builtins
register_builtins()
register_builtins()
config = load_config(sys.argv[1])
print(json.dumps({"before": before, "after": names(), "extra": sorted(config.extra),
                  "elasticsearch": "elasticsearch" in sys.modules, "scrapy": "scrapy" in sys.modules,
                  "psycopg": "psycopg" in sys.modules}))
"""


def _config(tmp_path: Path, kind: str = "telegram") -> Path:
    (tmp_path / "sources.yaml").write_text(
        f"sources:\n  - {{id: ch, kind: {kind}, channel: readovkanews}}\n", encoding="utf-8"
    )
    return tmp_path


@pytest.mark.timeout(120)
def test_importing_registers_nothing_the_root_registers_everything(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(_config(tmp_path))],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert all(v == [] for v in got["before"].values()), got["before"]
    after = got["after"]
    assert after["sources"] == ["feed", "rutube", "site", "telegram", "vk", "youtube"]
    assert after["detectors"] == [
        "coordinated_burst",
        "deleted_after_spread",
        "new_language",
        "new_outlet",
        "query",
        "recurrence",
        "source_silence",
        "spike",
    ]
    assert after["channels"] == ["email", "slack", "telegram", "webhook"]
    assert after["backends"] == ["elasticsearch", "embedded", "postgresql"]
    assert {"hashing", "use-multilingual-v3", "sentence-transformers"} <= set(after["embedders"])
    assert after["sections"] == ["alerts", "narratives"] and got["extra"] == ["alerts", "narratives"]
    # Listing the backends and loading a config import neither Elasticsearch's client, psycopg nor Scrapy.
    assert got["elasticsearch"] is False and got["scrapy"] is False and got["psycopg"] is False


def test_register_builtins_is_idempotent() -> None:
    register_builtins()
    register_builtins()


def test_unknown_source_kind_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(_config(tmp_path, kind="gopher"))
    assert "unknown source kind 'gopher'; known: feed, rutube, site, telegram, vk, youtube" in str(exc.value)


def test_default_outlet_is_a_property_of_the_source_kind() -> None:
    tg = TelegramSource(id="ch", channel="readovkanews")
    assert tg.default_outlet == "t.me/readovkanews" and tg.outlet_label == "t.me/readovkanews"
    assert TelegramSource(id="ch", channel="readovkanews", outlet="Readovka").outlet_label == "Readovka"
    feed = FeedSource(id="bbc", url="https://feeds.bbci.co.uk/news/rss.xml")
    assert feed.default_outlet == "" and feed.outlet_label == "bbc"  # documents carry their host
