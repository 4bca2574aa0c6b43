"""Re-queue jobs whose lease expired or whose doorbell was lost (broker flushed); re-send the jobs a
killed worker may have held; remove originals that no job owns (a web process killed mid-upload);
delete expired jobs (worker/retention.py)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select, true, update
from sqlalchemy.orm import Session, sessionmaker

from humanseg.core.db import make_engine, make_sessionmaker, session_scope
from humanseg.core.heartbeat import claim_silent, silent_workers, unclaim_silent
from humanseg.core.layout import ORIGINALS, job_id_of
from humanseg.core.logfmt import logkv
from humanseg.core.models import Job, JobStatus, utcnow
from humanseg.core.queue import BrokerError, make_sender, send_segment, shared_client
from humanseg.core.settings import Settings
from humanseg.core.storage import Storage, make_storage
from humanseg.core.webhooks import record_finished
from humanseg.worker.loop import Loop
from humanseg.worker.retention import purge_expired

log = logging.getLogger(__name__)

BATCH = 500  # jobs re-queued or re-sent per pass, at most
# Stale jobs looked at per pass: those re-sent lately are passed over, so that more than BATCH
# lost jobs are all reached over the next passes instead of the oldest BATCH again and again.
CANDIDATES = 10 * BATCH
ORPHAN_PAGE = 1000  # originals looked at per pass, at most


@dataclass(frozen=True)
class SweepResult:
    """Counts from one sweep."""

    requeued: int = 0
    resent: int = 0
    failed: int = 0
    orphans: int = 0
    expired: int = 0  # jobs deleted by retention
    held: int = 0  # queued jobs re-sent because a worker that may have held them went silent


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
                lost = session.execute(base.values(
                    status=JobStatus.failed, finished_at=now, lease_expires_at=None,
                    error=f"worker lost the job {attempts} times (lease expired)")).rowcount  # type: ignore[attr-defined]  # DML: a CursorResult
                if lost:
                    record_finished(session, [job_id])  # webhook events commit with the failure
                failed += lost
            elif session.execute(base.values(status=JobStatus.queued, lease_expires_at=None)).rowcount:  # type: ignore[attr-defined]  # DML: a CursorResult
                requeued.append(job_id)
        stale_before = now - timedelta(seconds=settings.stale_queued_seconds)
        stale = list(session.scalars(
            select(Job.id).where(Job.status == JobStatus.queued, Job.created_at < stale_before,
                                 Job.id.not_in(requeued) if requeued else true())
            .order_by(Job.created_at).limit(CANDIDATES)))
    # Stale jobs are re-sent even when the queue is busy (a flush under load loses doorbells that
    # newer ones hide), but each at most once per stale_queued_seconds, so duplicates stay few.
    stale = _not_sent_lately(settings, stale, BATCH)
    _mark_sent(settings, requeued)
    sent = _send(settings, celery, requeued + stale)
    held = resend_held(settings, sessions, celery, set(requeued) | set(stale))
    result = SweepResult(requeued=len(requeued), resent=len(stale), failed=failed, held=held)
    if requeued or stale or failed:
        log.info(logkv(event="sweep", requeued=result.requeued, resent=result.resent, failed=result.failed,
                       sent=sent))
    return result


def _send(settings: Settings, celery, job_ids: list[str]) -> int:
    """Ring the doorbells in order until the broker fails; how many were sent."""
    sent = 0
    for job_id in job_ids:
        try:
            send_segment(celery, job_id, settings.queue)
            sent += 1
        except BrokerError as exc:
            log.warning(logkv(event="sweep_send_failed", job_id=job_id, error=exc))
            break
    return sent


def resend_held(settings: Settings, sessions: sessionmaker[Session], celery, skip: set[str]) -> int:
    """Once per worker whose heartbeat went silent: re-send every job still queued that was created
    before the worker can last have been alive (jobs in `skip` were just sent); how many.

    A killed worker's running jobs come back through their lease, but those it had taken from the
    broker and not started (prefetched, or a retry's countdown) stay unacked in the broker for its
    visibility timeout (an hour) and `queued` here. Which worker held which is not known, so all
    of them are sent again: the claim makes the extra deliveries no-ops.
    """
    try:
        client = shared_client(settings.broker_url)
        # Several sweepers may see the same silent worker: the one whose ZREM took it acts.
        silent = [(node, last) for node, last in silent_workers(client, settings)
                  if claim_silent(client, settings, node)]
    except Exception as exc:  # noqa: BLE001 - broker down: no beats to read, nothing can be sent
        log.warning(logkv(event="silent_workers_unavailable", error=exc))
        return 0
    if not silent:
        return 0
    # It beat every third of the window: it took nothing after its last beat plus one window.
    last_alive = max(last for _, last in silent) + max(1, settings.worker_stale_seconds)
    cutoff = datetime.fromtimestamp(last_alive, timezone.utc)
    try:
        with session_scope(sessions) as session:
            held = [job_id for job_id in session.scalars(
                select(Job.id).where(Job.status == JobStatus.queued, Job.created_at < cutoff)
                .order_by(Job.created_at).limit(CANDIDATES)) if job_id not in skip]
    except Exception:
        for node, last in silent:  # the next pass tries again
            unclaim_silent(client, settings, node, last)
        raise
    _mark_sent(settings, held)  # the stale-queued re-send need not repeat them
    sent = _send(settings, celery, held)
    log.info(logkv(event="dead_worker_jobs_resent", nodes=",".join(node for node, _ in silent),
                   jobs=len(held), sent=sent))
    return len(held)


def _sent_key(settings: Settings, job_id: str) -> str:
    return f"humanseg:swept:{settings.queue}:{job_id}"


def _not_sent_lately(settings: Settings, job_ids: list[str], limit: int) -> list[str]:
    """Up to `limit` of the jobs not sent by a sweeper within stale_queued_seconds; marks them sent.

    The marks live in the broker: shared by every sweeper, and gone with a flush (which is when
    the doorbells are gone too).
    """
    if not job_ids or limit <= 0:
        return []
    ttl = max(1, settings.stale_queued_seconds)
    try:
        with shared_client(settings.broker_url).pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.exists(_sent_key(settings, job_id))
            unmarked = [j for j, marked in zip(job_ids, pipe.execute(), strict=False) if not marked][:limit]
            for job_id in unmarked:  # NX: another sweeper may have taken one meanwhile
                pipe.set(_sent_key(settings, job_id), 1, nx=True, ex=ttl)
            return [j for j, fresh in zip(unmarked, pipe.execute(), strict=False) if fresh]
    except Exception as exc:  # noqa: BLE001 - broker down: nothing can be sent this pass anyway
        log.warning(logkv(event="sweep_marks_unavailable", error=exc))
        return []


def _mark_sent(settings: Settings, job_ids: list[str]) -> None:
    """Record sends made for another reason (an expired lease), so the next pass does not repeat them."""
    if job_ids:
        _not_sent_lately(settings, job_ids, len(job_ids))


def sweep_orphans(settings: Settings, sessions: sessionmaker[Session], storage: Storage,
                  start_after: str = "") -> tuple[int, str]:
    """Remove originals that no job owns and that are older than orphan_grace_seconds.

    Looks at one page of keys after start_after; returns (removed, where the next pass starts:
    "" once the listing wrapped around).
    """
    page = storage.list_objects(ORIGINALS, start_after=start_after, limit=ORPHAN_PAGE)
    before = utcnow() - timedelta(seconds=settings.orphan_grace_seconds)
    # Uploads store the original before committing its row: a young file may be one in flight.
    old = {obj.key: job_id_of(obj.key) for obj in page if obj.modified < before}
    with session_scope(sessions) as session:
        owned = set(session.scalars(select(Job.original_key).where(Job.id.in_(set(old.values())))))
    removed = 0
    for key in sorted(set(old) - owned):
        storage.delete(key)
        removed += 1
        log.info(logkv(event="orphan_original_removed", key=key))
    return removed, page[-1].key if len(page) == ORPHAN_PAGE else ""


def interval(settings: Settings) -> float:
    """Seconds between sweeps: often enough for the lease, stale-queued and silent-worker timeouts."""
    return float(max(5, min(60, settings.lease_seconds // 2, settings.stale_queued_seconds // 2,
                            settings.worker_stale_seconds // 2)))


class SweepPass:
    """One pass of the sweep loop: jobs, then a page of originals, then expired results.

    Each part fails alone (logged, the others still run): the database, the broker or the
    storage may be back next pass. Keeps where the next page of originals starts."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], celery,
                 storage: Storage | None = None):
        self.settings, self.sessions, self.celery = settings, sessions, celery
        self.storage = storage or make_storage(settings)
        self.cursor = ""

    def __call__(self) -> None:
        try:
            sweep(self.settings, self.sessions, self.celery)
        except Exception:
            log.exception(logkv(event="sweep_error"))
        try:
            _, self.cursor = sweep_orphans(self.settings, self.sessions, self.storage, self.cursor)
        except Exception:
            log.exception(logkv(event="orphan_sweep_error"))
        try:
            purge_expired(self.settings, self.sessions, self.storage)
        except Exception:
            log.exception(logkv(event="retention_error"))


class SweeperThread(Loop):
    """The sweep loop (one per worker when the `sweeper` setting is on, or `humanseg sweep --loop`):
    a pass now, then every `every` seconds (default interval())."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], celery,
                 every: float | None = None, storage: Storage | None = None):
        super().__init__("sweeper", every or interval(settings),
                         SweepPass(settings, sessions, celery, storage))


def run_loop(settings: Settings, sessions: sessionmaker[Session], celery, stop: threading.Event,
             every: float | None = None, storage: Storage | None = None) -> None:
    """The sweep loop in its thread until `stop` is set; returns once the pass in progress ended."""
    loop = SweeperThread(settings, sessions, celery, every, storage)
    loop.start()
    while not stop.wait(1.0):  # a timed wait: the signal handlers that set `stop` get to run
        pass
    loop.stop(timeout=None)


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
    """`humanseg sweep`: one pass (and the first page of originals)."""
    with _standalone(settings) as (sessions, celery):
        result = sweep(settings, sessions, celery)
        storage = make_storage(settings)
        removed, _ = sweep_orphans(settings, sessions, storage)
        expired = purge_expired(settings, sessions, storage).jobs
        return replace(result, orphans=removed, expired=expired)


def run_standalone(settings: Settings, every: float | None = None) -> None:
    """`humanseg sweep --loop`: the sweep loop in this process until SIGINT or SIGTERM."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with _standalone(settings) as (sessions, celery):
        log.info(logkv(event="sweeper_started", standalone=1, every=f"{every or interval(settings):.0f}"))
        run_loop(settings, sessions, celery, stop, every)
