"""Retention: finished jobs older than `retention_days` go, with their originals and results,
then batches left empty and as old; one bounded chunk per sweep pass."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session, sessionmaker

from humanseg.core.db import session_scope
from humanseg.core.errors import StorageError
from humanseg.core.layout import results_prefix
from humanseg.core.logfmt import logkv
from humanseg.core.models import Batch, Job, JobStatus, utcnow
from humanseg.core.settings import Settings
from humanseg.core.storage import Storage

log = logging.getLogger(__name__)

CHUNK = 500  # jobs (and batches) deleted per pass, at most: a pass stays short however much expired


@dataclass(frozen=True)
class Purged:
    """What one retention pass removed."""

    jobs: int = 0
    batches: int = 0
    objects: int = 0


def cutoff(settings: Settings, now: datetime | None = None) -> datetime | None:
    """Records created before this are expired; None when retention is off."""
    if settings.retention_days <= 0:
        return None
    return (now or utcnow()) - timedelta(days=settings.retention_days)


def purge_expired(settings: Settings, sessions: sessionmaker[Session], storage: Storage,
                  now: datetime | None = None, chunk: int = CHUNK) -> Purged:
    """Delete up to `chunk` expired finished jobs (objects first, then rows) and empty old batches.

    Objects go first: a pass cut short leaves rows whose objects are partly gone, and the next
    pass deletes them again (deleting is idempotent); never objects no row leads to. Queued and
    running jobs are left alone: a worker may still write their results.
    """
    before = cutoff(settings, now)
    if before is None:
        return Purged()
    finished = [s for s in JobStatus if s.is_terminal()]
    with session_scope(sessions) as session:
        expired = list(session.execute(
            select(Job.id, Job.original_key).where(Job.created_at < before, Job.status.in_(finished))
            .order_by(Job.created_at, Job.id).limit(chunk)))
    gone: list[str] = []
    objects = 0
    for job_id, original_key in expired:
        try:
            storage.delete(original_key)
            objects += 1 + storage.delete_prefix(results_prefix(job_id))
        except StorageError as exc:  # the row stays, so the next pass tries again
            log.warning(logkv(event="retention_objects_failed", job_id=job_id, error=str(exc)))
            continue
        gone.append(job_id)
    with session_scope(sessions) as session:
        if gone:
            session.execute(delete(Job).where(Job.id.in_(gone)))
        # Old batches with no job left (their jobs just went, or were deleted one by one).
        empty = list(session.scalars(
            select(Batch.id).where(Batch.created_at < before, ~exists().where(Job.batch_id == Batch.id))
            .limit(chunk)))
        if empty:
            session.execute(delete(Batch).where(Batch.id.in_(empty), ~exists().where(Job.batch_id == Batch.id)))
    for job_id in gone:
        log.info(logkv(event="job_expired", job_id=job_id))
    if gone or empty:
        log.info(logkv(event="retention_pass", jobs=len(gone), batches=len(empty), objects=objects,
                       before=before.isoformat(timespec="seconds")))
    return Purged(jobs=len(gone), batches=len(empty), objects=objects)
