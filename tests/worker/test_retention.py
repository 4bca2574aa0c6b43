"""Retention: exactly the expired finished jobs go, with their files, on local storage and moto S3."""

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from factories import batch_row, job_row, make_settings
from sqlalchemy import select

from humanseg.core.db import make_engine, make_sessionmaker, session_scope
from humanseg.core.models import Batch, Job, JobStatus
from humanseg.core.results import stored_kinds
from humanseg.core.storage import LocalStorage
from humanseg.worker.retention import purge_expired

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path):
    if request.param == "local":
        return LocalStorage(tmp_path / "storage")
    return request.getfixturevalue("make_s3_storage")(f"ret-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def sessions(db_url):
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def add_job(session, storage, batch_id, seq, age_days, status=JobStatus.succeeded) -> tuple[str, list[str]]:
    """A job created age_days before NOW, with its original and (if finished) results stored."""
    created = NOW - timedelta(days=age_days)
    job = job_row(session, batch_id, storage=storage, original=b"jpeg", seq=seq, filename="a.jpg", width=4,
                  height=4, status=status, created_at=created, finished_at=created if status.is_terminal() else None)
    keys = [job.original_key]
    if status == JobStatus.succeeded:
        for kind in stored_kinds():
            storage.put(kind.key(job.id), b"result", kind.content_type)
            keys.append(kind.key(job.id))
    return job.id, keys


def add_batch(session, age_days) -> str:
    return batch_row(session, job_count=3, created_at=NOW - timedelta(days=age_days)).id


def test_retention_deletes_exactly_the_old_finished_jobs_and_their_files(sessions, storage):
    settings = make_settings(retention_days=7)
    with session_scope(sessions) as s:
        old_batch, mixed_batch, new_batch = add_batch(s, 10), add_batch(s, 8), add_batch(s, 1)
        old_ok = add_job(s, storage, old_batch, 0, 10)
        old_failed = add_job(s, storage, old_batch, 1, 9, JobStatus.failed)
        mixed_old = add_job(s, storage, mixed_batch, 0, 8)
        mixed_running = add_job(s, storage, mixed_batch, 1, 8, JobStatus.running)  # a worker may be on it
        just_inside = add_job(s, storage, mixed_batch, 2, 6.9)
        fresh = add_job(s, storage, new_batch, 0, 1)
    expired = [old_ok, old_failed, mixed_old]
    kept = [mixed_running, just_inside, fresh]

    purged = purge_expired(settings, sessions, storage, now=NOW)

    assert purged.jobs == 3 and purged.batches == 1
    assert purged.objects == sum(len(keys) for _, keys in expired)
    with session_scope(sessions) as s:
        assert set(s.scalars(select(Job.id))) == {job_id for job_id, _ in kept}
        assert set(s.scalars(select(Batch.id))) == {mixed_batch, new_batch}
    assert not any(storage.exists(k) for _, keys in expired for k in keys)
    assert all(storage.exists(k) for _, keys in kept for k in keys)
    assert purge_expired(settings, sessions, storage, now=NOW) == type(purged)()  # nothing left to do


def test_retention_works_in_bounded_chunks_and_is_off_by_default(sessions, storage):
    with session_scope(sessions) as s:
        batch = add_batch(s, 30)
        jobs = [add_job(s, storage, batch, i, 30 - i / 10) for i in range(5)]
    assert purge_expired(make_settings(), sessions, storage, now=NOW).jobs == 0  # retention_days=0: off
    settings = make_settings(retention_days=7)
    first = purge_expired(settings, sessions, storage, now=NOW, chunk=2)
    assert (first.jobs, first.batches) == (2, 0)  # the two oldest; the batch still has jobs
    assert not storage.exists(jobs[0][1][0]) and storage.exists(jobs[2][1][0])
    assert purge_expired(settings, sessions, storage, now=NOW, chunk=2).jobs == 2
    last = purge_expired(settings, sessions, storage, now=NOW, chunk=2)
    assert (last.jobs, last.batches) == (1, 1)
    with session_scope(sessions) as s:
        assert s.scalar(select(Batch.id).where(Batch.id == batch)) is None


def test_the_sweep_pass_applies_retention(tmp_path, db_url, sessions, redis_url, private_queue):
    from humanseg.worker.sweeper import sweep_once

    settings = make_settings(tmp_path, database_url=db_url, broker_url=redis_url, queue=private_queue,
                             retention_days=7)
    storage = LocalStorage(settings.storage_dir)
    with session_scope(sessions) as s:
        batch = add_batch(s, 30)
        old = add_job(s, storage, batch, 0, 30)
        young = add_job(s, storage, batch, 1, 0)
    # Created a month before *now* (the real clock): sweep_once uses it.
    with session_scope(sessions) as s:
        s.get(Job, old[0]).created_at = datetime.now(timezone.utc) - timedelta(days=30)
        s.get(Job, young[0]).created_at = datetime.now(timezone.utc)
    assert sweep_once(settings).expired == 1
    with session_scope(sessions) as s:
        assert set(s.scalars(select(Job.id))) == {young[0]}
    assert not storage.exists(old[1][0]) and storage.exists(young[1][0])
