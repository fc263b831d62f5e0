"""docker/compose.yml: valid for docker-compose, every published port on 127.0.0.1, secrets from .env."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "compose.yml"
ENV = {"ELASTIC_PASSWORD": "test-password", "KIBANA_PASSWORD": "test-kibana"}


def _published(ports: list[object]) -> list[str]:
    out = []
    for p in ports:
        if isinstance(p, dict):  # long syntax (docker-compose config output)
            out.append(f"{p.get('host_ip', '')}:{p.get('published')}:{p.get('target')}")
        else:
            out.append(str(p))
    return out


def test_compose_yaml_binds_ports_to_loopback_and_uses_env_secrets() -> None:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    services = data["services"]
    assert {"elasticsearch", "narrawatch", "kibana"} <= set(services)
    for name, svc in services.items():
        for port in _published(svc.get("ports", [])):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    es = services["elasticsearch"]
    env = es["environment"]
    assert env["discovery.type"] == "single-node"
    assert env["xpack.security.enabled"] == "true"
    assert env["ELASTIC_PASSWORD"].startswith("${ELASTIC_PASSWORD")
    assert "Xmx" in env["ES_JAVA_OPTS"]
    assert "healthcheck" in es
    nw = services["narrawatch"]
    assert nw["depends_on"]["elasticsearch"]["condition"] == "service_healthy"
    assert nw["environment"]["NARRAWATCH_INDEX_BACKEND"] == "elasticsearch"
    assert nw["environment"]["NARRAWATCH_ES_URL"] == "http://elasticsearch:9200"
    assert nw["environment"]["NARRAWATCH_ES_PASSWORD"].startswith("${ELASTIC_PASSWORD")
    assert services["kibana"]["profiles"] == ["kibana"]
    for svc in services.values():  # every password is interpolated from the environment / .env
        for key, value in (svc.get("environment") or {}).items():
            if "PASSWORD" in key:
                assert str(value).startswith("${"), key


def test_env_example_lists_every_variable_compose_needs() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    example = (ROOT / "docker" / ".env.example").read_text(encoding="utf-8")
    names = {line.split("=", 1)[0] for line in example.splitlines() if line and not line.startswith("#")}
    used = set(re.findall(r"\$\{([A-Z_]+)", text))
    assert used <= names, used - names


def test_docker_compose_config_validates() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose not installed (apt-get install docker-compose)")
    result = subprocess.run(
        [binary, "-f", str(COMPOSE), "--profile", "kibana", "config"],
        capture_output=True,
        text=True,
        env={**os.environ, **ENV},
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    for name, svc in resolved["services"].items():
        for port in _published(svc.get("ports", [])):
            assert port.startswith("127.0.0.1:"), f"{name}: {port}"
    assert resolved["services"]["narrawatch"]["environment"]["NARRAWATCH_ES_PASSWORD"] == "test-password"


def test_docker_compose_refuses_to_start_without_password() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose not installed (apt-get install docker-compose)")
    if (ROOT / "docker" / ".env").exists():
        pytest.skip("docker/.env exists and supplies the password")
    env = {k: v for k, v in os.environ.items() if k not in ENV}
    result = subprocess.run(
        [binary, "-f", str(COMPOSE), "config"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0 and "ELASTIC_PASSWORD" in result.stderr
