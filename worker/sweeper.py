"""Re-queue jobs whose lease expired or whose doorbell was lost (broker flushed)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from humanseg.core.db import make_engine, make_sessionmaker, session_scope
from humanseg.core.models import Job, JobStatus, utcnow
from humanseg.core.queue import BrokerError, make_sender, send_segment
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
    """Seconds between sweeps: often enough for the lease and stale-queued timeouts."""
    return float(max(5, min(60, settings.lease_seconds // 2, settings.stale_queued_seconds // 2)))


def run_loop(settings: Settings, sessions: sessionmaker[Session], celery, stop: threading.Event,
             every: float | None = None) -> None:
    """The sweep loop: sweep now, then every `every` seconds (default interval()) until stop is set."""
    every = every or interval(settings)
    while True:
        try:
            sweep(settings, sessions, celery)
        except Exception:  # keep sweeping; the next pass may succeed (database or broker back)
            log.exception("event=sweep_error")
        if stop.wait(every):
            return


@contextmanager
def _standalone(settings: Settings) -> Iterator[tuple[sessionmaker[Session], Any]]:
    """Sessions and a task sender for a sweeper outside any worker (`humanseg sweep`)."""
    engine = make_engine(settings.database_url)
    celery = make_sender(settings)
    try:
        yield make_sessionmaker(engine), celery
    finally:
        celery.close()
        engine.dispose()


def sweep_once(settings: Settings) -> SweepResult:
    """`humanseg sweep`: one pass."""
    with _standalone(settings) as (sessions, celery):
        return sweep(settings, sessions, celery)


def run_standalone(settings: Settings, every: float | None = None) -> None:
    """`humanseg sweep --loop`: the sweep loop in this process until SIGINT or SIGTERM."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with _standalone(settings) as (sessions, celery):
        log.info("event=sweeper_started standalone=1 every=%.0f", every or interval(settings))
        run_loop(settings, sessions, celery, stop, every)


class SweeperThread(threading.Thread):
    """The sweep loop in a daemon thread (one per worker when the `sweeper` setting is on)."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], celery,
                 every: float | None = None):
        super().__init__(name="humanseg-sweeper", daemon=True)
        self.settings, self.sessions, self.celery = settings, sessions, celery
        self.every = every or interval(settings)
        self.stop_event = threading.Event()

    def run(self) -> None:
        run_loop(self.settings, self.sessions, self.celery, self.stop_event, self.every)

    def stop(self) -> None:
        """Ask the loop to end after the pass in progress."""
        self.stop_event.set()
