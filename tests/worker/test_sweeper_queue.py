"""The sweeper when the broker queue is not empty: re-queue expired leases, leave stale doorbells."""

from datetime import timedelta

import pytest
import redis
import support_images as si
from humanseg.core.db import make_engine, make_sessionmaker, session_scope
from humanseg.core.models import Job, JobStatus, utcnow
from humanseg.core.queue import make_sender, send_segment
from humanseg.core.settings import Settings
from humanseg.core.storage import LocalStorage
from humanseg.worker.sweeper import SweepResult, sweep
from sqlalchemy import update
from support_live import insert_job, load_job, queued_job_ids


@pytest.fixture
def env(tmp_path, db_url, redis_url, private_queue):
    settings = Settings.from_env({"HUMANSEG_DATA_DIR": str(tmp_path), "HUMANSEG_DATABASE_URL": db_url,
                                  "HUMANSEG_BROKER_URL": redis_url, "HUMANSEG_QUEUE": private_queue,
                                  "HUMANSEG_MAX_ATTEMPTS": "3", "HUMANSEG_STALE_QUEUED_SECONDS": "60"})
    engine = make_engine(db_url)
    celery = make_sender(settings)
    yield settings, make_sessionmaker(engine), LocalStorage(tmp_path / "storage"), celery
    celery.close()
    engine.dispose()


def test_busy_queue_requeues_expired_leases_but_does_not_resend_stale_jobs(env, redis_url):
    settings, sessions, storage, celery = env
    hour_ago = utcnow() - timedelta(hours=1)
    stale = insert_job(storage, sessions, si.jpeg(), name="stale", created_at=hour_ago)
    expired = insert_job(storage, sessions, si.jpeg(), name="expired")
    with session_scope(sessions) as s:
        s.execute(update(Job).where(Job.id == expired).values(
            status=JobStatus.running, attempts=1, lease_expires_at=utcnow() - timedelta(seconds=5)))
    # Someone else's doorbell is waiting: the workers are busy, not missing their messages.
    send_segment(celery, "someone-else", settings.queue)

    assert sweep(settings, sessions, celery) == SweepResult(requeued=1, resent=0, failed=0)
    assert queued_job_ids(redis_url, settings.queue) == ["someone-else", expired]
    assert load_job(sessions, expired).status is JobStatus.queued
    assert load_job(sessions, stale).status is JobStatus.queued

    # Once the queue has drained, the stale job's lost doorbell is rung again (and only that).
    client = redis.Redis.from_url(redis_url)
    client.delete(settings.queue)
    client.close()
    assert sweep(settings, sessions, celery) == SweepResult(requeued=0, resent=1, failed=0)
    assert queued_job_ids(redis_url, settings.queue) == [stale]
