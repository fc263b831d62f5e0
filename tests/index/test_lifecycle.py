"""Index lifecycle behind the seam: ``narrawatch index create|status|reindex`` on the embedded backend.

The CLI asks the backend's :class:`index.base.IndexLifecycle`; these tests drive both the
lifecycle and the command on real documents (tests/contract corpus).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from core.settings import load_config
from index.base import INDEX_BACKENDS, IndexLifecycle
from index.embed import HashingEmbedder
from index.local import EmbeddedIndex
from index.local_reindex import EmbeddedLifecycle
from narrawatch.backends import index_lifecycle
from narrawatch.cli import main
from tests.contract import embed, load_corpus

DOCS = load_corpus()


def _config_dir(tmp_path: Path) -> Path:
    root = tmp_path / "cfg"
    root.mkdir()
    (root / "service.yaml").write_text(
        yaml.safe_dump({"data_dir": str(tmp_path / "data"), "embedding": {"model": "hashing"}}), encoding="utf-8"
    )
    return root


def test_every_backend_offers_a_lifecycle(tmp_path: Path) -> None:
    config = load_config(_config_dir(tmp_path), require_sources=False)
    assert isinstance(index_lifecycle(config), EmbeddedLifecycle)
    assert callable(INDEX_BACKENDS.get("elasticsearch").lifecycle)  # the ES class, loaded on lookup


def test_create_status_reindex_embedded(tmp_path: Path) -> None:
    config = load_config(_config_dir(tmp_path), require_sources=False)
    life: IndexLifecycle = index_lifecycle(config)
    assert life.status() == {"backend": "embedded", "path": str(config.index_path), "embedding_space": None}
    old = HashingEmbedder(64)
    assert life.create(old.space) == str(config.index_path)
    with EmbeddedIndex(config.index_path, old.space) as idx:
        idx.upsert(embed(DOCS[:12], old))
    status = life.status()
    assert status["embedding_space"]["dim"] == 64 and status["stats"]["documents"] == 12
    assert status["consistency"]["documents"] == 12
    assert status["consistency"]["fulltext_passages"] == status["consistency"]["passages"]
    new = HashingEmbedder(256)
    done = life.reindex(new)
    assert done["documents"] == 12 and done["old_model"] == done["new_model"] == "hashing"
    assert Path(done["old_index_kept_at"]).is_dir()
    assert life.status()["embedding_space"]["dim"] == 256


def test_cli_index_commands_ask_the_lifecycle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config_dir(tmp_path)
    assert main(["--config", str(cfg), "index", "create"]) == 0
    path = capsys.readouterr().out.strip()
    assert path == str(load_config(cfg, require_sources=False).index_path)
    assert main(["--config", str(cfg), "index", "status"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["backend"] == "embedded" and status["stats"]["documents"] == 0
    assert status["embedding_space"]["model"] == "hashing"
