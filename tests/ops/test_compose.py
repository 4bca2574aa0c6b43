"""compose.yaml: schema-valid, resolvable by real Compose, wired and scalable."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from .conftest import APP_SERVICES, REPO, _compose_cmd

ONE_SHOTS = {"migrate", "minio-setup"}
# Long-running services allowed without a healthcheck, and why.
NO_HEALTHCHECK_OK = {"sweeper": "a sleep loop with no port or Celery node to probe"}


def _check_jsonschema(schema: str, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
        capture_output=True, text=True, timeout=120, check=False)


def test_compose_matches_vendored_compose_spec_schema():
    proc = _check_jsonschema("vendor.compose-spec", REPO / "compose.yaml")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_compose_schema_check_rejects_a_broken_file(tmp_path):
    """Control: the same check fails on a compose file with a bad key."""
    bad = tmp_path / "compose.yaml"
    bad.write_text(yaml.safe_dump({"services": {"web": {"image": "x", "healthcheck": {"tset": 1}}}}))
    proc = _check_jsonschema("vendor.compose-spec", bad)
    assert proc.returncode != 0


def test_real_compose_resolves_all_profiles(compose_resolved):
    expected = {"redis", "postgres", "minio", "minio-setup", "migrate", "web", "worker",
                "worker-gpu", "sweeper", "flower"}
    assert expected <= set(compose_resolved["services"])


def _env(compose_resolved, service: str) -> dict[str, str]:
    return {k: v or "" for k, v in compose_resolved["services"][service].get("environment", {}).items()}


def _resolve(tmp: Path, dot_env: str | None, *extra: Path) -> dict:
    """compose.yaml (plus extra files) resolved by real Compose as a checkout in tmp would be:
    .env.example beside it, and .env only when dot_env is given."""
    shutil.copy(REPO / "compose.yaml", tmp / "compose.yaml")
    shutil.copy(REPO / ".env.example", tmp / ".env.example")
    if dot_env is not None:
        (tmp / ".env").write_text(dot_env)
    files = [arg for f in (tmp / "compose.yaml", *extra) for arg in ("-f", str(f))]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("COMPOSE_", "DOCKER_", "HUMANSEG_", "POSTGRES_", "MINIO_", "WEB_"))}
    env["COMPOSE_TEST_S3_IMAGE"] = "localhost/s3-stand-in:test"
    proc = subprocess.run([*_compose_cmd(), "--project-directory", str(tmp), *files,
                           "--profile", "gpu", "--profile", "monitoring", "config", "--format", "json"],
                          capture_output=True, text=True, env=env, timeout=60, check=False)
    assert proc.returncode == 0, f"docker compose config failed:\n{proc.stderr}"
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def compose_fresh(tmp_path_factory) -> dict:
    """A fresh checkout: no .env at all (`docker compose up` must work as it is)."""
    return _resolve(tmp_path_factory.mktemp("fresh"), None)


@pytest.fixture(scope="module")
def compose_one_line_env(tmp_path_factory) -> dict:
    """A .env holding only the lines someone changed: here the database password."""
    return _resolve(tmp_path_factory.mktemp("oneline"), "POSTGRES_PASSWORD=s3cret-from-dot-env\n")


@pytest.fixture(params=["copied-env", "fresh-checkout", "one-line-env"])
def any_resolution(request) -> dict:
    return request.getfixturevalue(
        {"copied-env": "compose_resolved", "fresh-checkout": "compose_fresh",
         "one-line-env": "compose_one_line_env"}[request.param])


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_services_are_wired_to_the_bundled_backends(any_resolution, service):
    from humanseg.core.settings import Settings

    compose_resolved = any_resolution
    env = _env(compose_resolved, service)
    settings = Settings.from_env(env)  # also proves every value parses
    services = compose_resolved["services"]

    db = urlsplit(settings.database_url)
    assert db.scheme.startswith("postgresql"), settings.database_url
    assert db.hostname == "postgres" and db.hostname in services
    pg = services["postgres"]["environment"]
    assert (db.username, db.password, db.path.lstrip("/")) == (
        pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], pg["POSTGRES_DB"]
    ), "HUMANSEG_DATABASE_URL must use the postgres service's credentials"

    broker = urlsplit(settings.broker_url)
    assert broker.scheme == "redis" and broker.hostname == "redis" and "redis" in services

    assert settings.storage == "s3"
    s3 = urlsplit(settings.s3_endpoint_url)
    assert s3.hostname == "minio" and s3.port == 9000 and "minio" in services
    assert env["AWS_ACCESS_KEY_ID"] == services["minio"]["environment"]["MINIO_ROOT_USER"]
    assert env["AWS_SECRET_ACCESS_KEY"] == services["minio"]["environment"]["MINIO_ROOT_PASSWORD"]
    setup_env = services["minio-setup"]["environment"]
    assert setup_env["HUMANSEG_S3_BUCKET"] == settings.s3_bucket, "bucket made != bucket used"
    assert str(settings.data_dir) == "/data"
    # Empty secret: one random key kept in /data, which every container of the host shares.
    assert any(v["type"] == "volume" and v["target"] == "/data"
               for v in services[service].get("volumes", []))


def test_a_one_line_env_reaches_every_side(compose_one_line_env):
    """.env overrides .env.example line by line, and compose.yaml's ${...} sees the same value."""
    pg = compose_one_line_env["services"]["postgres"]["environment"]
    assert pg["POSTGRES_PASSWORD"] == "s3cret-from-dot-env"
    url = _env(compose_one_line_env, "web")["HUMANSEG_DATABASE_URL"]
    assert ":s3cret-from-dot-env@postgres:" in url


def test_fresh_checkout_publishes_on_loopback_only(compose_fresh):
    for name, svc in compose_fresh["services"].items():
        for port in svc.get("ports", []):
            assert port.get("host_ip") == "127.0.0.1", f"{name} publishes {port} beyond loopback"


def test_settings_come_from_the_example_then_dot_env(compose_raw):
    """Defaults from .env.example, yours from .env (later wins); neither is required, so a fresh
    checkout runs and a deployed host (which has only compose.yaml and .env) does too."""
    for name in APP_SERVICES:
        svc = compose_raw["services"][name]
        assert svc["env_file"] == [{"path": ".env.example", "required": False},
                                   {"path": ".env", "required": False}], name
        inline = [k for k in svc.get("environment", {}) if k.startswith("HUMANSEG_")]
        assert not inline, f"{name}: set {inline} in .env, not inline"


def test_compose_defaults_match_the_example(compose_raw):
    """compose.yaml's own ${VAR:-default}s (Compose reads only .env for them) equal .env.example's."""
    example = dict(line.split("=", 1) for line in (REPO / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    text = (REPO / "compose.yaml").read_text()
    defaults = re.findall(r"\$\{([A-Z_]+):?-([^}$]*)\}", text)
    checked = 0
    for name, default in defaults:
        if name in example and name not in ("WEB_IMAGE", "WORKER_IMAGE", "IMAGE_TAG"):
            assert example[name] == default, f"{name}: compose.yaml says {default!r}, .env.example {example[name]!r}"
            checked += 1
    assert checked >= 5


def test_app_processes_run_under_an_init(compose_resolved):
    """PID 1 Python ignores SIGTERM: every `down` or restart would wait out the stop timeout."""
    for name in APP_SERVICES:
        assert compose_resolved["services"][name].get("init") is True, name


def test_healthchecks_with_spaces_are_one_shell_string(compose_raw):
    """Podman's Docker API (4.3) splits CMD arguments at spaces: `python -c "a b"` breaks there."""
    for name, svc in compose_raw["services"].items():
        test = (svc.get("healthcheck") or {}).get("test") or []
        if test and test[0] == "CMD":
            assert not any(" " in arg for arg in test[1:]), f"{name}: use CMD-SHELL"


def test_worker_healthcheck_names_the_kernel_hostname(compose_resolved):
    test = " ".join(compose_resolved["services"]["worker"]["healthcheck"]["test"])
    assert "/proc/sys/kernel/hostname" in test and "HOSTNAME" not in test


def test_compose_test_override_only_swaps_the_s3_server(tmp_path):
    """scripts/compose-test/compose.test.yaml (make compose-test) changes minio and minio-setup only."""
    override = REPO / "scripts" / "compose-test" / "compose.test.yaml"

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!reset", lambda loader, node: None)  # Compose's own tag
    assert set(yaml.load(override.read_text(), Loader=Loader)["services"]) == {"minio", "minio-setup"}
    merged = _resolve(tmp_path, None, override)["services"]
    assert merged["minio"]["image"] == merged["minio-setup"]["image"] == "localhost/s3-stand-in:test"
    assert not merged["minio"].get("ports")
    assert merged["web"]["image"].startswith("humanseg-web")


def test_make_and_ci_run_the_compose_test():
    make = (REPO / "Makefile").read_text()
    assert re.search(r"^compose-test:", make, re.MULTILINE)
    assert "scripts/compose_test.py" in make
    ci = (REPO / ".ci" / "run").read_text()
    assert "compose-test" in ci and "SKIPPED" in ci


def test_no_secret_literal_in_compose(compose_raw):
    for name, svc in compose_raw["services"].items():
        for key, value in (svc.get("environment") or {}).items():
            if any(word in key for word in ("PASSWORD", "SECRET", "AUTH")):
                assert str(value).startswith("${"), f"{name}.{key} must come from .env"


def test_long_running_services_have_healthchecks(compose_resolved):
    for name, svc in compose_resolved["services"].items():
        if name in ONE_SHOTS:
            assert svc.get("restart") == "no", f"{name} is a one-shot"
            continue
        assert svc.get("restart") == "unless-stopped", name
        hc = svc.get("healthcheck") or {}
        if name in NO_HEALTHCHECK_OK:
            continue
        assert not hc.get("disable") and hc.get("test"), f"{name} has no healthcheck"


def test_start_order_uses_health_and_completion_conditions(compose_resolved):
    services = compose_resolved["services"]

    def deps(name: str) -> dict[str, str]:
        return {k: v["condition"] for k, v in services[name].get("depends_on", {}).items()}

    want = {"redis": "service_healthy", "postgres": "service_healthy",
            "minio-setup": "service_completed_successfully",
            "migrate": "service_completed_successfully"}
    for name in ("web", "worker", "worker-gpu", "sweeper"):
        assert deps(name) == want, name
    assert deps("migrate") == {"postgres": "service_healthy"}
    assert deps("minio-setup") == {"minio": "service_healthy"}
    # Every service waited on as healthy really has a healthcheck.
    for name in services:
        for dep, cond in deps(name).items():
            if cond == "service_healthy":
                assert services[dep].get("healthcheck", {}).get("test"), dep


def test_migrate_runs_db_upgrade_once(compose_resolved):
    migrate = compose_resolved["services"]["migrate"]
    assert migrate["command"] == ["humanseg", "db", "upgrade"]
    assert migrate["build"]["dockerfile"] == "Dockerfile.web"


def test_redis_is_durable_and_never_evicts(compose_resolved):
    cmd = compose_resolved["services"]["redis"]["command"]
    assert cmd[0] == "redis-server"
    flags = dict(zip(cmd[1::2], cmd[2::2], strict=False))
    assert flags.get("--appendonly") == "yes"
    assert flags.get("--maxmemory-policy") == "noeviction"
    assert any(v["target"] == "/data" for v in compose_resolved["services"]["redis"]["volumes"])


def test_postgres_and_minio_keep_data_in_volumes(compose_resolved):
    services = compose_resolved["services"]
    assert any(v["type"] == "volume" and v["target"] == "/var/lib/postgresql/data"
               for v in services["postgres"]["volumes"])
    assert any(v["type"] == "volume" and v["target"] == "/data" for v in services["minio"]["volumes"])


def test_minio_setup_creates_the_bucket(compose_raw):
    script = " ".join(compose_raw["services"]["minio-setup"]["entrypoint"])
    assert "mc mb --ignore-existing" in script and "HUMANSEG_S3_BUCKET" in script
    assert compose_raw["services"]["minio-setup"]["image"].startswith("minio/mc:")


@pytest.mark.parametrize("service", ["worker", "worker-gpu", "sweeper"])
def test_workers_scale(compose_resolved, service):
    svc = compose_resolved["services"][service]
    assert "container_name" not in svc, "a fixed name breaks --scale"
    assert not svc.get("ports"), "host ports clash when scaled"
    assert "hostname" not in svc, "Celery node names must differ per replica"


def test_web_is_gunicorn_image_with_healthz(compose_resolved):
    web = compose_resolved["services"]["web"]
    assert web["build"]["dockerfile"] == "Dockerfile.web"
    assert web.get("command") is None, "web runs the image's gunicorn CMD"
    assert "/healthz" in " ".join(web["healthcheck"]["test"])
    assert [p["target"] for p in web["ports"]] == [8000]


def test_worker_is_cpu_by_default_and_gpu_profile_reserves_nvidia(compose_resolved):
    services = compose_resolved["services"]
    cpu = services["worker"]
    assert cpu["build"]["dockerfile"] == "Dockerfile.worker"
    assert not cpu["build"].get("args") and not cpu["build"].get("target"), \
        "CPU is the Dockerfile's default (last) stage"
    assert "profiles" not in cpu and "deploy" not in cpu
    gpu = services["worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert gpu["build"]["target"] == "gpu"
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    for name in ("worker", "worker-gpu"):
        assert services[name]["command"] == ["humanseg", "worker"]


def test_flower_only_in_monitoring_profile(compose_resolved):
    flower = compose_resolved["services"]["flower"]
    assert flower["profiles"] == ["monitoring"]
    assert flower["environment"]["CELERY_BROKER_URL"].startswith("redis://redis:")
    non_default = {n for n, s in compose_resolved["services"].items() if s.get("profiles")}
    assert non_default == {"flower", "prometheus", "worker-gpu"}
    assert compose_resolved["services"]["prometheus"]["profiles"] == ["monitoring"]


def test_images_are_pinned(compose_raw):
    for name, svc in compose_raw["services"].items():
        image = svc["image"]
        if "build" in svc:
            continue  # ours, tagged by IMAGE_TAG
        _, _, tag = image.partition(":")
        assert tag and tag != "latest" and any(c.isdigit() for c in tag), f"{name}: {image}"
