"""A worker killed with jobs it took from the broker but had not started: another worker runs them
soon (the sweeper notices the dead worker's heartbeat), not after stale_queued_seconds or the
broker's visibility timeout."""

import json
import os
import signal
import time

import pytest
import redis
import support_images as si
from factories import insert_job
from support_live import (
    drop_queue,
    load_job,
    pending_deliveries,
    queued_job_ids,
    start_worker,
    stop_process,
    wait_until,
    worker_env,
)

from humanseg.core import migrate
from humanseg.core.db import make_engine, make_sessionmaker
from humanseg.core.heartbeat import heartbeat_key
from humanseg.core.models import JobStatus
from humanseg.core.queue import SEGMENT_TASK, make_sender
from humanseg.core.settings import Settings
from humanseg.core.storage import make_storage

JOBS = 4
# The doorbells' countdown: the first worker takes them from the broker at once and holds them
# (unacked, not started) until then; the test is over long before.
HELD_FOR = 600


def _forget_held(client: redis.Redis, queue: str) -> None:
    """Drop the killed worker's unacked messages of this queue (kombu would restore them an hour on)."""
    for tag, raw in client.hgetall("unacked").items():
        if json.loads(raw)[2] == queue:
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)


@pytest.fixture
def parts(tmp_path, redis_url, tiny_models):
    # stale_queued_seconds and the lease are an hour: only the dead worker's heartbeat can explain
    # a recovery within the test's minute.
    env = worker_env(redis_url, tmp_path, tiny_models, storage="local", sweeper=1, worker_stale_seconds=3,
                     stale_queued_seconds=3600, lease_seconds=3600)
    settings = Settings.from_env(env)
    migrate.upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    client = redis.Redis.from_url(redis_url)
    yield env, settings, make_sessionmaker(engine), make_storage(settings)
    engine.dispose()
    _forget_held(client, settings.queue)
    client.delete(heartbeat_key(settings), *client.keys(f"humanseg:swept:{settings.queue}:*"))
    client.close()
    drop_queue(redis_url, settings.queue)


def test_jobs_a_killed_worker_held_are_run_by_the_next_worker(parts, tmp_path, redis_url):
    env, settings, sessions, storage = parts
    first = start_worker(env, tmp_path / "worker-1.log", os.getcwd())
    jobs = [insert_job(storage, sessions, si.jpeg(), name=f"held{i}") for i in range(JOBS)]
    sender = make_sender(settings)
    try:
        for job_id in jobs:
            sender.send_task(SEGMENT_TASK, args=[job_id], queue=settings.queue, countdown=HELD_FOR)
    finally:
        sender.close()
    # The first worker took every doorbell from the queue and holds it, unacked and not started.
    wait_until(lambda: not queued_job_ids(redis_url, settings.queue)
               and all(pending_deliveries(redis_url, settings.queue, j) == 1 for j in jobs),
               30, "the first worker holds every doorbell")
    wait_until(lambda: _beats(redis_url, settings), 10, "the first worker beats")

    os.killpg(first.pid, signal.SIGKILL)  # the worker and its pool, as a container kill does
    first.wait(timeout=30)
    killed = time.monotonic()
    second = start_worker(env, tmp_path / "worker-2.log", os.getcwd())
    try:
        assert all(load_job(sessions, j).status is JobStatus.queued for j in jobs)
        wait_until(lambda: all(load_job(sessions, j).status is JobStatus.succeeded for j in jobs), 60,
                   lambda: f"jobs held by the killed worker finished: {[load_job(sessions, j).status for j in jobs]}"
                           f"\n{(tmp_path / 'worker-2.log').read_text(errors='replace')[-3000:]}")
        took = time.monotonic() - killed
        print(f"jobs held by a killed worker finished {took:.1f} s after the kill "
              f"(worker_stale_seconds=3; stale_queued_seconds=3600)")
        assert took < 60
        log = (tmp_path / "worker-2.log").read_text(errors="replace")
        assert "event=dead_worker_jobs_resent" in log
    finally:
        stop_process(second)


def _beats(redis_url: str, settings: Settings) -> bool:
    client = redis.Redis.from_url(redis_url)
    try:
        return bool(client.zcard(heartbeat_key(settings)))
    finally:
        client.close()
