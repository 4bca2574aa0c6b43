"""Helpers for the gallery/archive tests: an app on a real SQLite file and local storage,
with rows and result objects written the way the worker writes them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import support_images as si
from factories import batch_row, job_row, make_settings

from humanseg.core.db import session_scope
from humanseg.core.models import Base, Job, JobStatus, new_id
from humanseg.core.results import ResultKind, stored_kinds


def make_app(tmp_path, monkeypatch, storage_obj=None, **overrides):
    """create_app on a temp data dir; enqueueing is recorded instead of sent to a broker."""
    import humanseg.web.uploads
    from humanseg.web import create_app

    sent: list[str] = []
    monkeypatch.setattr(humanseg.web.uploads, "send_segment", lambda celery, job_id, queue: sent.append(job_id))
    settings = make_settings(tmp_path / "var", broker_url="redis://127.0.0.1:9/0", secret_key="test-secret",
                             **overrides)
    app = create_app(settings, storage=storage_obj)
    app.config["TESTING"] = True
    svc = app.extensions["humanseg"]
    Base.metadata.create_all(svc.engine)
    app.sent = sent
    return app


def add_batch(app, filenames, *, status=JobStatus.succeeded, name=None, finished_at=None,
              error=None) -> tuple[str, list[str]]:
    """A batch of jobs with originals (and, if succeeded, results) in storage."""
    svc = app.extensions["humanseg"]
    ids = []
    now = finished_at or datetime.now(timezone.utc)
    with session_scope(svc.sessions) as session:
        batch_id = batch_row(session, name=name, job_count=len(filenames)).id
        for seq, fname in enumerate(filenames):
            times = {}
            if status == JobStatus.succeeded:
                times = {"started_at": now - timedelta(seconds=1), "finished_at": now + timedelta(microseconds=seq)}
            elif status == JobStatus.failed:
                times = {"finished_at": now}
            job = job_row(session, batch_id, storage=svc.storage, original=si.solid_jpeg(), seq=seq,
                          filename=fname, width=64, height=48, bytes=100, status=status, error=error, **times)
            if status == JobStatus.succeeded:
                write_results(svc.storage, job)
            ids.append(job.id)
    return batch_id, ids


def write_results(storage, job: Job) -> None:
    """What the worker writes for every job (mask, alpha, thumb), under their deterministic keys.

    Cut-outs and overlays are made on request from the original and the alpha, as in production.
    """
    for kind in stored_kinds():
        storage.put(kind.key(job.id), sample_result(kind), kind.content_type)


ORIGINAL_FILL = si.SOLID_FILL  # every original of add_batch is a support_images.solid_jpeg()
# Per kind: the fill of the sample result; the alpha is half (the composite tests count on it).
SAMPLE_FILL = {"mask": 255, "alpha": 128, "thumb": (200, 120, 90)}


def sample_result(kind: ResultKind) -> bytes:
    """A small image in the kind's format and mode (previews are smaller)."""
    size = (64, 48) if kind.full_size else (32, 24)
    return si.encode(si.solid(size, SAMPLE_FILL[kind.name], kind.mode), kind.content_type.split("/")[1])


def csrf_from(html: str) -> str:
    """The csrf_token value rendered into a page's form."""
    import re

    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)


def add_photo_job(app, size=(120, 90), box=(40, 15, 80, 85), name="person.jpg") -> str:
    """A succeeded job with a real photo and a soft alpha round `box` (the mask where it passes half)."""
    from PIL import ImageDraw, ImageFilter

    from humanseg.core.results import result_kind

    svc = app.extensions["humanseg"]
    photo = si.solid(size, (220, 230, 240))
    ImageDraw.Draw(photo).rectangle(box, fill=(30, 60, 150))
    alpha = si.solid(size, 0, "L")
    ImageDraw.Draw(alpha).rectangle(box, fill=255)
    alpha = alpha.filter(ImageFilter.BoxBlur(1))  # a soft one-pixel rim, as the refined alpha has
    mask = alpha.point(lambda v: 255 if v >= 128 else 0)
    job_id = new_id()
    for kind, img in (("alpha", alpha), ("mask", mask), ("thumb", photo.copy())):
        svc.storage.put(result_kind(kind).key(job_id), si.encode(img, "JPEG" if kind == "thumb" else "PNG"),
                        result_kind(kind).content_type)
    now = datetime.now(timezone.utc)
    with session_scope(svc.sessions) as session:
        batch = batch_row(session, job_count=1)
        job_row(session, batch.id, storage=svc.storage, original=si.encode(photo, "JPEG", quality=95), id=job_id,
                filename=name, width=size[0], height=size[1], status=JobStatus.succeeded, attempts=1,
                started_at=now, finished_at=now)
    return job_id
