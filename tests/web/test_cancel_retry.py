"""Cancel and retry through the API with a real Celery worker, real Redis and a real SQLite file."""

import io
import os
import zipfile

import pytest
import support_images as si
from factories import batch_row, insert_job, job_row
from support_live import load_job, pending_deliveries, running_test_worker, wait_until, worker_env

from humanseg.core.db import make_sessionmaker, session_scope
from humanseg.core.layout import results_prefix
from humanseg.core.models import Job, JobStatus, new_id
from humanseg.core.queue import make_sender, send_segment
from humanseg.core.results import stored_kinds
from humanseg.core.storage import make_storage
from humanseg.web import create_app


@pytest.fixture(scope="module")
def live(tmp_path_factory, redis_url, tiny_models):
    """A worker process plus an app on the same database, storage and queue."""
    tmp = tmp_path_factory.mktemp("cancel-retry")
    env = worker_env(redis_url, tmp, tiny_models, storage="local", lease_seconds=30,
                     secret_key="test-secret")
    with running_test_worker(env, tmp) as (settings, engine):
        app = create_app(settings)
        app.config["TESTING"] = True
        sender = make_sender(settings)
        try:
            yield app, settings, make_sessionmaker(engine), make_storage(settings), sender
        finally:
            sender.close()


def _ring(live, job_id: str) -> None:
    _, settings, _, _, sender = live
    send_segment(sender, job_id, settings.queue)


def _acked(live, redis_url, job_id: str) -> None:
    wait_until(lambda: pending_deliveries(redis_url, live[1].queue, job_id) == 0, 60, "delivery acked")


def _results(storage, job_id: str) -> list[str]:
    return [o.key for o in storage.list_objects(results_prefix(job_id))]


def _terminal(sessions, job_id: str) -> Job:
    return wait_until(lambda: (j := load_job(sessions, job_id)).status.is_terminal() and j, 60,
                      f"job {job_id} finished")


def test_a_cancelled_queued_job_never_runs_and_a_retry_runs_it(live, redis_url):
    app, _, sessions, storage, _ = live
    client = app.test_client()
    job_id = insert_job(storage, sessions, si.jpeg(), name="queued")
    resp = client.post(f"/api/v1/jobs/{job_id}/cancel")
    assert resp.status_code == 200 and resp.json["status"] == "cancelled" and resp.json["done"] is True
    assert resp.json["finished_at"] is not None
    assert client.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 200  # again: same answer
    # Its doorbell still rings; the worker takes the message and leaves the job alone.
    _ring(live, job_id)
    _acked(live, redis_url, job_id)
    job = load_job(sessions, job_id)
    assert job.status is JobStatus.cancelled and job.attempts == 0 and job.started_at is None
    assert _results(storage, job_id) == []
    refused = client.get(f"/api/v1/jobs/{job_id}/mask")
    assert refused.status_code == 409 and refused.json["error"]["code"] == "job_cancelled"
    assert 'id="job-cancelled"' in client.get(f"/jobs/{job_id}").get_data(as_text=True)

    resp = client.post(f"/api/v1/jobs/{job_id}/retry")
    # queued, or already running: the live worker may claim it between the doorbell and the answer
    assert resp.status_code == 202 and resp.json["status"] in ("queued", "running"), resp.json
    assert resp.json["done"] is False
    assert resp.headers["Location"] == f"/api/v1/jobs/{job_id}"
    done = _terminal(sessions, job_id)
    assert done.status is JobStatus.succeeded and done.attempts == 1 and done.error is None
    assert client.get(f"/api/v1/jobs/{job_id}").json["done"] is True
    assert all(storage.exists(kind.key(job_id)) for kind in stored_kinds())
    # Finished jobs can be neither cancelled nor retried.
    refused = client.post(f"/api/v1/jobs/{job_id}/cancel")
    assert refused.status_code == 409 and refused.json["error"]["code"] == "job_finished"
    refused = client.post(f"/api/v1/jobs/{job_id}/retry")
    assert refused.status_code == 409 and refused.json["error"]["code"] == "not_retryable"


def test_a_running_job_cancelled_mid_run_keeps_no_results(live, redis_url):
    app, _, sessions, storage, _ = live
    job_id = insert_job(storage, sessions, si.jpeg(), name="running")
    original = storage.root / load_job(sessions, job_id).original_key
    # A FIFO in place of the original: the worker claims the job, then blocks reading it until
    # the test writes the bytes, so the cancel lands while the job is surely running.
    data = original.read_bytes()
    original.unlink()
    os.mkfifo(original)
    _ring(live, job_id)
    wait_until(lambda: load_job(sessions, job_id).status is JobStatus.running, 60, "job running")
    resp = app.test_client().post(f"/api/v1/jobs/{job_id}/cancel")
    assert resp.status_code == 200 and resp.json["status"] == "cancelled"
    with open(original, "wb") as fifo:
        fifo.write(data)
    _acked(live, redis_url, job_id)
    job = load_job(sessions, job_id)
    assert job.status is JobStatus.cancelled and job.attempts == 1
    assert _results(storage, job_id) == []  # the late results were discarded


def test_retry_of_a_failed_job_runs_it_again(live):
    app, _, sessions, storage, _ = live
    client = app.test_client()
    job_id = insert_job(storage, sessions, si.jpeg(), name="missing")
    key = load_job(sessions, job_id).original_key
    data = storage.get(key)
    storage.delete(key)  # the original is missing: the job fails for good
    _ring(live, job_id)
    failed = _terminal(sessions, job_id)
    assert failed.status is JobStatus.failed and "missing" in failed.error
    refused = client.post(f"/api/v1/jobs/{new_id()}/retry")
    assert refused.status_code == 404 and refused.json["error"]["code"] == "job_not_found"

    storage.put(key, data, "image/jpeg")
    resp = client.post(f"/api/v1/jobs/{job_id}/retry")
    assert resp.status_code == 202 and resp.json["error"] is None
    done = _terminal(sessions, job_id)
    assert done.status is JobStatus.succeeded and done.attempts == 2


def _batch_of(sessions, storage, n: int) -> tuple[str, list[str]]:
    """A batch of n queued jobs whose doorbells are not rung."""
    with session_scope(sessions) as s:
        batch = batch_row(s, name="control", job_count=n)
        ids = [job_row(s, batch.id, storage=storage, seq=seq, filename=f"p{seq}.jpg").id for seq in range(n)]
        return batch.id, ids


def test_batch_cancel_and_retry_and_cancelled_counts_pages_and_archive(live):
    app, _, sessions, storage, _ = live
    client = app.test_client()
    batch_id, (a, b, c) = _batch_of(sessions, storage, 3)
    assert client.post(f"/api/v1/jobs/{a}/cancel").status_code == 200
    resp = client.post(f"/api/v1/batches/{batch_id}/cancel")
    assert resp.status_code == 200 and resp.json["cancelled"] == 2
    assert sorted(resp.json["job_ids"]) == sorted([b, c])
    counts = resp.json["batch"]["counts"]
    assert counts["cancelled"] == 3 and resp.json["batch"]["done"] is True

    none = client.post(f"/api/v1/batches/{batch_id}/retry")  # failed only, by default
    assert none.status_code == 202 and none.json["retried"] == 0
    bad = client.post(f"/api/v1/batches/{batch_id}/retry?status=succeeded")
    assert bad.status_code == 400 and bad.json["error"]["code"] == "bad_parameter"
    # Retry two of them: a per-job retry and then the batch's cancelled ones minus the first.
    assert client.post(f"/api/v1/jobs/{b}/retry").status_code == 202
    assert _terminal(sessions, b).status is JobStatus.succeeded

    body = client.get(f"/api/v1/batches/{batch_id}").json
    assert body["counts"] == {"queued": 0, "running": 0, "succeeded": 1, "failed": 0,
                              "cancelled": 2}
    assert body["done"] is True and body["progress"] == 1.0
    page = client.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert '<span id="count-cancelled">2</span>' in page
    archive = client.get(f"/api/v1/batches/{batch_id}/archive")
    assert archive.status_code == 200
    with zipfile.ZipFile(io.BytesIO(archive.get_data())) as zf:
        skipped = zf.read("not_included.txt").decode()
    assert "p0.jpg\tcancelled" in skipped and "p2.jpg\tcancelled" in skipped

    resp = client.post(f"/api/v1/batches/{batch_id}/retry?status=failed,cancelled")
    assert resp.status_code == 202 and sorted(resp.json["job_ids"]) == sorted([a, c])
    assert all(_terminal(sessions, j).status is JobStatus.succeeded for j in (a, c))
    missing = client.post(f"/api/v1/batches/{new_id()}/cancel")
    assert missing.status_code == 404 and missing.json["error"]["code"] == "batch_not_found"
