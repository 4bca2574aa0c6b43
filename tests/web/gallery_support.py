"""Helpers for the gallery/archive tests: an app on a real SQLite file and local storage,
with rows and result objects written the way the worker writes them."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

from PIL import Image

from humanseg.core.db import session_scope
from humanseg.core.models import Base, Batch, Job, JobStatus, new_id
from humanseg.core.results import ResultKind, stored_kinds
from humanseg.core.settings import Settings


def jpeg_bytes(size=(64, 48), colour=(200, 120, 90)) -> bytes:
    """A small valid JPEG."""
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "JPEG")
    return buf.getvalue()


def make_app(tmp_path, monkeypatch, storage_obj=None, **overrides):
    """create_app on a temp data dir; enqueueing is recorded instead of sent to a broker."""
    import humanseg.web.uploads
    from humanseg.web import create_app

    sent: list[str] = []
    monkeypatch.setattr(humanseg.web.uploads, "send_segment", lambda celery, job_id, queue: sent.append(job_id))
    env = {"HUMANSEG_DATA_DIR": str(tmp_path / "var"),
           "HUMANSEG_BROKER_URL": "redis://127.0.0.1:9/0",
           "HUMANSEG_SECRET_KEY": "test-secret"}
    settings = Settings.from_env(env).with_(**overrides)
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
    batch_id = new_id()
    ids = []
    now = finished_at or datetime.now(timezone.utc)
    with session_scope(svc.sessions) as session:
        session.add(Batch(id=batch_id, name=name, job_count=len(filenames)))
        session.flush()
        for seq, fname in enumerate(filenames):
            job_id = new_id()
            ids.append(job_id)
            key = f"originals/{job_id}.jpg"
            svc.storage.put(key, jpeg_bytes(), "image/jpeg")
            job = Job(id=job_id, batch_id=batch_id, seq=seq, filename=fname,
                      content_type="image/jpeg", width=64, height=48, bytes=100,
                      original_key=key, status=status, error=error)
            if status == JobStatus.succeeded:
                write_results(svc.storage, job)
                job.started_at = now - timedelta(seconds=1)
                job.finished_at = now + timedelta(microseconds=seq)
            elif status == JobStatus.failed:
                job.finished_at = now
            session.add(job)
    return batch_id, ids


def write_results(storage, job: Job) -> None:
    """What the worker writes for every job (mask, alpha, thumb), under their deterministic keys.

    Cut-outs and overlays are made on request from the original and the alpha, as in production.
    """
    for kind in stored_kinds():
        storage.put(kind.key(job.id), sample_result(kind), kind.content_type)


ORIGINAL_FILL = (200, 120, 90)  # jpeg_bytes' colour: every original of add_batch
# Per kind: the fill of the sample result; the alpha is half (the composite tests count on it).
SAMPLE_FILL = {"mask": 255, "alpha": 128, "thumb": (200, 120, 90)}


def sample_result(kind: ResultKind) -> bytes:
    """A small image in the kind's format and mode (previews are smaller)."""
    size = (64, 48) if kind.full_size else (32, 24)
    buf = io.BytesIO()
    Image.new(kind.mode, size, SAMPLE_FILL[kind.name]).save(buf, kind.content_type.split("/")[1])
    return buf.getvalue()


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
    photo = Image.new("RGB", size, (220, 230, 240))
    ImageDraw.Draw(photo).rectangle(box, fill=(30, 60, 150))
    alpha = Image.new("L", size, 0)
    ImageDraw.Draw(alpha).rectangle(box, fill=255)
    alpha = alpha.filter(ImageFilter.BoxBlur(1))  # a soft one-pixel rim, as the refined alpha has
    mask = alpha.point(lambda v: 255 if v >= 128 else 0)
    batch_id, job_id = new_id(), new_id()
    key = f"originals/{job_id}.jpg"
    buf = io.BytesIO()
    photo.save(buf, "JPEG", quality=95)
    svc.storage.put(key, buf.getvalue(), "image/jpeg")
    for kind, img in (("alpha", alpha), ("mask", mask), ("thumb", photo.copy())):
        out = io.BytesIO()
        img.save(out, "JPEG" if kind == "thumb" else "PNG")
        svc.storage.put(result_kind(kind).key(job_id), out.getvalue(), result_kind(kind).content_type)
    now = datetime.now(timezone.utc)
    with session_scope(svc.sessions) as session:
        session.add(Batch(id=batch_id, job_count=1))
        session.flush()
        session.add(Job(id=job_id, batch_id=batch_id, seq=0, filename=name, content_type="image/jpeg",
                        width=size[0], height=size[1], bytes=len(buf.getvalue()), original_key=key,
                        status=JobStatus.succeeded, attempts=1, started_at=now, finished_at=now))
    return job_id
