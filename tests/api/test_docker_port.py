"""The container's port: compose publishes what the service listens on, and it listens on all interfaces.

Before: docker/compose.yml published ``127.0.0.1:8080:8080`` while ``narrawatch run`` listened on
``127.0.0.1:8765`` inside the container (the mounted config's ``api`` section, or its defaults),
so the UI was unreachable twice over (wrong port, and loopback inside the container's own network
namespace). The entrypoint is run for real here (with the repository's shipped config) and the
effective configuration it writes is loaded with ``load_config``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from core.settings import ApiSettings, load_config
from narrawatch.server import DEFAULT_PORT

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
VENV_BIN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"


def _dockerfile_env() -> dict[str, str]:
    text = (DOCKER / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            env.update(dict(re.findall(r"([A-Z_][A-Z0-9_]*)=(\S+)", line)))
    return env


def _compose_port() -> tuple[str, str, int]:
    """(host ip, published port with its default, container port) of the narrawatch service."""
    compose = yaml.safe_load((DOCKER / "compose.yml").read_text(encoding="utf-8"))
    (port,) = compose["services"]["narrawatch"]["ports"]
    m = re.fullmatch(r"([0-9.]+):(\$\{[^}]+\}|\d+):(\d+)", str(port))
    assert m is not None, port
    return m.group(1), m.group(2), int(m.group(3))


def test_compose_dockerfile_and_service_agree_on_the_port() -> None:
    env = _dockerfile_env()
    host_ip, published, target = _compose_port()
    assert host_ip == "127.0.0.1"  # the published port stays on the host's loopback
    assert env["NARRAWATCH_API_HOST"] == "0.0.0.0"  # reachable through port publishing
    assert int(env["NARRAWATCH_API_PORT"]) == target == DEFAULT_PORT == ApiSettings().port
    dockerfile = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(rf"^EXPOSE {target}$", dockerfile, re.M)
    health = dockerfile[dockerfile.index("HEALTHCHECK") :]
    assert "NARRAWATCH_API_PORT" in health and "8080" not in health
    m = re.fullmatch(r"\$\{NARRAWATCH_HTTP_PORT:-(\d+)\}", published)
    assert m is not None, published  # the host side is configurable in docker/.env ...
    example = (DOCKER / ".env.example").read_text(encoding="utf-8")
    assert f"NARRAWATCH_HTTP_PORT={m.group(1)}" in example  # ... and documented with its default


@pytest.mark.timeout(120)
def test_entrypoint_makes_the_service_listen_where_compose_publishes(tmp_path: Path) -> None:
    if not (VENV_BIN / "narrawatch").exists():
        pytest.skip(f"no narrawatch console script in {VENV_BIN}")
    source = tmp_path / "mounted"
    shutil.copytree(ROOT / "config", source, ignore=shutil.ignore_patterns("learned"))
    service = yaml.safe_load((source / "service.yaml").read_text(encoding="utf-8")) or {}
    service["api"] = {"host": "127.0.0.1", "port": 9000}  # whatever the mounted config says
    (source / "service.yaml").write_text(yaml.safe_dump(service, allow_unicode=True), encoding="utf-8")
    effective = tmp_path / "run" / "config"
    env = {
        "PATH": f"{VENV_BIN}{os.pathsep}/usr/bin:/bin",
        "HOME": str(tmp_path),
        "NARRAWATCH_CONFIG_SOURCE": str(source),
        "NARRAWATCH_RUNTIME_CONFIG": str(effective),
        "NARRAWATCH_DATA_DIR": str(tmp_path / "data"),
        **{k: v for k, v in _dockerfile_env().items() if k.startswith("NARRAWATCH_API_")},
    }
    result = subprocess.run(
        ["sh", str(DOCKER / "entrypoint.sh"), "config", "check"],
        capture_output=True,
        text=True,
        env=env,
        timeout=110,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok:"), result.stdout
    api = load_config(effective).service.api
    _, _, target = _compose_port()
    assert (api.host, api.port) == ("0.0.0.0", target)
    # the mounted directory itself is untouched
    assert yaml.safe_load((source / "service.yaml").read_text(encoding="utf-8"))["api"]["port"] == 9000
