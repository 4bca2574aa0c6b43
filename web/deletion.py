"""Deleting jobs and batches: records first (one transaction), then stored objects."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select

from humanseg.core.db import session_scope
from humanseg.core.errors import StorageError
from humanseg.core.layout import results_prefix
from humanseg.core.logfmt import logkv
from humanseg.core.models import Batch, Job
from humanseg.web.lookup import get_batch_or_404, get_job_or_404
from humanseg.web.services import Services

log = logging.getLogger(__name__)


@dataclass
class Deleted:
    """What a deletion removed."""

    jobs: int
    objects: int
    batch_id: str | None = None


def _job_keys(job_id: str, original_key: str | None) -> tuple[list[str], str]:
    return ([original_key] if original_key else []), results_prefix(job_id)


def _remove_objects(services: Services, job_keys: Sequence[tuple[str, str | None]]) -> int:
    """Remove originals and results; storage failures are logged, never hidden silently."""
    count = 0
    for job_id, original_key in job_keys:
        keys, prefix = _job_keys(job_id, original_key)
        try:
            for key in keys:
                services.storage.delete(key)
                count += 1
            count += services.storage.delete_prefix(prefix)
        except StorageError as exc:
            # The record is already gone; leftover objects are unreachable garbage.
            log.warning(logkv(event="delete_objects_failed", job_id=job_id, error=str(exc)))
    return count


def delete_job(job_id: str, services: Services) -> Deleted:
    """Delete one job (row, original and results); RecordNotFound when it does not exist."""
    with session_scope(services.sessions) as session:
        job = get_job_or_404(job_id, session)
        batch_id, original_key = job.batch_id, job.original_key
        # Batch.job_count stays: it hands out seq numbers, and a reused seq breaks paging.
        session.delete(job)
    objects = _remove_objects(services, [(job_id, original_key)])
    log.info(logkv(event="job_deleted", job_id=job_id, batch_id=batch_id, objects=objects))
    return Deleted(jobs=1, objects=objects, batch_id=batch_id)


def delete_batch(batch_id: str, services: Services) -> Deleted:
    """Delete a batch with all its jobs and their objects; RecordNotFound when it does not exist."""
    with session_scope(services.sessions) as session:
        get_batch_or_404(batch_id, session)
        keys = list(session.execute(select(Job.id, Job.original_key)
                                    .where(Job.batch_id == batch_id)))
        session.execute(delete(Job).where(Job.batch_id == batch_id))
        session.execute(delete(Batch).where(Batch.id == batch_id))
    objects = _remove_objects(services, keys)
    log.info(logkv(event="batch_deleted", batch_id=batch_id, jobs=len(keys), objects=objects))
    return Deleted(jobs=len(keys), objects=objects, batch_id=batch_id)
