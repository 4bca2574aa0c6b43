"""What tells batches apart on the batches page: a few thumbnails, the first file names, the age."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from humanseg.core.models import Job, JobStatus, utcnow

THUMBS = 4  # finished jobs' thumbnails per batch
NAMES = 3  # file names per batch


@dataclass
class Preview:
    """A batch's first succeeded jobs (for thumbnails) and its first file names, in upload order."""

    thumbs: list[Job] = field(default_factory=list)
    names: list[str] = field(default_factory=list)


def previews(session: Session, batch_ids: list[str]) -> dict[str, Preview]:
    """Previews of these batches from one query (never one per batch).

    Each job is numbered within its batch, and within its batch and status, in upload order:
    the first NAMES jobs give names, the first THUMBS succeeded ones thumbnails."""
    found = {batch_id: Preview() for batch_id in batch_ids}
    if not batch_ids:
        return found
    order = (Job.seq, Job.id)
    ranked = select(
        Job,
        func.row_number().over(partition_by=Job.batch_id, order_by=order).label("nth"),
        func.row_number().over(partition_by=(Job.batch_id, Job.status), order_by=order).label("nth_of_status"),
    ).where(Job.batch_id.in_(batch_ids)).subquery()
    job = aliased(Job, ranked)
    query = select(job, ranked.c.nth, ranked.c.nth_of_status).where(or_(
        ranked.c.nth <= NAMES,
        and_(ranked.c.status == JobStatus.succeeded, ranked.c.nth_of_status <= THUMBS),
    )).order_by(ranked.c.batch_id, ranked.c.seq, ranked.c.id)
    for row, nth, nth_of_status in session.execute(query).all():
        preview = found[row.batch_id]
        if nth <= NAMES:
            preview.names.append(row.filename or "untitled")
        if row.status is JobStatus.succeeded and nth_of_status <= THUMBS:
            preview.thumbs.append(row)
    return found


def ago(when: datetime, now: datetime | None = None) -> str:
    """How long ago, in words a list is scanned by: 'just now', '3 min ago', '5 h ago', '2 days ago'."""
    seconds = max(0, int(((now or utcnow()) - when).total_seconds()))
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    days = seconds // 86400
    return f"{days} day{'' if days == 1 else 's'} ago"
