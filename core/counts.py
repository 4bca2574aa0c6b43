"""Counts of jobs by status: the one grouped query behind batch answers, pages, webhooks and waits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from humanseg.core.models import Job, JobStatus


@dataclass(frozen=True)
class StatusCounts:
    """How many of a batch's jobs are in each status."""

    by_status: Mapping[str, int]  # every JobStatus value, zeros included, in enum order

    @property
    def total(self) -> int:
        """Jobs in the batch (every job row, whatever its status)."""
        return sum(self.by_status.values())

    @property
    def finished(self) -> int:
        """Jobs that will not change any more (JobStatus.is_terminal)."""
        return sum(n for status, n in self.by_status.items() if JobStatus(status).is_terminal())

    @property
    def done(self) -> bool:
        """True when every job has finished (an empty batch is done)."""
        return self.finished == self.total

    @property
    def progress(self) -> float:
        """Finished share in [0, 1]; 1.0 for an empty batch."""
        return self.finished / self.total if self.total else 1.0


def status_counts(session: Session, batch_id: str) -> StatusCounts:
    """Counts by status of one batch's jobs, from one grouped query."""
    return counts_by_batch(session, [batch_id])[batch_id]


def counts_by_batch(session: Session, batch_ids: list[str]) -> dict[str, StatusCounts]:
    """Counts by status of each of these batches (zeros included), from one grouped query."""
    found: dict[str, dict[str, int]] = {i: {s.value: 0 for s in JobStatus} for i in batch_ids}
    if batch_ids:
        query = select(Job.batch_id, Job.status, func.count()).group_by(Job.batch_id, Job.status)
        query = query.where(Job.batch_id == batch_ids[0]) if len(batch_ids) == 1 else \
            query.where(Job.batch_id.in_(batch_ids))
        for batch_id, status, n in session.execute(query).all():
            found[batch_id][status.value] = n
    return {i: StatusCounts(by_status) for i, by_status in found.items()}
