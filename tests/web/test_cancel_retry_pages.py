"""Cancel and retry buttons on the job and batch pages, and what a finished batch says."""

from __future__ import annotations

from gallery_support import add_batch, csrf_from

from humanseg.core.db import session_scope
from humanseg.core.models import Job, JobStatus


def _status(app, job_id):
    with session_scope(app.extensions["humanseg"].sessions) as session:
        return session.get(Job, job_id).status


def _hidden(page: str, form_id: str) -> bool:
    import re

    tag = re.search(r'<form[^>]*id="' + form_id + r'"[^>]*>', page).group(0)
    return re.search(r"\shidden(\s|>)", tag) is not None


def test_job_page_cancel_then_retry(client, app):
    _, (job_id,) = add_batch(app, ["a.jpg"], status=JobStatus.queued)
    page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert 'id="job-cancel"' in page and 'id="job-retry"' not in page
    assert client.post(f"/jobs/{job_id}/cancel").status_code == 400  # no form token: refused
    resp = client.post(f"/jobs/{job_id}/cancel", data={"csrf_token": csrf_from(page)})
    assert resp.status_code == 303 and _status(app, job_id) == JobStatus.cancelled
    page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert 'id="job-retry"' in page and "Retry queues it again" in page and "segmented in" not in page
    resp = client.post(f"/jobs/{job_id}/retry", data={"csrf_token": csrf_from(page)})
    assert resp.status_code == 303 and _status(app, job_id) == JobStatus.queued


def test_batch_page_buttons_and_a_cancelled_batch_is_not_all_done(client, app):
    batch_id, ids = add_batch(app, ["a.jpg", "b.jpg"], status=JobStatus.queued)
    page = client.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert not _hidden(page, "batch-cancel-form") and _hidden(page, "batch-retry-form")
    client.post(f"/batches/{batch_id}/cancel", data={"csrf_token": csrf_from(page)})
    assert {_status(app, i) for i in ids} == {JobStatus.cancelled}
    page = client.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert '<span id="live-label">Cancelled</span>' in page and "All done" not in page
    assert _hidden(page, "batch-cancel-form") and not _hidden(page, "batch-retry-form")
    client.post(f"/batches/{batch_id}/retry", data={"csrf_token": csrf_from(page)})
    assert {_status(app, i) for i in ids} == {JobStatus.queued}
    done_id, _ = add_batch(app, ["c.jpg"])
    assert '<span id="live-label">All done</span>' in client.get(f"/batches/{done_id}").get_data(as_text=True)
