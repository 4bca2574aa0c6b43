"""JSON endpoints: batch archive (streamed zip) and deletion, plus the pages' delete forms."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

from flask import (
    Blueprint,
    Response,
    flash,
    jsonify,
    redirect,
    render_template,
    url_for,
)
from humanseg.core.db import session_scope
from humanseg.core.models import Batch, Job, JobStatus
from humanseg.web import Services, services
from humanseg.web.csrf import same_origin, valid_form_token
from humanseg.web.deletion import delete_batch, delete_job
from humanseg.web.errors import ApiError
from humanseg.web.pages import attachment, safe_stem, unique_name
from humanseg.web.zipstream import Entry, stream_zip
from sqlalchemy import select

log = logging.getLogger(__name__)

bp = Blueprint("archive", __name__)

_PAGE = 200  # jobs read per query while streaming an archive


def _require_same_origin() -> None:
    if not same_origin():
        raise ApiError(403, "cross_origin", "cross-origin request refused")


# ---- archive -------------------------------------------------------------------------------

def _archive_entries(batch_id: str, svc: Services) -> Iterator[Entry]:
    """masks/<name>.png and cutouts/<name>.png per finished job, read page by page."""
    taken: set[str] = set()
    skipped: list[str] = []
    last_seq = -1
    while True:
        with session_scope(svc.sessions) as session:
            page = list(session.scalars(select(Job).where(Job.batch_id == batch_id,
                                                          Job.seq > last_seq)
                                        .order_by(Job.seq).limit(_PAGE)))
        if not page:
            break
        last_seq = page[-1].seq
        for job in page:
            if job.status != JobStatus.succeeded or not job.mask_key:
                reason = job.error or job.status.value
                skipped.append(f"{job.filename}\t{job.status.value}\t{reason}")
                continue
            name = unique_name(safe_stem(job.filename), taken)
            yield f"masks/{name}.png", _opener(svc, job.mask_key)
            if job.cutout_key:
                yield f"cutouts/{name}.png", _opener(svc, job.cutout_key)
    if skipped:
        text = "Not included (file, status, reason):\n" + "\n".join(skipped) + "\n"
        yield "not_included.txt", lambda: io.BytesIO(text.encode("utf-8"))


def _opener(svc: Services, key: str):
    return lambda: svc.storage.open_stream(key)


@bp.get("/api/v1/batches/<batch_id>/archive")
def batch_archive(batch_id: str) -> Response:
    """A zip of the batch's masks and cut-outs, streamed as it is written."""
    svc = services()
    with session_scope(svc.sessions) as session:
        batch = session.get(Batch, batch_id) if len(batch_id) <= 64 else None
        if batch is None:
            raise ApiError(404, "batch_not_found", f"no batch with id {batch_id}")
        done = session.scalar(select(Job.id).where(Job.batch_id == batch_id,
                                                   Job.status == JobStatus.succeeded).limit(1))
        name, created = batch.name, batch.created_at
    if done is None:
        raise ApiError(409, "nothing_finished", f"batch {batch_id} has no finished results yet")
    log.info("event=archive_start batch_id=%s", batch_id)
    stem = safe_stem(name or "", fallback=f"humanseg-{batch_id[:8]}")
    resp = Response(stream_zip(_archive_entries(batch_id, svc), when=created),
                    mimetype="application/zip")
    resp.headers["Content-Disposition"] = attachment(f"{stem}.zip")
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Accel-Buffering"] = "no"  # let nginx pass chunks straight through
    return resp


# ---- deletion: JSON API --------------------------------------------------------------------

@bp.delete("/api/v1/jobs/<job_id>")
def api_delete_job(job_id: str) -> Response:
    """Delete one job with its original and results."""
    _require_same_origin()
    deleted = delete_job(job_id, services()) if len(job_id) <= 64 else None
    if deleted is None:
        raise ApiError(404, "job_not_found", f"no job with id {job_id}")
    return jsonify({"deleted": {"job_id": job_id, "batch_id": deleted.batch_id,
                                "jobs": deleted.jobs, "objects": deleted.objects}})


@bp.delete("/api/v1/batches/<batch_id>")
def api_delete_batch(batch_id: str) -> Response:
    """Delete a batch with all its jobs and their stored objects."""
    _require_same_origin()
    deleted = delete_batch(batch_id, services()) if len(batch_id) <= 64 else None
    if deleted is None:
        raise ApiError(404, "batch_not_found", f"no batch with id {batch_id}")
    return jsonify({"deleted": {"batch_id": batch_id, "jobs": deleted.jobs,
                                "objects": deleted.objects}})


# ---- deletion: HTML forms (CSRF token) -----------------------------------------------------

def _csrf_failed():
    return render_template("gallery/error.html", title="Form expired",
                           message="The form has expired or did not come from this site. "
                                   "Go back, reload the page and try again."), 400


@bp.post("/jobs/<job_id>/delete")
def delete_job_form(job_id: str):
    """Delete button on the job page."""
    if not valid_form_token():
        return _csrf_failed()
    deleted = delete_job(job_id, services()) if len(job_id) <= 64 else None
    if deleted is None:
        return render_template("gallery/error.html", title="Image not found",
                               message="This image does not exist or was already deleted."), 404
    flash("The image and its results were deleted.", "info")
    return redirect(url_for("gallery.batch", batch_id=deleted.batch_id), code=303)


@bp.post("/batches/<batch_id>/delete")
def delete_batch_form(batch_id: str):
    """Delete button on the batch page."""
    if not valid_form_token():
        return _csrf_failed()
    deleted = delete_batch(batch_id, services()) if len(batch_id) <= 64 else None
    if deleted is None:
        return render_template("gallery/error.html", title="Batch not found",
                               message="This batch does not exist or was already deleted."), 404
    flash(f"Batch deleted ({deleted.jobs} images).", "info")
    return redirect(url_for("gallery.index"), code=303)
