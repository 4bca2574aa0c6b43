"""Every HUMANSEG_* name in the ops files is one core.settings really reads."""

from __future__ import annotations

import re

import pytest

from .conftest import REPO

NAME = re.compile(r"\bHUMANSEG_[A-Z0-9_]+\b")
OPS_FILES = ["compose.yaml", ".env.example", "Dockerfile.web", "Dockerfile.worker",
             ".github/workflows/ci.yml", ".github/workflows/release.yml",
             ".github/workflows/deploy.yml", "docs/docker.md", "docs/deploy.md"]
# Names read by the test suite, not by Settings (CI sets them).
TEST_ONLY = {"HUMANSEG_TEST_DATABASE_URL", "HUMANSEG_TEST_BROKER_URL"}


def _assignments(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value
    return out


@pytest.mark.parametrize("relpath", OPS_FILES)
def test_every_humanseg_name_is_a_setting(relpath, settings_env_names):
    path = REPO / relpath
    if not path.exists():
        pytest.fail(f"{relpath} is missing")
    unknown = set(NAME.findall(path.read_text())) - settings_env_names - TEST_ONLY
    assert not unknown, f"{relpath} uses names core.settings never reads: {sorted(unknown)}"


def test_env_example_documents_every_setting(settings_env_names):
    text = (REPO / ".env.example").read_text()
    missing = sorted(n for n in settings_env_names if n not in text)
    assert not missing, f".env.example does not mention {missing}"


def test_env_example_lines_are_plain_assignments():
    """KEY=value lines only: Compose's env_file and `set -a; . .env` both read it."""
    for n, line in enumerate((REPO / ".env.example").read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*=\S*", line), f".env.example:{n}: {line!r}"


def test_env_example_values_build_settings(compose_resolved):
    """The documented values parse (ints are ints), as Compose hands them over."""
    from humanseg.core.settings import Settings

    env = {k: v or "" for k, v in compose_resolved["services"]["web"]["environment"].items()}
    raw = _assignments((REPO / ".env.example").read_text())
    assert {k for k in raw if k.startswith("HUMANSEG_")} <= set(env)
    settings = Settings.from_env(env)
    assert settings.effective_concurrency() >= 1 and settings.max_files > 0
