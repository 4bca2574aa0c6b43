"""compose.yaml: schema-valid, resolvable by real Compose, wired and scalable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from .conftest import APP_SERVICES, REPO

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


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_services_are_wired_to_the_bundled_backends(compose_resolved, service):
    from humanseg.core.settings import Settings

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
    assert settings.secret_key, "web replicas need one shared HUMANSEG_SECRET_KEY"
    assert str(settings.data_dir) == "/data"
    assert any(v["target"] == "/data" for v in services[service].get("volumes", []))


def test_settings_come_from_one_env_file(compose_raw):
    for name in APP_SERVICES:
        svc = compose_raw["services"][name]
        assert [e["path"] for e in svc["env_file"]] == [".env"], name
        inline = [k for k in svc.get("environment", {}) if k.startswith("HUMANSEG_")]
        assert not inline, f"{name}: set {inline} in .env, not inline"


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
    flags = dict(zip(cmd[1::2], cmd[2::2]))
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
    assert not cpu.get("build", {}).get("args"), "CPU is the Dockerfile default"
    assert "profiles" not in cpu and "deploy" not in cpu
    gpu = services["worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert gpu["build"]["args"]["VARIANT"] == "gpu"
    assert "ml" in gpu["build"]["args"]["EXTRAS"].split(",")
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    for name in ("worker", "worker-gpu"):
        assert services[name]["command"] == ["humanseg", "worker"]


def test_flower_only_in_monitoring_profile(compose_resolved):
    flower = compose_resolved["services"]["flower"]
    assert flower["profiles"] == ["monitoring"]
    assert flower["environment"]["CELERY_BROKER_URL"].startswith("redis://redis:")
    non_default = {n for n, s in compose_resolved["services"].items() if s.get("profiles")}
    assert non_default == {"flower", "worker-gpu"}


def test_images_are_pinned(compose_raw):
    for name, svc in compose_raw["services"].items():
        image = svc["image"]
        if "build" in svc:
            continue  # ours, tagged by IMAGE_TAG
        _, _, tag = image.partition(":")
        assert tag and tag != "latest" and any(c.isdigit() for c in tag), f"{name}: {image}"
