"""The demo runs the shipped catalogue and its learned state (a path slip once left it with none:
the demo then matched nothing and printed no matches or alerts, and exited 0)."""

from __future__ import annotations

from pathlib import Path

from monitors.catalogue import load_catalogue
from narrawatch.builtins import register_builtins
from narrawatch.demo import write_demo_config
from narrawatch.demo.run import SHIPPED_CONFIG

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config"


def test_demo_config_carries_the_shipped_catalogue_and_learned_state(tmp_path: Path) -> None:
    register_builtins()
    assert SHIPPED_CONFIG == REPO_CONFIG
    cfg = write_demo_config(tmp_path, "http://127.0.0.1:9", ["bbcrussian"], ["meduza_all_2026-09-24.rss"])
    shipped = load_catalogue(REPO_CONFIG)
    demo = load_catalogue(cfg)
    assert shipped.enabled and [n.id for n in demo.enabled] == [n.id for n in shipped.enabled]
    learned = sorted(p.name for p in (cfg / "learned").iterdir())
    assert learned == sorted(p.name for p in (REPO_CONFIG / "learned").iterdir()) and learned
