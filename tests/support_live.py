"""Helpers for tests on live parts: waiting for a condition, reading a Redis queue, running a worker."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from benchlib import stop as stop_process  # the one stop of a child process (bench and tests)

T = TypeVar("T")
REPO_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], T], timeout: float, message: str | Callable[[], str],
               interval: float = 0.05) -> T:
    """Call predicate() every `interval` seconds until it returns something truthy, and return that.

    After `timeout` seconds: AssertionError with `message` (a callable is called then, to show what
    was seen, a log's tail say) and predicate's last value. The one way tests wait for something to
    happen: no hand-written deadline loops, no sleeps."""
    deadline = time.monotonic() + timeout
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"{text}: not true after {timeout}s (last: {last!r})")
        time.sleep(interval)


def _task_job_id(raw: bytes | str) -> str | None:
    """The first task argument (the job id) of one kombu Redis message (None if it has none)."""
    msg = json.loads(raw)
    body = msg["body"]
    if msg.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    args = json.loads(body)[0]
    return args[0] if args else None


def queued_job_ids(redis_url: str, queue: str) -> list[str]:
    """Job ids of the segment messages waiting in a Redis queue, oldest first."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        raw = client.lrange(queue, 0, -1)
    finally:
        client.close()
    # kombu LPUSHes and consumers BRPOP: the tail of the list is the oldest message.
    return [_task_job_id(item) for item in reversed(raw)]


def pending_deliveries(redis_url: str, queue: str, job_id: str) -> int:
    """Messages for job_id not yet acked: waiting in the queue or held (unacked) by a worker."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        waiting = client.lrange(queue, 0, -1)
        # kombu keeps delivered, unacked messages in the 'unacked' hash as [message, exchange, key].
        held = [json.dumps(json.loads(v)[0]) for v in client.hvals("unacked")]
    finally:
        client.close()
    return sum(1 for item in waiting + held if _task_job_id(item) == job_id)


def load_job(sessions, job_id: str):
    """The Job row (detached, readable)."""
    from humanseg.core.db import session_scope
    from humanseg.core.models import Job

    with session_scope(sessions) as s:
        return s.get(Job, job_id)


def worker_env(redis_url: str, tmp, tiny_models, **values) -> dict[str, str]:
    """Environment for a test worker: SQLite under tmp, its own queue, the tiny model, no sweeper.

    lease_seconds is short because it caps the retry backoff (a test waits for one retry).
    """
    import os
    import uuid

    from factories import settings_env

    env = {k: v for k, v in os.environ.items() if not k.startswith("HUMANSEG_")}
    base = {"DATA_DIR": tmp, "DATABASE_URL": f"sqlite:///{tmp / 'humanseg.db'}",
            "BROKER_URL": redis_url, "QUEUE": f"humanseg-test-{uuid.uuid4().hex[:8]}",
            "MODELS_DIR": tiny_models, "MODEL_BACKEND": "onnx", "THREADS": 1, "WORKER_CONCURRENCY": 1,
            "LEASE_SECONDS": 3, "SWEEPER": 0, "LOG_LEVEL": "INFO"}
    env.update(settings_env(**{**base, **values}))
    return env


def start_worker(env: dict[str, str], log_path, cwd):
    """`humanseg worker` (prefork, one process) as a subprocess; returns once Celery is ready."""
    import sys

    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "humanseg.cli", "worker", "--pool=prefork"],
                                env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        wait_until(lambda: proc.poll() is not None or " ready." in log_path.read_text(errors="replace"),
                   120, "worker ready")
        if proc.poll() is not None:
            raise RuntimeError("worker exited:\n" + log_path.read_text(errors="replace")[-3000:])
    except BaseException:
        stop_process(proc)
        raise
    return proc


@contextmanager
def running_test_worker(env: dict[str, str], tmp, cwd=None) -> Iterator[tuple]:
    """Migrate the env's database and run `humanseg worker` on it (in cwd, the repository root by
    default) while the block runs; yields (settings, engine). Afterwards: the engine disposed, the
    worker stopped, its queue dropped."""
    from humanseg.core import migrate
    from humanseg.core.db import make_engine
    from humanseg.core.settings import Settings

    settings = Settings.from_env(env)
    migrate.upgrade(settings.database_url)
    proc = start_worker(env, tmp / "worker.log", cwd or REPO_ROOT)
    engine = make_engine(settings.database_url)
    try:
        yield settings, engine
    finally:
        engine.dispose()
        stop_process(proc)
        drop_queue(settings.broker_url, settings.queue)


def drop_queue(redis_url: str, queue: str) -> None:
    """Delete a test queue from Redis."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        client.delete(queue)
    finally:
        client.close()
