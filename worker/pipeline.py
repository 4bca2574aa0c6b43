"""One job end to end: claim, load, predict, write results, record the outcome."""

from __future__ import annotations

import enum
import functools
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol, cast

from PIL import Image
from sqlalchemy import Table, bindparam, exists, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from humanseg.core.db import session_scope
from humanseg.core.errors import ObjectNotFound, StorageError
from humanseg.core.images import load_oriented
from humanseg.core.layout import results_prefix
from humanseg.core.logfmt import logkv
from humanseg.core.models import FIRST_MODEL, Batch, Job, JobStatus, utcnow
from humanseg.core.redact import without_paths
from humanseg.core.results import known_kind
from humanseg.core.settings import Settings
from humanseg.core.storage import Storage
from humanseg.core.variants import outputs_of
from humanseg.core.webhooks import record_finished
from humanseg.worker.outputs import Segmented, render_job
from humanseg.worker.stages import Stages

log = logging.getLogger(__name__)


class Predictor(Protocol):
    def segment(self, image: Image.Image) -> Segmented: ...


class Models(Protocol):
    """The models a process can run, by name (ml/registry.py's LoadedModels)."""

    def get(self, name: str | None) -> Predictor: ...


class TaskOutcome(str, enum.Enum):
    """What one delivery of a job's task did (the worker's metrics count these)."""

    succeeded = "succeeded"
    failed = "failed"
    retry = "retry"  # a transient error: the job is queued again, and Celery retries the task
    skipped = "skipped"  # nothing to do: not claimable, cancelled, or the lease was lost


@dataclass(frozen=True)
class Outcome:
    """What happened to a job in this delivery."""

    status: TaskOutcome
    attempt: int = 0
    retry_in: float = 0.0
    reason: str = ""


@dataclass(frozen=True)
class Claimed:
    """A delivery that now holds the job's lease, with what the run needs from the row."""

    attempt: int
    original_key: str
    outputs: str | None
    model: str | None  # the job's model (None: a job made before jobs named one: the first model)
    queue_wait_ms: float  # from the upload to this claim (a retry counts its earlier tries too)
    webhooks: bool = True  # the batch has a webhook: finishing records its events


_JOBS = cast(Table, Job.__table__)  # the mapped class's table (typed as any FromClause)
_COL = _JOBS.c


def _claim_statement():
    """queued (or running with an expired lease) -> running, as one UPDATE ... RETURNING.

    The worker's three statements are built once with bind parameters: building SQLAlchemy
    expressions per job cost more CPU than the database itself (issue 31).
    """
    now = bindparam("now", type_=_COL.started_at.type)
    # Whether the batch wants webhooks comes back with the claim: a batch's webhook is set when it
    # is made, before its jobs are queued, so the outcome's transaction can skip looking for one.
    webhooks = exists().where(Batch.id == _COL.batch_id, Batch.webhook_url.is_not(None))
    return (
        update(_JOBS)
        .where(_COL.id == bindparam("job_id"),
               or_(_COL.status == JobStatus.queued,
                   (_COL.status == JobStatus.running) & (_COL.lease_expires_at < now)))
        .values(status=JobStatus.running, attempts=_COL.attempts + 1, started_at=now,
                lease_expires_at=bindparam("lease_until", type_=_COL.lease_expires_at.type), error=None)
        .returning(_COL.attempts, _COL.original_key, _COL.outputs, _COL.model, _COL.created_at,
                   webhooks.label("webhooks"))
    )


_CLAIM = _claim_statement()
_OWNER = select(_COL.status, _COL.attempts).where(_COL.id == bindparam("job_id"))


@functools.lru_cache(maxsize=8)
def _finish_statement(names: tuple[str, ...]):
    """The outcome's UPDATE for these columns, only while this delivery holds the lease."""
    return (
        update(_JOBS)
        .where(_COL.id == bindparam("job_id"), _COL.status == JobStatus.running,
               _COL.attempts == bindparam("attempt"))
        .values(lease_expires_at=None, **{name: bindparam(f"v_{name}", type_=_COL[name].type) for name in names})
    )


def claim(sessions: sessionmaker[Session], job_id: str, lease_seconds: int) -> Claimed | None:
    """queued -> running (or re-claim an expired lease); None when another delivery holds it."""
    now = utcnow()
    with session_scope(sessions) as session:
        # One statement (UPDATE ... RETURNING) and the commit: two round trips per claim.
        row = session.execute(
            _CLAIM, {"job_id": job_id, "now": now, "lease_until": now + timedelta(seconds=lease_seconds)}
        ).first()
    if row is None:
        return None
    waited = (now - row.created_at).total_seconds() * 1000
    return Claimed(row.attempts, row.original_key, row.outputs, row.model, max(0.0, waited), bool(row.webhooks))


def _finish(sessions, job_id: str, attempt: int, webhooks: bool = True, **values) -> bool:
    """Record the outcome only if we still own the lease (status running, same attempt).

    webhooks=False (the claim saw the batch has none) skips looking for events to record.
    """
    with session_scope(sessions) as session:
        names = tuple(sorted(values))
        params = {"job_id": job_id, "attempt": attempt, **{f"v_{name}": values[name] for name in names}}
        done = session.execute(_finish_statement(names), params).rowcount  # type: ignore[attr-defined]  # DML
        if done and webhooks and values.get("status") in (JobStatus.succeeded, JobStatus.failed):
            # The webhook events commit with the outcome; worker/webhook_sender.py delivers them.
            record_finished(session, [job_id])
    if not done:
        log.warning(logkv(event="lease_lost", job_id=job_id, attempt=attempt))
    return bool(done)


def run_job(job_id: str, settings: Settings, storage: Storage,
            sessions: sessionmaker[Session], models: Models) -> Outcome:
    """Process one delivery of a job; never raises for a bad image."""
    stages = Stages()
    with stages.timed("db"):
        claimed = claim(sessions, job_id, settings.lease_seconds)
    if claimed is None:
        log.info(logkv(event="skip", job_id=job_id, reason="not_claimable"))
        return Outcome(TaskOutcome.skipped)
    attempt = claimed.attempt
    try:
        with stages.timed("read"):
            data = storage.get(claimed.original_key)
    except ObjectNotFound:
        return fail(sessions, job_id, attempt, "the original image is missing from storage")
    except StorageError as exc:
        return transient(sessions, settings, job_id, attempt, f"reading original: {exc}")
    try:
        with stages.timed("decode"):
            image = load_oriented(data)
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for bad data; the job records it
        return fail(sessions, job_id, attempt, f"cannot decode image: {type(exc).__name__}: {exc}")
    try:
        with stages.timed("model"):
            # Loaded on first use (its weights checked); a missing file fails the job with the fix.
            predictor = models.get(claimed.model or FIRST_MODEL)
            seg = predictor.segment(image)  # one probability map gives both mask and alpha
        for name, made in (("mask", seg.mask), ("alpha", seg.alpha)):
            if made.size != image.size or made.mode != "L":
                raise ValueError(f"predictor returned a {made.mode} {made.size} {name} for {image.size}")
        with stages.timed("render"):
            # mask, alpha and thumbnail always; cut-outs and overlays only when the upload chose them
            outputs = render_job(image, seg, outputs_of(claimed.outputs))
    except Exception as exc:  # a failing image must not take the worker down
        log.exception(logkv(event="predict_failed", job_id=job_id))
        return fail(sessions, job_id, attempt, f"segmentation failed: {type(exc).__name__}: {exc}")
    with stages.timed("db"):
        owned = _still_owned(sessions, job_id, attempt)
    if not owned:
        # Cancelled (or deleted) while the model ran: its results are discarded, never written.
        log.info(logkv(event="results_discarded", job_id=job_id, attempt=attempt))
        return Outcome(TaskOutcome.skipped, attempt)
    try:
        with stages.timed("store"):
            for name, data in outputs.items():  # deterministic keys: a rerun overwrites the same objects
                kind = known_kind(name)
                storage.put(kind.key(job_id, claimed.model), data, kind.content_type)
    except StorageError as exc:
        return transient(sessions, settings, job_id, attempt, f"writing results: {exc}")
    with stages.timed("db"):
        ok = _finish(sessions, job_id, attempt, claimed.webhooks, status=JobStatus.succeeded,
                     finished_at=utcnow(), error=None)
    # One line per job with where its time went (bench/e2e_ratio.py sums these).
    log.info(logkv(event="job_done", job_id=job_id, attempt=attempt, recorded=ok, model=claimed.model or FIRST_MODEL,
                   queue_wait_ms=round(claimed.queue_wait_ms, 1), **stages.fields()))
    if not ok:
        _drop_orphan_results(sessions, storage, job_id, attempt)
    return Outcome(TaskOutcome.succeeded if ok else TaskOutcome.skipped, attempt)


def _still_owned(sessions, job_id: str, attempt: int) -> bool:
    """True while this delivery still holds the job (running, same attempt)."""
    with session_scope(sessions) as session:
        found = session.execute(_OWNER, {"job_id": job_id}).first()
    return found is not None and found.status == JobStatus.running and found.attempts == attempt


def _drop_orphan_results(sessions, storage: Storage, job_id: str, attempt: int) -> None:
    """The job was deleted or cancelled while it ran: remove the results this run wrote late.

    Only when the row is gone, or cancelled with no later attempt; a lost lease means another
    worker owns the same keys.
    """
    with session_scope(sessions) as session:
        job = session.get(Job, job_id)
        if job is not None and not (job.status == JobStatus.cancelled and job.attempts == attempt):
            return
    try:
        removed = storage.delete_prefix(results_prefix(job_id))
    except StorageError as exc:
        log.warning(logkv(event="orphan_results_left", job_id=job_id, error=exc))
        return
    log.info(logkv(event="orphan_results_removed", job_id=job_id, objects=removed))


def fail(sessions, job_id: str, attempt: int, reason: str) -> Outcome:
    """Mark the job failed for good with a reason (recorded without server paths; logged whole)."""
    log.warning(logkv(event="job_failed", job_id=job_id, attempt=attempt, reason=reason))
    _finish(sessions, job_id, attempt, status=JobStatus.failed, finished_at=utcnow(),
            error=without_paths(reason)[:2000])
    return Outcome(TaskOutcome.failed, attempt, reason=reason)


RETRY_FIRST_SECONDS = 15.0  # then x4 per attempt: storage outages often last minutes


def retry_delay(attempt: int, settings: Settings) -> float:
    """Backoff before attempt+1: 15 s, 60 s, 240 s ..., never longer than one lease."""
    return min(float(settings.lease_seconds), RETRY_FIRST_SECONDS * 4.0 ** (attempt - 1))


def transient(sessions, settings: Settings, job_id: str, attempt: int, reason: str) -> Outcome:
    """Give the job back to the queue with backoff, or fail it once attempts run out."""
    if attempt >= settings.max_attempts:
        return fail(sessions, job_id, attempt, f"gave up after {attempt} attempts: {reason}")
    delay = retry_delay(attempt, settings)
    log.warning(logkv(event="job_retry", job_id=job_id, attempt=attempt, retry_in=delay,
                      reason=reason))
    _finish(sessions, job_id, attempt, status=JobStatus.queued,
            error=f"retrying: {without_paths(reason)}"[:2000])
    return Outcome(TaskOutcome.retry, attempt, retry_in=delay, reason=reason)
