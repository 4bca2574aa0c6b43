"""The segment task's retry path (`raise self.retry(...)`) through a real Celery worker process."""


import pytest
import support_images as si
from factories import insert_job
from support_live import load_job, pending_deliveries, running_test_worker, wait_until, worker_env

from humanseg.core.db import make_sessionmaker
from humanseg.core.models import JobStatus
from humanseg.core.queue import make_sender, send_segment
from humanseg.core.results import stored_kinds
from humanseg.core.storage import make_storage


@pytest.fixture(scope="module")
def worker(tmp_path_factory, redis_url, tiny_models):
    """A worker on SQLite + local storage with the sweeper off: only the task itself can retry."""
    tmp = tmp_path_factory.mktemp("task-retry")
    env = worker_env(redis_url, tmp, tiny_models, storage="local")
    with running_test_worker(env, tmp) as (settings, engine):
        yield settings, make_sessionmaker(engine), make_storage(settings)


def test_transient_storage_error_is_retried_by_celery_and_then_succeeds(worker, redis_url):
    settings, sessions, storage = worker
    job_id = insert_job(storage, sessions, si.jpeg(), name="retry")
    # A plain file where the results folder must go: the first attempt's writes fail (OSError).
    blocker = storage.root / "results" / job_id
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_bytes(b"in the way")
    sender = make_sender(settings)
    try:
        send_segment(sender, job_id, settings.queue)
    finally:
        sender.close()

    first = wait_until(lambda: (j := load_job(sessions, job_id)).attempts == 1
                       and j.status is JobStatus.queued and j, 60, "first attempt given back")
    assert first.error.startswith("retrying: writing results") and first.lease_expires_at is None
    # The retry is on its way (countdown: lease_seconds, 3 s here); the storage recovers meanwhile.
    blocker.unlink()

    done = wait_until(lambda: (j := load_job(sessions, job_id)).status.is_terminal() and j, 60,
                      "job finished after the retry")
    assert done.status is JobStatus.succeeded and done.attempts == 2 and done.error is None
    assert all(storage.exists(kind.key(job_id)) for kind in stored_kinds())
    # Every message for the job (the first delivery and its retry) was acked; nothing is left over.
    wait_until(lambda: pending_deliveries(redis_url, settings.queue, job_id) == 0, 30, "deliveries acked")
