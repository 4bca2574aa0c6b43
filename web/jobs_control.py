"""Cancel and retry, for one job or a whole batch (POST /api/v1/.../cancel and .../retry).

Both are conditional UPDATEs, so they race safely with the worker: a cancel only moves
queued or running jobs, the worker only records an outcome while it still holds the lease
(status running, same attempt), and a retry only moves failed or cancelled jobs.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from flask import Blueprint, jsonify, request
from flask.wrappers import Response
from sqlalchemy import select, update

from humanseg.core.counts import status_counts
from humanseg.core.db import session_scope
from humanseg.core.logfmt import logkv
from humanseg.core.models import ACTIVE_STATUSES, Job, JobStatus, utcnow
from humanseg.core.webhooks import record_finished
from humanseg.web.errors import ErrorAnswer
from humanseg.web.lookup import get_batch_or_404, get_job_or_404
from humanseg.web.serialize import batch_json, job_json
from humanseg.web.services import services
from humanseg.web.uploads import enqueue

log = logging.getLogger(__name__)

bp = Blueprint("control", __name__)

CANCELLABLE = ACTIVE_STATUSES
RETRYABLE = (JobStatus.failed, JobStatus.cancelled)


def cancel_where(*conditions) -> list[str]:
    """Cancel the queued or running jobs matching conditions; returns the ids it cancelled."""
    now = utcnow()
    with session_scope(services().sessions) as session:
        ids = list(session.scalars(select(Job.id).where(Job.status.in_(CANCELLABLE), *conditions)))
        if not ids:
            return []
        # The status test is repeated in the UPDATE: a job may have finished since the SELECT.
        session.execute(update(Job).where(Job.id.in_(ids), Job.status.in_(CANCELLABLE))
                        .values(status=JobStatus.cancelled, finished_at=now, lease_expires_at=None,
                                error="cancelled by a client"))
        done = list(session.scalars(select(Job.id).where(Job.id.in_(ids),
                                                         Job.status == JobStatus.cancelled)))
        record_finished(session, done)  # webhook events commit with the cancel
        return done


def retry_where(statuses: Collection[JobStatus], *conditions) -> list[Job]:
    """Queue again the jobs in `statuses` matching conditions, then ring the doorbell for each."""
    svc = services()
    with session_scope(svc.sessions) as session:
        ids = list(session.scalars(select(Job.id).where(Job.status.in_(statuses), *conditions)))
        if not ids:
            return []
        # attempts is kept: the worker's lease check (same attempt) must never match an old run.
        session.execute(update(Job).where(Job.id.in_(ids), Job.status.in_(statuses))
                        .values(status=JobStatus.queued, error=None, started_at=None,
                                finished_at=None, lease_expires_at=None))
        jobs = list(session.scalars(select(Job).where(Job.id.in_(ids),
                                                      Job.status == JobStatus.queued)))
    enqueue(jobs, svc)  # after commit; a lost doorbell is re-sent by the sweeper
    return jobs


@bp.post("/api/v1/jobs/<job_id>/cancel")
def cancel_job(job_id: str) -> Response:
    """Cancel a queued or running job: 200 with the job (again 200 if it was cancelled already)."""
    job = get_job_or_404(job_id)
    if job.status not in CANCELLABLE and job.status != JobStatus.cancelled:
        raise ErrorAnswer(409, "job_finished", f"job {job.id} is {job.status.value}; nothing to cancel",
                       extra={"status": job.status.value})
    cancelled = cancel_where(Job.id == job.id)
    job = get_job_or_404(job.id)
    if not cancelled and job.status != JobStatus.cancelled:
        # It finished between the two reads.
        raise ErrorAnswer(409, "job_finished", f"job {job.id} is {job.status.value}; nothing to cancel",
                       extra={"status": job.status.value})
    log.info(logkv(event="job_cancelled", job_id=job.id, changed=bool(cancelled)))
    return jsonify(job_json(job, services().storage))


@bp.post("/api/v1/jobs/<job_id>/retry")
def retry_job(job_id: str):
    """Queue a failed or cancelled job again: 202 with the job."""
    job = get_job_or_404(job_id)
    if not retry_where(RETRYABLE, Job.id == job.id):
        job = get_job_or_404(job.id)
        raise ErrorAnswer(409, "not_retryable",
                       f"job {job.id} is {job.status.value}; only failed or cancelled jobs are retried",
                       extra={"status": job.status.value})
    log.info(logkv(event="job_retried", job_id=job.id))
    job = get_job_or_404(job.id)
    return jsonify(job_json(job, services().storage)), 202, {"Location": f"/api/v1/jobs/{job.id}"}


@bp.post("/api/v1/batches/<batch_id>/cancel")
def cancel_batch(batch_id: str) -> Response:
    """Cancel every queued or running job of a batch: 200 with how many, and the batch."""
    get_batch_or_404(batch_id)
    cancelled = cancel_where(Job.batch_id == batch_id)
    log.info(logkv(event="batch_cancelled", batch_id=batch_id, jobs=len(cancelled)))
    return jsonify({"cancelled": len(cancelled), "job_ids": cancelled, "batch": _batch(batch_id)})


@bp.post("/api/v1/batches/<batch_id>/retry")
def retry_batch(batch_id: str):
    """Queue again a batch's failed jobs (?status=failed,cancelled to include cancelled ones): 202."""
    get_batch_or_404(batch_id)
    statuses = _statuses(request.args.get("status") or "failed")
    jobs = retry_where(statuses, Job.batch_id == batch_id)
    log.info(logkv(event="batch_retried", batch_id=batch_id, jobs=len(jobs)))
    body = {"retried": len(jobs), "job_ids": [j.id for j in jobs], "batch": _batch(batch_id)}
    return jsonify(body), 202, {"Location": f"/api/v1/batches/{batch_id}"}


def _statuses(raw: str) -> list[JobStatus]:
    names = [part.strip().lower() for part in raw.split(",") if part.strip()]
    wanted = {s.value for s in RETRYABLE}
    if not names or not set(names) <= wanted:
        raise ErrorAnswer(400, "bad_parameter", "status must be failed, cancelled or failed,cancelled")
    return [JobStatus(n) for n in names]


def _batch(batch_id: str) -> dict:
    with session_scope(services().sessions) as session:
        batch = get_batch_or_404(batch_id, session)
        return batch_json(batch, status_counts(session, batch_id))
