"""Job and batch JSON as fixed in docs/CONTRACT.md."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import url_for
from humanseg.core.models import Batch, Job, JobStatus
from humanseg.core.storage import Storage

RESULT_KINDS = ("mask", "cutout", "overlay", "thumb")
KINDS = RESULT_KINDS + ("original",)


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC, or None."""
    return value.isoformat().replace("+00:00", "Z") if value else None


def result_key(job: Job, kind: str) -> str | None:
    """Storage key of one of the job's objects."""
    return {"mask": job.mask_key, "cutout": job.cutout_key, "overlay": job.overlay_key,
            "thumb": job.thumb_key, "original": job.original_key}[kind]


def job_urls(job: Job, storage: Storage) -> dict[str, str | None]:
    """Self URL plus result URLs (presigned for S3, ours for local); null until succeeded."""
    urls: dict[str, str | None] = {"self": url_for("api.get_job", job_id=job.id)}
    done = job.status == JobStatus.succeeded
    for kind in KINDS:
        key = result_key(job, kind)
        if (kind != "original" and not done) or not key:
            urls[kind] = None
            continue
        urls[kind] = storage.url(key) or url_for("api.job_result", job_id=job.id, kind=kind)
    return urls


def job_json(job: Job, storage: Storage) -> dict[str, Any]:
    """The public representation of one job."""
    return {
        "id": job.id,
        "batch_id": job.batch_id,
        "filename": job.filename,
        "status": job.status.value,
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
    return {"id": job.id, "filename": job.filename, "status": job.status.value,
            "url": url_for("api.get_job", job_id=job.id)}


def batch_json(batch: Batch, counts: dict[str, int]) -> dict[str, Any]:
    """Batch header with counts by status and progress in [0, 1]."""
    total = batch.job_count
    done = counts.get("succeeded", 0) + counts.get("failed", 0)
    return {
        "id": batch.id,
        "name": batch.name,
        "created_at": iso(batch.created_at),
        "job_count": total,
        "counts": {s.value: counts.get(s.value, 0) for s in JobStatus},
        "progress": round(done / total, 4) if total else 1.0,
        "done": done >= total,
        "url": url_for("api.get_batch", batch_id=batch.id),
    }
