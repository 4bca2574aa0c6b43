"""The one place tests build rows (Batch, Job) and Settings; images come from support_images.

Every test that needs a row or a Settings object goes through these, so a new required column or
setting is added here once, not in ten hand-written copies.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from humanseg.core.models import Batch, Job, new_id
from humanseg.core.settings import Settings

# --- rows -------------------------------------------------------------------------------------


def batch_row(session, **fields) -> Batch:
    """Add a Batch to the session and flush it (its id is set): empty and unnamed unless fields
    say otherwise."""
    batch = Batch(**{"job_count": 0, **fields})
    session.add(batch)
    session.flush()
    return batch


def job_row(session, batch_id: str, *, storage=None, original: bytes | None = None, **fields) -> Job:
    """Add a Job of batch_id to the session: queued, a 96x64 JPEG at originals/<id>.jpg unless
    fields say otherwise (any Job column may be given).

    With storage, `original` (default: support_images.jpeg()) is stored under the job's
    original_key first, and bytes defaults to its length."""
    job_id = fields.pop("id", None) or new_id()
    fields.setdefault("original_key", f"originals/{job_id}.jpg")
    fields.setdefault("content_type", "image/jpeg")
    if storage is not None:
        if original is None:
            import support_images

            original = support_images.jpeg()
        storage.put(fields["original_key"], original, fields["content_type"])
    values = {"filename": "x.jpg", "width": 96, "height": 64,
              "bytes": len(original) if original is not None else 1, **fields}
    job = Job(id=job_id, batch_id=batch_id, **values)
    session.add(job)
    return job


def insert_job(storage, sessions, original: bytes, *, name: str = "x", width: int = 96,
               height: int = 64, created_at: datetime | None = None, outputs: str | None = None,
               model: str | None = None) -> str:
    """Store an original and commit Batch + Job rows (status queued) without sending any task;
    the job's id. For tests that bypass the upload path (worker, sweeper, e2e)."""
    from humanseg.core.db import session_scope

    extra = {"created_at": created_at} if created_at is not None else {}
    with session_scope(sessions) as s:
        batch = batch_row(s, name=name, job_count=1)
        job = job_row(s, batch.id, storage=storage, original=original, filename=f"{name}.jpg",
                      width=width, height=height, outputs=outputs, model=model, **extra)
        return job.id


# --- settings ---------------------------------------------------------------------------------


def make_settings(data_dir=None, /, **fields) -> Settings:
    """Settings for a test from typed fields (the rest default).

    With a data_dir, a test secret key too ("t", unless fields give one): test apps sign sessions
    with it and no key file is written under the data dir."""
    if data_dir is not None:
        fields = {"data_dir": Path(data_dir), "secret_key": "t", **fields}
    return Settings(**fields)


def settings_env(**values) -> dict[str, str]:
    """HUMANSEG_* environment variables from keyword values (None dropped), for a subprocess
    (parse them with Settings.from_env to see what the child sees)."""
    return {f"HUMANSEG_{k.upper()}": str(v) for k, v in values.items() if v is not None}
