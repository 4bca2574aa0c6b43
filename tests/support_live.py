"""Helpers for tests on live parts: polling with a deadline, reading a Redis queue, making jobs."""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from humanseg.up import stop_process  # one copy, in the package; the tests import it from here

T = TypeVar("T")
REPO_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def poll(check: Callable[[], T], timeout: float, what: str, every: float = 0.05) -> T:
    """Call check() until it returns something truthy; raise TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise TimeoutError(f"{what}: not true after {timeout}s (last: {last!r})")


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


def insert_job(storage, sessions, original: bytes, *, name: str = "x", width: int = 96,
               height: int = 64, created_at: datetime | None = None, outputs: str | None = None) -> str:
    """Store an original and commit Batch + Job rows (status queued) without sending any task.

    The one builder of queued jobs for tests that bypass the upload path (worker, sweeper, e2e).
    """
    from humanseg.core.db import session_scope
    from humanseg.core.models import Batch, Job, new_id

    job_id = new_id()
    key = f"originals/{job_id}.jpg"
    storage.put(key, original, "image/jpeg")
    extra = {"created_at": created_at} if created_at is not None else {}
    with session_scope(sessions) as s:
        batch = Batch(name=name, job_count=1)
        s.add(batch)
        s.flush()
        s.add(Job(id=job_id, batch_id=batch.id, filename=f"{name}.jpg", content_type="image/jpeg",
                  width=width, height=height, bytes=len(original), original_key=key, outputs=outputs, **extra))
    return job_id


def load_job(sessions, job_id: str):
    """The Job row (detached, readable)."""
    from humanseg.core.db import session_scope
    from humanseg.core.models import Job

    with session_scope(sessions) as s:
        return s.get(Job, job_id)


def worker_env(redis_url: str, tmp, tiny_model_dir, **values) -> dict[str, str]:
    """Environment for a test worker: SQLite under tmp, its own queue, the tiny model, no sweeper.

    lease_seconds is short because it caps the retry backoff (a test waits for one retry).
    """
    import os
    import uuid

    env = {k: v for k, v in os.environ.items() if not k.startswith("HUMANSEG_")}
    base = {"DATA_DIR": tmp, "DATABASE_URL": f"sqlite:///{tmp / 'humanseg.db'}",
            "BROKER_URL": redis_url, "QUEUE": f"humanseg-test-{uuid.uuid4().hex[:8]}",
            "MODEL_PATH": tiny_model_dir, "MODEL_BACKEND": "onnx", "THREADS": 1, "WORKER_CONCURRENCY": 1,
            "LEASE_SECONDS": 3, "SWEEPER": 0, "LOG_LEVEL": "INFO"}
    env.update({f"HUMANSEG_{k.upper()}": str(v) for k, v in {**base, **values}.items()})
    return env


def start_worker(env: dict[str, str], log_path, cwd):
    """`humanseg worker` (prefork, one process) as a subprocess; returns once Celery is ready."""
    import subprocess
    import sys

    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "humanseg.cli", "worker", "--pool=prefork"],
                                env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        poll(lambda: proc.poll() is not None or " ready." in log_path.read_text(errors="replace"),
             120, "worker ready")
        if proc.poll() is not None:
            raise RuntimeError("worker exited:\n" + log_path.read_text(errors="replace")[-3000:])
    except BaseException:
        stop_process(proc)
        raise
    return proc


def make_settings(data_dir, database_url: str, broker_url: str, queue: str, /, **overrides):
    """Settings for a test: its own data dir, database, broker and queue; typed field overrides."""
    from humanseg.core.settings import Settings

    return Settings.from_env({
        "HUMANSEG_DATA_DIR": str(data_dir), "HUMANSEG_DATABASE_URL": database_url,
        "HUMANSEG_BROKER_URL": broker_url, "HUMANSEG_QUEUE": queue,
        "HUMANSEG_SECRET_KEY": "t"}).with_(**overrides)


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
