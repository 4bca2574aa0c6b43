"""The segment task's retry path (`raise self.retry(...)`) through a real Celery worker process."""

from datetime import timedelta

import pytest
import support_images as si
from humanseg.core.models import JobStatus, utcnow
from humanseg.core.queue import make_sender, send_segment
from humanseg.core.results import result_keys
from support_live import insert_job, load_job, pending_deliveries, poll


@pytest.mark.parametrize("stack", ["sqlite-local"], indirect=True)
def test_transient_storage_error_is_retried_by_celery_and_then_succeeds(stack, redis_url):
    # created_at in the future: the stack's sweeper never re-sends this job, so the only way a
    # second attempt can happen is the task's own retry message.
    job_id = insert_job(stack.storage, stack.sessions, si.jpeg(), name="retry",
                        created_at=utcnow() + timedelta(days=1))
    # A plain file where the results folder must go: the first attempt's writes fail (OSError).
    blocker = stack.storage.root / "results" / job_id
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_bytes(b"in the way")
    sender = make_sender(stack.settings)
    try:
        send_segment(sender, job_id, stack.settings.queue)
    finally:
        sender.close()

    first = poll(lambda: (j := load_job(stack.sessions, job_id)).attempts == 1
                 and j.status is JobStatus.queued and j, 60, "first attempt given back")
    assert first.error.startswith("retrying: writing results") and first.lease_expires_at is None
    # The retry is already on its way (countdown 2 s for attempt 1): the storage recovers meanwhile.
    blocker.unlink()

    done = poll(lambda: (j := load_job(stack.sessions, job_id)).status.is_terminal() and j, 60,
                "job finished after the retry")
    assert done.status is JobStatus.succeeded and done.attempts == 2 and done.error is None
    assert all(stack.storage.exists(k) for k in result_keys(job_id).values())
    # Every message for the job (the first delivery and its retry) was acked; nothing is left over.
    poll(lambda: pending_deliveries(redis_url, stack.settings.queue, job_id) == 0, 30,
         "deliveries acked")
