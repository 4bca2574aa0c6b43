"""JSON API under /api/v1 (the health checks are in web/health.py)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Blueprint, jsonify, redirect, request, send_file
from flask.wrappers import Response
from sqlalchemy import select

from humanseg.core.counts import counts_by_batch, status_counts
from humanseg.core.db import session_scope
from humanseg.core.errors import ObjectNotFound, StorageError
from humanseg.core.logfmt import logkv
from humanseg.core.models import Batch, Job, JobStatus
from humanseg.core.results import RESULTS
from humanseg.core.variants import defaults
from humanseg.web import principal, uploads, variant_cache
from humanseg.web.cursors import Page, newest_first
from humanseg.web.deletion import delete_batch, delete_job
from humanseg.web.errors import ErrorAnswer, storage_unavailable
from humanseg.web.filenames import safe_stem
from humanseg.web.idempotency import idempotent
from humanseg.web.lookup import get_batch_or_404, get_job_or_404
from humanseg.web.models_api import upload_model
from humanseg.web.serialize import (
    KINDS,
    ORIGINAL,
    batch_json,
    job_brief,
    job_json,
)
from humanseg.web.services import Services, services
from humanseg.web.uploads import wait_for
from humanseg.web.webhooks_api import webhook_fields, webhook_json

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__)

_PREFER_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*(\d+(?:\.\d+)?)", re.IGNORECASE)
# /segment answers with one full-size result (the thumbnail is a gallery preview).
SEGMENT_OUTPUTS = tuple(kind.name for kind in RESULTS if kind.full_size)


@contextmanager
def wait_slot(svc: Services, wanted: bool = True) -> Iterator[bool]:
    """True while this request holds one of the process's wait slots; False: answer at once.

    Never blocks: when every slot is taken the request is answered as if it had not asked
    to wait (202 with its jobs), so waiting requests can never hold every server thread.
    """
    held = wanted and svc.wait_slots.acquire(blocking=False)
    if wanted and not held:
        log.info(logkv(event="wait_slots_full", path=request.path))
    try:
        yield held
    finally:
        if held:
            svc.wait_slots.release()


@bp.post("/api/v1/jobs")
@idempotent  # Idempotency-Key: the same key and body answers the first answer again
def create_jobs():
    """Upload 1..max_files images; 202 with the batch and one job per file."""
    svc = services()
    # The body is read before a wait slot is taken: a slow upload must not hold one.
    parts = request.files.getlist("images")
    outputs = variant_cache.upload_outputs(request.form.getlist("outputs"))  # 400 before anything is stored
    model = upload_model(request.form.getlist("model"))  # 400 listing the choices, before anything is stored
    webhook = webhook_fields(request.form)  # 400 (webhook_url_refused: SSRF guard) before storing
    wait = _prefer_wait()
    headers: dict[str, str] = {}
    status = 202
    batch_id = request.form.get("batch_id")
    if batch_id is not None and not batch_id.strip():  # a client's unset variable, not "make a new batch"
        raise ErrorAnswer(400, "bad_parameter", "batch_id is empty; leave the field out to make a new batch")
    with wait_slot(svc, wanted=wait is not None) as may_wait:
        batch, jobs = uploads.create_jobs(parts, svc, batch_name=request.form.get("batch_name"),
                                          batch_id=batch_id,
                                          outputs=outputs, webhook=webhook, model=model)
        if may_wait:
            assert wait is not None  # a wait slot is taken only when a wait was asked for
            headers["Preference-Applied"] = f"wait={wait:g}"
            if wait_for([j.id for j in jobs], wait, svc):
                status = 200
                jobs = _reload(jobs)
    headers["Location"] = f"/api/v1/batches/{batch.id}"
    body: dict[str, Any] = {"batch_id": batch.id, "batch_url": headers["Location"], "batch_name": batch.name,
            "jobs": [job_brief(j) for j in jobs]}
    if webhook is not None:
        body["webhook"] = webhook_json(batch, with_secret=True)  # the only time the secret is shown
    return jsonify(body), status, headers


def _prefer_wait() -> float | None:
    match = _PREFER_WAIT.search(request.headers.get("Prefer", ""))
    if not match:
        return None
    return min(float(match.group(1)), services().settings.segment_wait_seconds)


def _reload(jobs: list[Job]) -> list[Job]:
    ids = [j.id for j in jobs]
    with session_scope(services().sessions) as session:
        found = {j.id: j for j in session.scalars(select(Job).where(Job.id.in_(ids)))}
    return [found[i] for i in ids]


@bp.get("/api/v1/jobs/<job_id>")
def get_job(job_id: str) -> Response:
    """Status, timings, size, error and result URLs of one job."""
    return jsonify(job_json(get_job_or_404(job_id), services().storage))


@bp.get("/api/v1/jobs/<job_id>/<kind>")
def job_result(job_id: str, kind: str):
    """One result (mask, cutout, ...) or the original: bytes (local) or 302 to S3."""
    if kind not in KINDS:
        raise ErrorAnswer(404, "not_found", f"unknown result {kind!r}; one of {', '.join(KINDS)}")
    job = get_job_or_404(job_id)
    # Options (bg, format, size, crop...) name a variant, made here on first request (web/variant_cache.py).
    opts = variant_cache.options(kind, request.args.items(multi=True))
    if kind != ORIGINAL and job.status != JobStatus.succeeded:
        code = {JobStatus.failed: "job_failed", JobStatus.cancelled: "job_cancelled"}.get(
            job.status, "not_ready")
        raise ErrorAnswer(409, code, f"job {job.id} is {job.status.value}; no {kind} available",
                       extra={"status": job.status.value})
    key = variant_cache.ensure(job, opts, services().storage)
    # Saved files are named after the upload (alice.jpg -> alice_cutout.png), like the job page's links;
    # werkzeug adds the RFC 6266 filename* form when the name is not ASCII.
    stem = safe_stem(job.filename)
    return serve_object(key, variant_cache.media_type(job, opts), stem if kind == ORIGINAL else f"{stem}_{kind}")


def serve_object(key: str, mimetype: str, name: str):
    """Redirect to a presigned URL when storage has one, else stream the bytes."""
    storage = services().storage
    url = storage.url(key)
    if url:
        return redirect(url, code=302)
    try:
        stream = storage.open_stream(key)
    except ObjectNotFound as exc:
        raise ErrorAnswer(404, "result_missing", f"object {key} is missing from storage") from exc
    except StorageError as exc:
        raise storage_unavailable(exc) from exc
    ext = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}.get(mimetype, "")
    resp = send_file(stream, mimetype=mimetype, download_name=name + ext, max_age=3600)
    return resp


@bp.get("/api/v1/batches")
def list_batches() -> Response:
    """The batches this request may see, newest first, with counts by status (?limit=&cursor=)."""
    limit = _int_arg("limit", 50, 1, 500)
    query = select(Batch).where(*principal.batch_scope())
    with session_scope(services().sessions) as session:
        page = _page(session, query, Batch.created_at, Batch.id, limit)
        counts = counts_by_batch(session, [b.id for b in page.rows])
    return jsonify({"batches": [batch_json(b, counts[b.id]) for b in page.rows],
                    "next_cursor": page.next_cursor})


def _page(session, query, time_col, id_col, limit: int) -> Page:
    """The page of ?cursor=; a cursor this server did not give is a 400."""
    page = newest_first(session, query, time_col, id_col, request.args.get("cursor", ""), limit)
    if page.bad_cursor:
        raise ErrorAnswer(400, "bad_parameter", "cursor is not a next_cursor this server gave")
    return page


@bp.get("/api/v1/jobs")
def list_jobs() -> Response:
    """The jobs this request may see, newest first (?status=&batch_id=&limit=&cursor=)."""
    limit = _int_arg("limit", 100, 1, 500)
    conditions = list(principal.job_scope())
    status = request.args.get("status")
    if status is not None:
        try:
            conditions.append(Job.status == JobStatus(status))
        except ValueError as exc:
            choices = ", ".join(s.value for s in JobStatus)
            raise ErrorAnswer(400, "bad_parameter", f"status must be one of {choices}") from exc
    batch_id = request.args.get("batch_id")
    if batch_id is not None:
        get_batch_or_404(batch_id)  # 404 for a batch it may not see, like GET /batches/<id>
        conditions.append(Job.batch_id == batch_id)
    svc = services()
    with session_scope(svc.sessions) as session:
        page = _page(session, select(Job).where(*conditions), Job.created_at, Job.id, limit)
    return jsonify({"jobs": [job_json(j, svc.storage) for j in page.rows], "next_cursor": page.next_cursor})


@bp.get("/api/v1/batches/<batch_id>")
def get_batch(batch_id: str) -> Response:
    """Counts by status, progress, and a page of jobs (?limit=&cursor=).

    limit=0: counts and progress only, the cheap answer for a client waiting on a batch (a page of
    jobs costs about 0.07 ms of CPU per job to read and write out)."""
    limit = _int_arg("limit", 100, 0, 500)
    cursor = _int_arg("cursor", -1, -1, 10**9)
    svc = services()
    with session_scope(svc.sessions) as session:
        batch = get_batch_or_404(batch_id, session)
        counts = status_counts(session, batch_id)
        jobs = list(session.scalars(
            select(Job).where(Job.batch_id == batch_id, Job.seq > cursor)
            .order_by(Job.seq).limit(limit + 1))) if limit else []
    more = limit > 0 and len(jobs) > limit
    jobs = jobs[:limit]
    body = batch_json(batch, counts)
    body["jobs"] = [job_json(j, svc.storage) for j in jobs]
    body["next_cursor"] = str(jobs[-1].seq) if more else None
    return jsonify(body)


def _int_arg(name: str, default: int, lo: int, hi: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ErrorAnswer(400, "bad_parameter", f"{name} must be an integer") from exc
    if not lo <= value <= hi:
        raise ErrorAnswer(400, "bad_parameter", f"{name} must be between {lo} and {hi}")
    return value


@bp.post("/api/v1/segment")
def segment():
    """One image in, the result back: waits up to segment_wait_seconds (if a slot is free), else 202."""
    svc = services()
    output = (request.values.get("output") or "mask").lower()
    if output not in SEGMENT_OUTPUTS:
        raise ErrorAnswer(400, "bad_parameter", f"output must be one of {', '.join(SEGMENT_OUTPUTS)}")
    model = upload_model(request.values.getlist("model"))
    parts = request.files.getlist("image")
    if len(parts) != 1:
        raise ErrorAnswer(400, "no_files" if not parts else "too_many_files",
                       "send exactly one image in the multipart field 'image'")
    # werkzeug types CombinedMultiDict.items(multi=True) as (key, list); it yields one pair per value.
    opts = variant_cache.options(output, variant_cache.option_pairs(request.values.items(multi=True)))  # type: ignore[arg-type]
    # The plain cut-out or overlay is made by the worker with the mask; any other variant here.
    made_by_worker = output if opts == defaults(output) else None
    with wait_slot(svc) as may_wait:
        _, jobs = uploads.create_jobs(parts, svc, batch_name=request.form.get("batch_name"),
                                      outputs=variant_cache.upload_outputs([made_by_worker or ""]), model=model)
        job = jobs[0]
        if may_wait:
            wait_for([job.id], svc.settings.segment_wait_seconds, svc)
    job = get_job_or_404(job.id)
    job_url = f"/api/v1/jobs/{job.id}"
    if job.status == JobStatus.succeeded:
        data = variant_cache.rendered(job, opts, svc.storage)
        return Response(data, mimetype=opts.content_type,
                        headers={"X-Job-Id": job.id, "Content-Location": job_url})
    if job.status == JobStatus.failed:
        raise ErrorAnswer(422, "job_failed", f"segmentation failed: {job.error}",
                       file=job.filename, extra={"job_id": job.id})
    body = job_json(job, svc.storage)
    return jsonify(body), 202, {"Location": job_url}


@bp.delete("/api/v1/jobs/<job_id>")
def delete_job_json(job_id: str) -> Response:
    """Delete one job with its original and results (cross-origin calls: web/guard.py)."""
    deleted = delete_job(job_id, services())
    return jsonify({"deleted": {"job_id": job_id, "batch_id": deleted.batch_id,
                                "jobs": deleted.jobs, "objects": deleted.objects}})


@bp.delete("/api/v1/batches/<batch_id>")
def delete_batch_json(batch_id: str) -> Response:
    """Delete a batch with all its jobs and their stored objects."""
    deleted = delete_batch(batch_id, services())
    return jsonify({"deleted": {"batch_id": batch_id, "jobs": deleted.jobs,
                                "objects": deleted.objects}})
