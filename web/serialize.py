"""Job and batch JSON as fixed in docs/CONTRACT.md."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import url_for

from humanseg.core.counts import StatusCounts
from humanseg.core.models import Batch, Job, JobStatus, model_of
from humanseg.core.results import RESULTS, result_key, result_kind
from humanseg.core.storage import Storage
from humanseg.core.variants import ORIGINAL  # the upload itself, served next to the results
from humanseg.web.webhooks_api import webhook_json

KINDS = (*(kind.name for kind in RESULTS), ORIGINAL)  # what /api/v1/jobs/<id>/<kind> serves


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC, or None."""
    return value.isoformat().replace("+00:00", "Z") if value else None


def object_key(job: Job, kind: str) -> str | None:
    """Storage key of the job's original or of one result; None for results until succeeded."""
    if kind == ORIGINAL:
        return job.original_key
    return result_key(job.id, kind, job.model) if job.status == JobStatus.succeeded else None


def object_url(job: Job, kind: str, storage: Storage, self_url: str | None = None) -> str | None:
    """URL of one object of a job: presigned on S3, served by the API locally; None if absent.

    Results made on request (cutout, overlay) always get our URL: the object may not exist
    yet, and the API makes it before answering (a 302 to the presigned URL on S3).
    self_url: the job's own URL when the caller has it already (see job_urls).
    """
    key = object_key(job, kind)
    if not key:
        return None
    found = result_kind(kind)
    direct = None if found is not None and found.on_request else storage.url(key)
    if direct:
        return direct
    # api.job_result is api.get_job's path plus /<kind>: one url_for per job, not one per kind
    # (a batch poll lists up to 500 jobs with 7 links each).
    return f"{self_url}/{kind}" if self_url else url_for("api.job_result", job_id=job.id, kind=kind)


def job_urls(job: Job, storage: Storage) -> dict[str, str | None]:
    """Self URL plus result URLs (presigned for S3, ours for local); null until succeeded."""
    own = url_for("api.get_job", job_id=job.id)
    urls: dict[str, str | None] = {"self": own}
    urls.update((kind, object_url(job, kind, storage, own)) for kind in KINDS)
    return urls


def job_json(job: Job, storage: Storage) -> dict[str, Any]:
    """The public representation of one job."""
    return {
        "id": job.id,
        "batch_id": job.batch_id,
        "filename": job.filename,
        "status": job.status.value,
        "done": job.status.is_terminal(),  # clients stop polling on it: no list of statuses of their own
        "model": model_of(job),
        "content_type": job.content_type,
        "width": job.width,
        "height": job.height,
        "bytes": job.bytes,
        "attempts": job.attempts,
        "error": job.error,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "duration_ms": job.duration_ms,
        "urls": job_urls(job, storage),
    }


def job_brief(job: Job) -> dict[str, Any]:
    """The short form returned right after upload."""
    return {"id": job.id, "filename": job.filename, "status": job.status.value, "model": model_of(job),
            "url": url_for("api.get_job", job_id=job.id)}


def batch_json(batch: Batch, counts: StatusCounts) -> dict[str, Any]:
    """Batch header with counts by status and progress in [0, 1]."""
    return {
        "id": batch.id,
        "name": batch.name,
        "created_at": iso(batch.created_at),
        "job_count": counts.total,
        "counts": dict(counts.by_status),
        "progress": round(counts.progress, 4),
        "done": counts.done,
        "url": url_for("api.get_batch", batch_id=batch.id),
        "webhook": webhook_json(batch),  # url and events, or null (never the secret)
    }
