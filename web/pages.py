"""HTML pages: upload, batches, batch view, gallery, job detail, and their forms."""

from __future__ import annotations

import logging
from functools import partial
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from sqlalchemy import select

from humanseg.core.counts import counts_by_batch, status_counts
from humanseg.core.db import session_scope
from humanseg.core.images import FORMATS, IMAGE_SUFFIXES
from humanseg.core.models import Batch, Job, JobStatus, model_of
from humanseg.core.results import on_request_kinds
from humanseg.core.variants import Background, Options
from humanseg.web import batchlist, jobpage, principal
from humanseg.web.backgrounds import store_background
from humanseg.web.csrf import csrf_token, valid_form_token
from humanseg.web.cursors import newest_first
from humanseg.web.deletion import delete_batch, delete_job
from humanseg.web.errors import ErrorAnswer, error_page
from humanseg.web.filenames import attachment, safe_stem
from humanseg.web.jobpage import parse_colour
from humanseg.web.lookup import get_batch_or_404, get_job_or_404
from humanseg.web.models_api import upload_model
from humanseg.web.serialize import ORIGINAL, object_url
from humanseg.web.services import services
from humanseg.web.uploads import create_jobs
from humanseg.web.variant_cache import rendered, upload_outputs

log = logging.getLogger(__name__)

bp = Blueprint(
    "pages", __name__, template_folder="templates",
    static_folder="static", static_url_path="/assets",
)

# The file inputs' accept=: the types and file names the server takes (core/images.py).
ACCEPT_IMAGES = ",".join([*(content_type for content_type, _ in FORMATS.values()), *IMAGE_SUFFIXES])
PAGE_SIZE = 48
BATCHES_PAGE = 50
BATCH_PAGE_LIMIT = 1000  # tiles rendered server-side; the script fetches the rest


@bp.app_context_processor
def _template_helpers() -> dict:
    svc = services()
    return {"csrf_token": csrf_token,
            "thumb_url": lambda job: object_url(job, "thumb", svc.storage),
            "preview_url": jobpage.preview_url, "accept_images": ACCEPT_IMAGES,
            "model_of": model_of}


@bp.after_app_request
def _page_headers(resp: Response) -> Response:
    """Defence in depth for HTML pages: scripts only from us, nothing framed, no sniffing."""
    if resp.mimetype == "text/html" and request.blueprint == "pages":
        img = " ".join(["'self'", "data:", *_storage_origins()])
        resp.headers.setdefault("Content-Security-Policy", (
            f"default-src 'self'; img-src {img}; script-src 'self'; "
            "style-src 'self' 'unsafe-inline'; connect-src 'self'; object-src 'none'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"))
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
    return resp


def _storage_origins() -> list[str]:
    """Where result images may come from besides us: the S3 endpoint of presigned URLs."""
    svc = services()
    cached = svc.gallery_img_origins
    if cached is None:
        url = svc.storage.url("originals/probe.jpg")  # local storage: None (served by us)
        parts = urlsplit(url) if url else None
        cached = [f"{parts.scheme}://{parts.netloc}"] if parts and parts.netloc else []
        svc.gallery_img_origins = cached
    return cached


@bp.get("/favicon.ico")
def favicon() -> Response:
    """The icon browsers ask for by default."""
    assert bp.static_folder is not None  # the blueprint is made with one
    return send_from_directory(bp.static_folder, "favicon.ico", mimetype="image/x-icon",
                               max_age=86400)


@bp.get("/")
def index() -> str:
    """Upload page."""
    return _upload_page()


def _upload_page(errors: list[dict] | None = None, title: str = "", status: int = 200):
    settings = services().settings
    html = render_template(
        "pages/upload.html", nav="upload", errors=errors or [], error_title=title,
        max_files=settings.max_files, max_file_mb=settings.max_file_bytes // (1024 * 1024),
        api_jobs_url=url_for("api.create_jobs"), prepare=on_request_kinds(),
        models=list(services().models.models.values()), default_model=services().models.default)
    return html, status


@bp.post("/upload")
def upload():
    """No-JavaScript upload: same validation and queueing as the API, then the batch page (the image's
    own page for a single photo)."""
    if not valid_form_token():
        return _form_expired()
    parts = [p for p in request.files.getlist("images") if p.filename]
    try:
        batch, jobs = create_jobs(parts, services(), batch_name=request.form.get("batch_name"),
                                  outputs=upload_outputs(request.form.getlist("outputs")),
                                  model=upload_model(request.form.getlist("model")))
    except ErrorAnswer as exc:
        errors: list[dict] = exc.files or [{"file": exc.file, "message": exc.message}]
        return _upload_page(errors, "Nothing was uploaded: " + exc.message, exc.status)
    if len(jobs) == 1:
        return redirect(url_for("pages.job", job_id=jobs[0].id), code=303)
    return redirect(url_for("pages.batch", batch_id=batch.id), code=303)


def _form_expired() -> tuple[str, int]:
    return error_page(400, "Form expired", "The form has expired or did not come from this "
                      "site. Go back, reload the page and try again.")


@bp.get("/batches/<batch_id>")
def batch(batch_id: str):
    """A batch's jobs with live status."""
    with session_scope(services().sessions) as session:
        found = get_batch_or_404(batch_id, session)
        counts = status_counts(session, batch_id)
        jobs = session.scalars(select(Job).where(Job.batch_id == batch_id)
                               .order_by(Job.seq, Job.id).limit(BATCH_PAGE_LIMIT + 1)).all()
    # The bar as batch.js draws it: empty for an empty batch.
    pct = round(100 * counts.finished / counts.total) if counts.total else 0
    return render_template(
        "pages/batch.html", batch=found, jobs=jobs[:BATCH_PAGE_LIMIT], done_label=done_label(counts),
        more=len(jobs) > BATCH_PAGE_LIMIT, counts=counts, done=counts.done, pct=pct,
        api_batch_url=url_for("api.get_batch", batch_id=batch_id, limit=500))


def done_label(counts) -> str:
    """What a finished batch's page says: 'All done' only when something was done."""
    by, total = counts.by_status, counts.total
    if total and by["cancelled"] == total:
        return "Cancelled"
    if total and by["succeeded"] == 0:
        return "Finished: nothing succeeded"
    return "All done"


@bp.get("/gallery")
def gallery():
    """Finished results, newest first, keyset-paged on (finished_at, id)."""
    query = select(Job).where(Job.status == JobStatus.succeeded, Job.finished_at.is_not(None),
                              *principal.job_scope())
    cursor = request.args.get("cursor", "")
    with session_scope(services().sessions) as session:
        page = newest_first(session, query, Job.finished_at, Job.id, cursor, PAGE_SIZE)
    return render_template("pages/gallery.html", nav="gallery", jobs=page.rows,
                           cursor="" if page.bad_cursor else cursor, next_cursor=page.next_cursor,
                           bad_cursor=page.bad_cursor)


@bp.get("/batches")
def batches():
    """Every batch, newest first, with its counts by status, first thumbnails and names, and age;
    keyset-paged on (created_at, id). Three queries whatever the page holds."""
    cursor = request.args.get("cursor", "")
    with session_scope(services().sessions) as session:
        page = newest_first(session, select(Batch).where(*principal.batch_scope()), Batch.created_at,
                            Batch.id, cursor, BATCHES_PAGE)
        ids = [b.id for b in page.rows]
        counts, shown = counts_by_batch(session, ids), batchlist.previews(session, ids)
    return render_template("pages/batches.html", nav="batches", ago=batchlist.ago,
                           rows=[(b, counts[b.id], shown[b.id]) for b in page.rows],
                           cursor="" if page.bad_cursor else cursor, next_cursor=page.next_cursor,
                           bad_cursor=page.bad_cursor)


@bp.get("/jobs/<job_id>")
def job(job_id: str):
    """Display-size previews of the original and every full-size result, downloads, options."""
    found = get_job_or_404(job_id)
    succeeded = found.status == JobStatus.succeeded
    form = jobpage.read_form(request.args)
    return render_template(
        "pages/job.html", job=found, views=jobpage.views(found, services().storage) if succeeded else [],
        form=form, swatches=jobpage.SWATCHES, formats=jobpage.FORMAT_CHOICES,
        stem=safe_stem(found.filename),
        original_url=object_url(found, ORIGINAL, services().storage),
        original_preview=jobpage.preview_url(found, ORIGINAL),
        original_ext=(found.original_key or "").rpartition(".")[2] or "jpg",
        option_preview=url_for("api.job_result", job_id=found.id, kind="cutout",
                               **form.preview_query()),  # type: ignore[arg-type]  # option names only
        option_download=url_for("api.job_result", job_id=found.id, kind="cutout", **form.query),  # type: ignore[arg-type]  # option names only
        api_job_url=url_for("api.get_job", job_id=found.id),
        api_backgrounds_url=url_for("backgrounds.create_background")), 400 if form.error else 200


@bp.get("/jobs/<job_id>/composite.png")
def composite(job_id: str):
    """The cut-out on a solid background colour (?bg=#rrggbb), as PNG (kept for earlier links)."""
    found = get_job_or_404(job_id)
    if found.status != JobStatus.succeeded:
        abort(404)
    bg = parse_colour(request.args.get("bg"))
    opts = Options("cutout", "png", bg=Background("colour", bg[1:]))
    resp = Response(rendered(found, opts, services().storage), mimetype="image/png")
    resp.headers["Cache-Control"] = "private, max-age=3600"
    if request.args.get("download"):
        name = f"{safe_stem(found.filename)}_bg_{bg[1:]}.png"
        resp.headers["Content-Disposition"] = attachment(name)
    return resp


@bp.post("/jobs/<job_id>/background")
def background_form(job_id: str):
    """No-JavaScript background upload: store the image, then show the job with it behind."""
    if not valid_form_token():
        return _form_expired()
    found = get_job_or_404(job_id)
    try:
        background_id, _ = store_background(request.files.get("image"), services())
    except ErrorAnswer as exc:
        flash(f"That background was not accepted: {exc.message}", "error")
        return redirect(url_for("pages.job", job_id=found.id), code=303)
    return redirect(url_for("pages.job", job_id=found.id, bgmode="image", bgimage=background_id),
                    code=303)


@bp.post("/jobs/<job_id>/delete")
def delete_job_form(job_id: str):
    """Delete button on the job page."""
    if not valid_form_token():
        return _form_expired()
    deleted = delete_job(job_id, services())
    flash("The image and its results were deleted.", "info")
    return redirect(url_for("pages.batch", batch_id=deleted.batch_id), code=303)


@bp.post("/batches/<batch_id>/delete")
def delete_batch_form(batch_id: str):
    """Delete button on the batch page."""
    if not valid_form_token():
        return _form_expired()
    deleted = delete_batch(batch_id, services())
    flash(f"Batch deleted ({deleted.jobs} images).", "info")
    return redirect(url_for("pages.index"), code=303)


def _plural(n: int) -> str:
    return f"{n} image{'s' if n != 1 else ''}"


def _control(action: str, *, job_id: str | None = None, batch_id: str | None = None):
    """The page buttons' cancel and retry (web/jobs_control.py's conditional UPDATEs), then back."""
    from humanseg.web.jobs_control import RETRYABLE, cancel_where, retry_where

    if not valid_form_token():
        return _form_expired()
    if job_id is not None:
        job_id = get_job_or_404(job_id).id
        where, back = Job.id == job_id, url_for("pages.job", job_id=job_id)
    else:
        assert batch_id is not None  # the routes pass one of the two
        get_batch_or_404(batch_id)
        where, back = Job.batch_id == batch_id, url_for("pages.batch", batch_id=batch_id)
    changed = cancel_where(where) if action == "cancel" else retry_where(RETRYABLE, where)
    if job_id is not None:
        flash({("cancel", True): "The image was cancelled.", ("cancel", False): "The image had already finished.",
               ("retry", True): "The image is queued again.",
               ("retry", False): "Only failed or cancelled images can be retried."}[action, bool(changed)], "info")
    else:
        flash(f"{_plural(len(changed))} {'cancelled' if action == 'cancel' else 'queued again'}.", "info")
    return redirect(back, code=303)


# The buttons: POST /jobs/<id>/cancel|retry (one image) and /batches/<id>/cancel|retry (the whole batch).
for _action in ("cancel", "retry"):
    bp.add_url_rule(f"/jobs/<job_id>/{_action}", f"{_action}_job_form", partial(_control, _action), methods=["POST"])
    bp.add_url_rule(f"/batches/<batch_id>/{_action}", f"{_action}_batch_form", partial(_control, _action),
                    methods=["POST"])
