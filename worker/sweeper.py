"""Re-queue jobs whose lease expired or whose doorbell was lost (broker flushed)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import timedelta

from humanseg.core.db import session_scope
from humanseg.core.models import Job, JobStatus, utcnow
from humanseg.core.queue import BrokerError, send_segment
from humanseg.core.settings import Settings
from sqlalchemy import select, true, update
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

BATCH = 500


@dataclass(frozen=True)
class SweepResult:
    """Counts from one sweep."""

    requeued: int = 0
    resent: int = 0
    failed: int = 0


def sweep(settings: Settings, sessions: sessionmaker[Session], celery) -> SweepResult:
    """One pass: expired leases -> queued (or failed when out of attempts); stale queued -> resent."""
    now = utcnow()
    requeued, failed = [], 0
    with session_scope(sessions) as session:
        expired = session.execute(
            select(Job.id, Job.attempts).where(Job.status == JobStatus.running,
                                               Job.lease_expires_at < now).limit(BATCH)).all()
        for job_id, attempts in expired:
            base = update(Job).where(Job.id == job_id, Job.status == JobStatus.running,
                                     Job.lease_expires_at < now)
            if attempts >= settings.max_attempts:
                failed += session.execute(base.values(
                    status=JobStatus.failed, finished_at=now, lease_expires_at=None,
                    error=f"worker lost the job {attempts} times (lease expired)")).rowcount
            elif session.execute(base.values(status=JobStatus.queued, lease_expires_at=None)).rowcount:
                requeued.append(job_id)
        stale_before = now - timedelta(seconds=settings.stale_queued_seconds)
        # Only when the queue is empty: otherwise the doorbells are there and workers are busy.
        stale = [] if queue_depth(settings) else list(session.scalars(
            select(Job.id).where(Job.status == JobStatus.queued, Job.created_at < stale_before,
                                 Job.id.not_in(requeued) if requeued else true())
            .order_by(Job.created_at).limit(BATCH)))
    sent = 0
    for job_id in requeued + stale:
        try:
            send_segment(celery, job_id, settings.queue)
            sent += 1
        except BrokerError as exc:
            log.warning("event=sweep_send_failed job_id=%s error=%s", job_id, exc)
            break
    result = SweepResult(requeued=len(requeued), resent=len(stale), failed=failed)
    if requeued or stale or failed:
        log.info("event=sweep requeued=%d resent=%d failed=%d sent=%d", result.requeued,
                 result.resent, result.failed, sent)
    return result


def queue_depth(settings: Settings) -> int:
    """Messages waiting in the broker queue (0 when it cannot be read)."""
    import redis

    try:
        client = redis.Redis.from_url(settings.broker_url, socket_timeout=2, socket_connect_timeout=2)
        try:
            return int(client.llen(settings.queue))
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001 - an unreachable broker is reported by the send below
        log.warning("event=queue_depth_unknown error=%s", exc)
        return 0


def interval(settings: Settings) -> float:
    """How often the background sweeper runs."""
    return float(max(5, min(60, settings.lease_seconds // 2, settings.stale_queued_seconds // 2)))


class SweeperThread(threading.Thread):
    """Runs sweep() every interval until stopped; errors are logged and the loop goes on."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], celery):
        super().__init__(name="humanseg-sweeper", daemon=True)
        self.settings, self.sessions, self.celery = settings, sessions, celery
        self.stop_event = threading.Event()

    def run(self) -> None:
        every = interval(self.settings)
        while not self.stop_event.wait(every):
            try:
                sweep(self.settings, self.sessions, self.celery)
            except Exception:  # keep sweeping; the next pass may succeed
                log.exception("event=sweep_error")

    def stop(self) -> None:
        self.stop_event.set()
