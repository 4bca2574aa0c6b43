"""Accepting uploads: validate every part, store originals, commit rows, then enqueue."""

from __future__ import annotations

import logging
import time
import unicodedata
from dataclasses import dataclass

from humanseg.core.db import session_scope
from humanseg.core.errors import ImageError, StorageError
from humanseg.core.images import ImageInfo, Limits, validate
from humanseg.core.models import Batch, Job, JobStatus, new_id
from humanseg.core.queue import BrokerError, send_segment
from humanseg.web import Services
from humanseg.web.errors import ApiError
from sqlalchemy import func, select, update
from werkzeug.datastructures import FileStorage

log = logging.getLogger(__name__)

# HTTP status for each core.images rejection code; any other code is a plain 400.
IMAGE_ERROR_STATUS = {"file_too_large": 413, "too_many_pixels": 413, "unsupported_format": 415}


@dataclass
class Upload:
    """One validated part, ready to store."""

    filename: str
    data: bytes
    info: ImageInfo


def display_name(raw: str | None) -> str:
    """The client's filename, for display only: no control characters, at most 255 chars."""
    name = "".join(ch for ch in (raw or "") if unicodedata.category(ch)[0] != "C")
    return name.strip()[:255]


def read_parts(parts: list[FileStorage], services: Services) -> list[Upload]:
    """Validate all parts; raise one ApiError listing every bad file."""
    settings = services.settings
    if not parts:
        raise ApiError(400, "no_files", "send one or more images in the multipart field 'images'")
    if len(parts) > settings.max_files:
        raise ApiError(413, "too_many_files",
                       f"{len(parts)} files sent; at most {settings.max_files} per request")
    limits = Limits(max_file_bytes=settings.max_file_bytes, max_pixels=settings.max_pixels)
    uploads, problems = [], []
    for part in parts:
        name = display_name(part.filename)
        # Read one byte past the limit so oversize files are detected without reading them whole.
        data = part.stream.read(settings.max_file_bytes + 1)
        try:
            info = validate(data, name, limits)
        except ImageError as exc:
            problems.append({"file": name, "code": exc.code, "message": exc.message,
                             "status": IMAGE_ERROR_STATUS.get(exc.code, 400)})
            continue
        uploads.append(Upload(name, data, info))
    if problems:
        raise _rejection(problems)
    return uploads


def _rejection(problems: list[dict]) -> ApiError:
    statuses = {p.pop("status") for p in problems}
    status = statuses.pop() if len(statuses) == 1 else 400
    if len(problems) == 1:
        p = problems[0]
        return ApiError(status, p["code"], f"{p['file'] or 'file'}: {p['message']}",
                        file=p["file"], files=problems)
    names = ", ".join(p["file"] or "?" for p in problems[:5])
    return ApiError(status, "invalid_files",
                    f"{len(problems)} files were rejected ({names}); nothing was queued",
                    files=problems)


def create_jobs(parts: list[FileStorage], services: Services, *, batch_name: str | None = None,
                batch_id: str | None = None) -> tuple[Batch, list[Job]]:
    """The one upload path (API and HTML form): validate all, store, commit, enqueue.

    Raises ApiError (with per-file reasons in .files) when anything is rejected.
    """
    return create_batch(read_parts(parts, services), batch_name, services, batch_id=batch_id)


def create_batch(uploads: list[Upload], batch_name: str | None, services: Services,
                 *, batch_id: str | None = None) -> tuple[Batch, list[Job]]:
    """Store originals under server-made keys, commit rows, then send one task per job."""
    stored: list[tuple[str, str, Upload]] = []
    try:
        # Store first: the database transaction (a write lock on SQLite) stays short.
        for up in uploads:
            job_id = new_id()
            key = f"originals/{job_id}{up.info.extension}"
            services.storage.put(key, up.data, up.info.content_type)
            stored.append((job_id, key, up))
        with session_scope(services.sessions) as session:
            batch, first_seq = _claim_batch(session, batch_id, batch_name, len(uploads))
            jobs = [Job(id=job_id, batch_id=batch.id, seq=first_seq + offset,
                        filename=up.filename, content_type=up.info.content_type,
                        width=up.info.width, height=up.info.height, bytes=up.info.bytes,
                        original_key=key, status=JobStatus.queued, attempts=0)
                    for offset, (job_id, key, up) in enumerate(stored)]
            session.add_all(jobs)
    except StorageError as exc:
        _discard([k for _, k, _ in stored], services)
        raise ApiError(503, "storage_unavailable", f"could not store the upload: {exc}") from exc
    except BaseException:
        _discard([k for _, k, _ in stored], services)
        raise
    enqueue(jobs, services)
    log.info("event=jobs_created batch_id=%s jobs=%d", batch.id, len(jobs))
    return batch, jobs


def _claim_batch(session, batch_id: str | None, batch_name: str | None, n: int) -> tuple[Batch, int]:
    """A new batch, or an existing one with n more job slots reserved; returns first seq."""
    if not batch_id:
        batch = Batch(id=new_id(), name=display_name(batch_name)[:200] or None, job_count=n)
        session.add(batch)
        session.flush()
        return batch, 0
    # The UPDATE takes the row lock first, so concurrent appends get distinct seq ranges.
    updated = session.execute(
        update(Batch).where(Batch.id == batch_id).values(job_count=Batch.job_count + n)
    ).rowcount
    if not updated:
        raise ApiError(404, "batch_not_found", f"no batch with id {batch_id}")
    batch = session.get(Batch, batch_id, populate_existing=True)
    return batch, batch.job_count - n


def _discard(keys: list[str], services: Services) -> None:
    for key in keys:
        try:
            services.storage.delete(key)
        except StorageError:
            log.warning("event=orphan_original key=%s", key)


def enqueue(jobs: list[Job], services: Services) -> None:
    """Send tasks after commit; on broker failure the sweeper re-sends later."""
    for job in jobs:
        try:
            send_segment(services.celery, job.id, services.settings.queue)
        except BrokerError as exc:
            # The row is committed, so the job is not lost: the sweeper re-queues it.
            log.warning("event=enqueue_failed job_id=%s error=%s", job.id, exc)
            return


def wait_for(job_ids: list[str], seconds: float, services: Services) -> bool:
    """Poll the database until all jobs are terminal or time runs out; True if all done."""
    deadline = time.monotonic() + max(0.0, seconds)
    delay = 0.05
    while True:
        with session_scope(services.sessions) as session:
            pending = session.scalar(
                select(func.count()).select_from(Job).where(
                    Job.id.in_(job_ids),
                    Job.status.in_([JobStatus.queued, JobStatus.running])))
        if not pending:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 0.5)
