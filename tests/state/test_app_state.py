"""The App opens every state store through ``state.backend``: two Apps on one backend (two
workers) see the same crawl state, rules, tokens and locks; on PostgreSQL nothing is in data_dir."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from alerts.config import RuleSettings
from core.settings import load_config
from narrawatch.app import App
from narrawatch.state import DETECTOR_LOCK

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _config(root: Path, engine: str) -> Path:
    cfg = root / "config"
    cfg.mkdir()
    service: dict[str, object] = {"data_dir": "../data", "embedding": {"model": "hashing"}}
    if engine == "postgresql":
        service["state"] = {"backend": "postgresql", "postgresql": {"schema_name": f"t_{uuid.uuid4().hex[:12]}"}}
    (cfg / "service.yaml").write_text(yaml.safe_dump(service), encoding="utf-8")
    return cfg


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_two_apps_share_state(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if engine == "postgresql":
        request.getfixturevalue("pg_url")  # exports NARRAWATCH_PG_URL
    config = load_config(_config(tmp_path, engine), require_sources=False)
    one, two = App(config), App(config)
    try:
        assert one.state_backend.name == engine
        one.state.schedule({"feed": T0})
        assert [x.source_id for x in two.state.claim_due("w2", T0, 60, limit=5)] == ["feed"]
        one.rules.create(RuleSettings.model_validate({"id": "r1", "detector": "recurrence"}), by="ana", now=T0)
        assert [s.rule.id for s in two.rules.rules()] == ["r1"]
        token = one.tokens.create("bot", "read")
        info = two.tokens.verify(token)
        assert info is not None and info.role == "read"
        assert one.outbox is not None and one.matches is not None
        held = one.lock(DETECTOR_LOCK)
        other = two.lock(DETECTOR_LOCK)
        try:
            assert held.acquire() and not other.acquire()
            held.release()
            assert other.acquire()
        finally:
            held.close()
            other.close()
    finally:
        one.close()
        two.close()
    data = tmp_path / "data"
    files = {p.name for p in data.rglob("*.sqlite")} | {p.name for p in data.rglob("*.db")}
    if engine == "postgresql":
        assert files == set(), files  # every store is on the shared schema
    else:
        assert {"state.db", "rules.sqlite", "tokens.sqlite", "matches.sqlite", "outbox.sqlite"} <= files
