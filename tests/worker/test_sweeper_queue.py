"""The sweeper and a busy broker queue: expired leases are re-queued, and jobs queued too long are
re-sent even while other doorbells wait (a flush under load), each at most once per interval; the
jobs a killed worker may have held are re-sent once its heartbeat goes silent."""

import time
from dataclasses import replace
from datetime import timedelta

import pytest
import redis
import support_images as si
from factories import insert_job, make_settings
from sqlalchemy import update
from support_live import load_job, queued_job_ids

from humanseg.core.db import make_engine, make_sessionmaker, session_scope
from humanseg.core.heartbeat import beat, forget, heartbeat_key, live_workers, silent_workers
from humanseg.core.models import Job, JobStatus, utcnow
from humanseg.core.queue import make_sender, send_segment
from humanseg.core.settings import Settings
from humanseg.core.storage import LocalStorage
from humanseg.worker import sweeper
from humanseg.worker.sweeper import SweepResult, sweep


@pytest.fixture
def env(tmp_path, db_url, redis_url, private_queue):
    settings = make_settings(tmp_path, database_url=db_url, broker_url=redis_url, queue=private_queue,
                             max_attempts=3, stale_queued_seconds=60)
    engine = make_engine(db_url)
    celery = make_sender(settings)
    yield settings, make_sessionmaker(engine), LocalStorage(tmp_path / "storage"), celery
    celery.close()
    engine.dispose()
    _flush(redis_url, settings)


def _flush(redis_url: str, settings: Settings) -> None:
    """What FLUSHALL does to this test's part of the broker: its queue and the sweeper's marks."""
    client = redis.Redis.from_url(redis_url)
    client.delete(settings.queue)
    for key in client.scan_iter(f"humanseg:swept:{settings.queue}:*"):
        client.delete(key)
    client.close()


def test_a_busy_queue_does_not_hide_lost_doorbells(env, redis_url):
    settings, sessions, storage, celery = env
    hour_ago = utcnow() - timedelta(hours=1)
    # Ten jobs whose doorbells a flush took; newer doorbells keep the queue from ever emptying.
    lost = [insert_job(storage, sessions, si.jpeg(), name=f"lost{i}",
                       created_at=hour_ago + timedelta(seconds=i)) for i in range(10)]
    expired = insert_job(storage, sessions, si.jpeg(), name="expired")
    with session_scope(sessions) as s:
        s.execute(update(Job).where(Job.id == expired).values(
            status=JobStatus.running, attempts=1, lease_expires_at=utcnow() - timedelta(seconds=5)))
    send_segment(celery, "someone-else", settings.queue)

    assert sweep(settings, sessions, celery) == SweepResult(requeued=1, resent=10, failed=0)
    assert queued_job_ids(redis_url, settings.queue) == ["someone-else", expired, *lost]
    assert load_job(sessions, expired).status is JobStatus.queued

    # The next passes within stale_queued_seconds leave them be: one extra doorbell each, not one a pass.
    for _ in range(3):
        assert sweep(settings, sessions, celery) == SweepResult(requeued=0, resent=0, failed=0)
    assert queued_job_ids(redis_url, settings.queue) == ["someone-else", expired, *lost]

    # Another flush takes the doorbells and the marks together: the old jobs are rung again at once
    # (`expired` was created just now: it waits until it is stale_queued_seconds old).
    _flush(redis_url, settings)
    send_segment(celery, "someone-else", settings.queue)
    assert sweep(settings, sessions, celery) == SweepResult(requeued=0, resent=10, failed=0)
    assert queued_job_ids(redis_url, settings.queue) == ["someone-else", *lost]


def test_young_queued_jobs_are_not_resent(env, redis_url):
    settings, sessions, storage, celery = env
    insert_job(storage, sessions, si.jpeg(), name="fresh")  # its doorbell may be in flight
    assert sweep(settings, sessions, celery) == SweepResult()
    assert queued_job_ids(redis_url, settings.queue) == []


def test_more_lost_jobs_than_a_pass_sends_are_all_reached(env, redis_url, monkeypatch):
    settings, sessions, storage, celery = env
    monkeypatch.setattr(sweeper, "BATCH", 2)
    hour_ago = utcnow() - timedelta(hours=1)
    lost = [insert_job(storage, sessions, si.jpeg(), name=f"lost{i}",
                       created_at=hour_ago + timedelta(seconds=i)) for i in range(5)]
    # Bounded per pass, and each pass goes on where the last one stopped (not the oldest again).
    assert [sweep(settings, sessions, celery).resent for _ in range(4)] == [2, 2, 1, 0]
    assert queued_job_ids(redis_url, settings.queue) == lost


def test_jobs_a_silent_worker_may_have_held_are_resent_once(env, redis_url):
    settings, sessions, storage, celery = env
    settings = replace(settings, worker_stale_seconds=10)
    client = redis.Redis.from_url(redis_url)
    now = time.time()
    try:
        # "gone" beat 30 s ago and never said goodbye (killed); "alive" beat just now.
        beat(client, settings, "gone", now - 30)
        beat(client, settings, "alive", now)
        held = [insert_job(storage, sessions, si.jpeg(), name=f"held{i}",
                           created_at=utcnow() - timedelta(seconds=40 - i)) for i in range(3)]
        # Uploaded after "gone" stopped (its last beat plus a window): it never saw this one's doorbell.
        insert_job(storage, sessions, si.jpeg(), name="later")

        assert sweep(settings, sessions, celery) == SweepResult(held=3)
        assert queued_job_ids(redis_url, settings.queue) == held
        assert live_workers(client, settings) == ["alive"]  # "gone" is forgotten; "alive" untouched
        assert silent_workers(client, settings) == []

        # Once per silent worker: the next passes leave the jobs be (the stale-queued marks too).
        assert sweep(settings, sessions, celery) == SweepResult()
        assert queued_job_ids(redis_url, settings.queue) == held
    finally:
        client.delete(heartbeat_key(settings))
        client.close()


def test_a_worker_that_stopped_cleanly_has_nothing_resent(env, redis_url):
    settings, sessions, storage, celery = env
    client = redis.Redis.from_url(redis_url)
    try:
        beat(client, settings, "stopped", time.time() - 3600)
        forget(client, settings, "stopped")  # a warm shutdown gives its held messages back itself
        insert_job(storage, sessions, si.jpeg(), name="queued", created_at=utcnow() - timedelta(hours=2))
        assert sweep(settings, sessions, celery).held == 0
    finally:
        client.delete(heartbeat_key(settings))
        client.close()
