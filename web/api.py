"""JSON API under /api/v1 plus /healthz and /readyz."""

from __future__ import annotations

import logging
import re

from flask import Blueprint, jsonify, redirect, request, send_file
from flask.wrappers import Response
from humanseg.core.db import ping, session_scope
from humanseg.core.errors import ObjectNotFound, StorageError
from humanseg.core.models import Job, JobStatus
from humanseg.core.queue import BrokerError, ping_broker
from humanseg.core.results import RESULTS, result_kind
from humanseg.web import services, uploads
from humanseg.web.csrf import same_origin
from humanseg.web.deletion import delete_batch, delete_job
from humanseg.web.errors import ApiError
from humanseg.web.lookup import get_batch_or_404, get_job_or_404, status_counts
from humanseg.web.serialize import (
    KINDS,
    ORIGINAL,
    batch_json,
    job_brief,
    job_json,
    media_type,
    object_key,
)
from humanseg.web.uploads import wait_for
from sqlalchemy import select

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__)

_PREFER_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*(\d+(?:\.\d+)?)", re.IGNORECASE)
# /segment answers with one full-size result (the thumbnail is a gallery preview).
SEGMENT_OUTPUTS = tuple(kind.name for kind in RESULTS if kind.full_size)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is alive."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """Database and broker both answer."""
    svc = services()
    checks: dict[str, str] = {}
    try:
        ping(svc.engine)
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - report any driver error as not ready
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        ping_broker(svc.settings.broker_url)
        checks["broker"] = "ok"
    except BrokerError as exc:
        checks["broker"] = f"error: {exc}"
    ok = all(v == "ok" for v in checks.values())
    return jsonify({"status": "ok" if ok else "unavailable", "checks": checks}), 200 if ok else 503


@bp.post("/api/v1/jobs")
def create_jobs():
    """Upload 1..max_files images; 202 with the batch and one job per file."""
    svc = services()
    batch, jobs = uploads.create_jobs(request.files.getlist("images"), svc,
                              batch_name=request.form.get("batch_name"),
                              batch_id=request.form.get("batch_id") or None)
    wait = _prefer_wait()
    headers = {"Location": f"/api/v1/batches/{batch.id}"}
    status = 202
    if wait is not None:
        headers["Preference-Applied"] = f"wait={wait:g}"
        if wait_for([j.id for j in jobs], wait, svc):
            status = 200
            jobs = _reload(jobs)
    body = {"batch_id": batch.id, "batch_url": headers["Location"], "batch_name": batch.name,
            "jobs": [job_brief(j) for j in jobs]}
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
        raise ApiError(404, "not_found", f"unknown result {kind!r}; one of {', '.join(KINDS)}")
    job = get_job_or_404(job_id)
    if kind != ORIGINAL and job.status != JobStatus.succeeded:
        code = "job_failed" if job.status == JobStatus.failed else "not_ready"
        raise ApiError(409, code, f"job {job.id} is {job.status.value}; no {kind} available",
                       extra={"status": job.status.value})
    key = object_key(job, kind)
    if not key:
        raise ApiError(404, "result_missing", f"job {job.id} has no {kind}")
    return serve_object(key, media_type(job, kind), f"{job.id}-{kind}")


def serve_object(key: str, mimetype: str, name: str):
    """Redirect to a presigned URL when storage has one, else stream the bytes."""
    storage = services().storage
    url = storage.url(key)
    if url:
        return redirect(url, code=302)
    try:
        stream = storage.open_stream(key)
    except ObjectNotFound as exc:
        raise ApiError(404, "result_missing", f"object {key} is missing from storage") from exc
    except StorageError as exc:
        raise ApiError(503, "storage_unavailable", str(exc)) from exc
    ext = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}.get(mimetype, "")
    resp = send_file(stream, mimetype=mimetype, download_name=name + ext, max_age=3600)
    return resp


@bp.get("/api/v1/batches/<batch_id>")
def get_batch(batch_id: str) -> Response:
    """Counts by status, progress, and a page of jobs (?limit=&cursor=)."""
    limit = _int_arg("limit", 100, 1, 500)
    cursor = _int_arg("cursor", -1, -1, 10**9)
    svc = services()
    with session_scope(svc.sessions) as session:
        batch = get_batch_or_404(batch_id, session)
        counts = status_counts(session, batch_id)
        jobs = list(session.scalars(
            select(Job).where(Job.batch_id == batch_id, Job.seq > cursor)
            .order_by(Job.seq).limit(limit + 1)))
    more = len(jobs) > limit
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
        raise ApiError(400, "bad_parameter", f"{name} must be an integer") from exc
    if not lo <= value <= hi:
        raise ApiError(400, "bad_parameter", f"{name} must be between {lo} and {hi}")
    return value


@bp.post("/api/v1/segment")
def segment():
    """One image in, the result back: waits up to segment_wait_seconds, else 202."""
    svc = services()
    output = (request.values.get("output") or "mask").lower()
    if output not in SEGMENT_OUTPUTS:
        raise ApiError(400, "bad_parameter", f"output must be one of {', '.join(SEGMENT_OUTPUTS)}")
    parts = request.files.getlist("image")
    if len(parts) != 1:
        raise ApiError(400, "no_files" if not parts else "too_many_files",
                       "send exactly one image in the multipart field 'image'")
    _, jobs = uploads.create_jobs(parts, svc, batch_name=request.form.get("batch_name"))
    job = jobs[0]
    wait_for([job.id], svc.settings.segment_wait_seconds, svc)
    job = get_job_or_404(job.id)
    job_url = f"/api/v1/jobs/{job.id}"
    if job.status == JobStatus.succeeded:
        kind = result_kind(output)
        try:
            data = svc.storage.get(kind.key(job.id))
        except StorageError as exc:
            raise ApiError(503, "storage_unavailable", str(exc)) from exc
        return Response(data, mimetype=kind.content_type,
                        headers={"X-Job-Id": job.id, "Content-Location": job_url})
    if job.status == JobStatus.failed:
        raise ApiError(422, "job_failed", f"segmentation failed: {job.error}",
                       file=job.filename, extra={"job_id": job.id})
    body = job_json(job, svc.storage)
    return jsonify(body), 202, {"Location": job_url}


def _require_same_origin() -> None:
    if not same_origin():
        raise ApiError(403, "cross_origin", "cross-origin request refused")


@bp.delete("/api/v1/jobs/<job_id>")
def delete_job_json(job_id: str) -> Response:
    """Delete one job with its original and results."""
    _require_same_origin()
    deleted = delete_job(job_id, services())
    return jsonify({"deleted": {"job_id": job_id, "batch_id": deleted.batch_id,
                                "jobs": deleted.jobs, "objects": deleted.objects}})


@bp.delete("/api/v1/batches/<batch_id>")
def delete_batch_json(batch_id: str) -> Response:
    """Delete a batch with all its jobs and their stored objects."""
    _require_same_origin()
    deleted = delete_batch(batch_id, services())
    return jsonify({"deleted": {"batch_id": batch_id, "jobs": deleted.jobs,
                                "objects": deleted.objects}})
