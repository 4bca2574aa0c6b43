"""Accepting uploads: validate every part, store originals, commit rows, then enqueue."""

from __future__ import annotations

import logging
import tempfile
import time
import unicodedata
from dataclasses import dataclass
from typing import IO

from flask import Request
from sqlalchemy import func, select, update
from werkzeug.datastructures import FileStorage

from humanseg.core.db import session_scope
from humanseg.core.errors import ImageError, StorageError
from humanseg.core.images import ImageInfo, Limits, validate
from humanseg.core.layout import original_key
from humanseg.core.logfmt import logkv
from humanseg.core.models import ACTIVE_STATUSES, Batch, Job, JobStatus, is_public_id, new_id
from humanseg.core.queue import BrokerError, send_segment
from humanseg.core.webhooks import WebhookConfig
from humanseg.web import principal, ratelimit
from humanseg.web.errors import IMAGE_ERROR_STATUS, ErrorAnswer, storage_unavailable
from humanseg.web.offload import off_loop
from humanseg.web.services import Services

log = logging.getLogger(__name__)

# File parts larger than this go to a temporary file as they arrive (werkzeug keeps 500 KiB
# in memory per part, which for 500 parts is 250 MiB held by one request).
SPOOL_BYTES = 64 * 1024


class SpoolingRequest(Request):
    """Flask's request, with every uploaded file part spooled to disk past SPOOL_BYTES."""

    def _get_file_stream(self, total_content_length, content_type, filename=None,
                         content_length=None) -> IO[bytes]:
        return tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, mode="rb+")


@dataclass
class Upload:
    """One validated part, ready to store: its spooled file, never its bytes held in memory."""

    filename: str
    file: IO[bytes]
    info: ImageInfo

    def read(self) -> bytes:
        """The part's bytes (one file at a time, at most max_file_bytes, while it is stored)."""
        self.file.seek(0)
        return self.file.read()


def display_name(raw: str | None) -> str:
    """The client's filename, for display only: no control characters, at most 255 chars."""
    name = "".join(ch for ch in (raw or "") if unicodedata.category(ch)[0] != "C")
    return name.strip()[:255]


def read_parts(parts: list[FileStorage], services: Services) -> list[Upload]:
    """Validate all parts; raise one ErrorAnswer listing every bad file."""
    settings = services.settings
    if not parts:
        raise ErrorAnswer(400, "no_files", "send one or more images in the multipart field 'images'")
    if len(parts) > settings.max_files:
        raise ErrorAnswer(413, "too_many_files",
                       f"{len(parts)} files sent; at most {settings.max_files} per request")
    limits = Limits(max_file_bytes=settings.max_file_bytes, max_pixels=settings.max_pixels)
    uploads, problems = [], []
    pixels = 0
    for part in parts:
        name = display_name(part.filename)
        try:
            # Checked where werkzeug spooled it: the same decode and orientation as the worker's.
            info = off_loop(validate, part.stream, limits)
        except ImageError as exc:
            problems.append({"file": name, "code": exc.code, "message": exc.message,
                             "status": IMAGE_ERROR_STATUS.get(exc.code, 400)})
            continue
        pixels += info.pixels
        if pixels > settings.max_request_pixels:
            # Stop decoding: the request is refused whatever the remaining parts hold.
            raise ErrorAnswer(413, "request_too_many_pixels",
                           f"the images add up to more than {settings.max_request_pixels} pixels "
                           f"(reached at {name or 'file'}); send fewer or smaller images per "
                           "request", file=name)
        uploads.append(Upload(name, part.stream, info))
    if problems:
        raise _rejection(problems)
    return uploads


def _rejection(problems: list[dict]) -> ErrorAnswer:
    statuses = {p.pop("status") for p in problems}
    status = statuses.pop() if len(statuses) == 1 else 400
    if len(problems) == 1:
        p = problems[0]
        return ErrorAnswer(status, p["code"], f"{p['file'] or 'file'}: {p['message']}",
                        file=p["file"], files=problems)
    names = ", ".join(p["file"] or "?" for p in problems[:5])
    return ErrorAnswer(status, "invalid_files",
                    f"{len(problems)} files were rejected ({names}); nothing was queued",
                    files=problems)


def create_jobs(parts: list[FileStorage], services: Services, *, batch_name: str | None = None,
                batch_id: str | None = None, outputs: str | None = None,
                webhook: WebhookConfig | None = None, model: str | None = None) -> tuple[Batch, list[Job]]:
    """The one upload path (API and HTML form): validate all, store, commit, enqueue.

    outputs: on-request kinds the worker makes too (core.variants.parse_outputs's text).
    model: the registered model that makes the results (web/models_api.py checked it).
    Raises ErrorAnswer (with per-file reasons in .files) when anything is rejected.
    """
    if webhook is not None and batch_id:  # parameters first: before decoding, quota or storage
        raise ErrorAnswer(400, "bad_parameter", "webhook_url applies to a new batch only; "
                          "the batch keeps the callback it was made with",
                          extra={"parameter": "webhook_url"})
    uploads = read_parts(parts, services)
    with ratelimit.images(len(uploads)):  # 429 past the key's daily quota; refunded on failure
        return create_batch(uploads, batch_name, services, batch_id=batch_id, outputs=outputs,
                            webhook=webhook, model=model)


def create_batch(uploads: list[Upload], batch_name: str | None, services: Services,
                 *, batch_id: str | None = None, outputs: str | None = None,
                 webhook: WebhookConfig | None = None, model: str | None = None) -> tuple[Batch, list[Job]]:
    """Store originals under server-made keys, commit rows, then send one task per job."""
    stored: list[tuple[str, str, Upload]] = []
    try:
        # Store first: the database transaction (a write lock on SQLite) stays short.
        for up in uploads:
            job_id = new_id()
            key = original_key(job_id, up.info.extension)
            services.storage.put(key, up.read(), up.info.content_type)
            stored.append((job_id, key, up))
        with session_scope(services.sessions) as session:
            batch, first_seq = _claim_batch(session, batch_id, batch_name, len(uploads))
            if webhook is not None:  # set before any job can finish (web/webhooks_api.py)
                batch.webhook_url, batch.webhook_secret = webhook.url, webhook.secret
                batch.webhook_events = ",".join(webhook.events)
            jobs = [Job(id=job_id, batch_id=batch.id, seq=first_seq + offset,
                        filename=up.filename, content_type=up.info.content_type,
                        width=up.info.width, height=up.info.height, bytes=up.info.bytes,
                        original_key=key, status=JobStatus.queued, attempts=0, outputs=outputs,
                        model=model or services.models.default)
                    for offset, (job_id, key, up) in enumerate(stored)]
            session.add_all(jobs)
    except StorageError as exc:
        _discard([k for _, k, _ in stored], services)
        raise storage_unavailable(exc, batch_id=batch_id or "new", files=len(uploads)) from exc
    except BaseException:
        _discard([k for _, k, _ in stored], services)
        raise
    enqueue(jobs, services)
    log.info(logkv(event="jobs_created", batch_id=batch.id, jobs=len(jobs)))
    return batch, jobs


def _claim_batch(session, batch_id: str | None, batch_name: str | None, n: int) -> tuple[Batch, int]:
    """A new batch, or an existing one with n more job slots reserved; returns first seq."""
    if not batch_id:
        batch = Batch(id=new_id(), name=display_name(batch_name)[:200] or None, job_count=n,
                      owner_key_id=principal.owner_id())
        session.add(batch)
        session.flush()
        return batch, 0
    # The UPDATE takes the row lock first, so concurrent appends get distinct seq ranges.
    # A malformed id never reaches SQL: PostgreSQL rejects NUL bytes with an error, not a miss.
    updated = session.execute(
        update(Batch).where(Batch.id == batch_id, *principal.batch_scope())  # only a batch it may see
        .values(job_count=Batch.job_count + n)
    ).rowcount if is_public_id(batch_id) else 0
    if not updated:
        raise ErrorAnswer(404, "batch_not_found", f"no batch with id {batch_id}")
    batch = session.get(Batch, batch_id, populate_existing=True)
    return batch, batch.job_count - n


def _discard(keys: list[str], services: Services) -> None:
    for key in keys:
        try:
            services.storage.delete(key)
        except StorageError:
            log.warning(logkv(event="orphan_original", key=key))


def enqueue(jobs: list[Job], services: Services) -> None:
    """Send tasks after commit; on broker failure the sweeper re-sends later."""
    for job in jobs:
        try:
            send_segment(services.celery, job.id, services.settings.queue)
        except BrokerError as exc:
            # The row is committed, so the job is not lost: the sweeper re-queues it.
            log.warning(logkv(event="enqueue_failed", job_id=job.id, error=exc))
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
                    Job.status.in_(ACTIVE_STATUSES)))
        if not pending:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 0.5)
