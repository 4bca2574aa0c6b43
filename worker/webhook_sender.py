"""The webhook delivery loop: a thread in each worker, outside the segmentation tasks.

Each pass claims due deliveries one at a time by a conditional UPDATE (which also pushes their
next attempt a lease ahead, so a killed worker's claim simply comes due again), POSTs the
signed body, and records the outcome: succeeded on 2xx; else retried with backoff until
webhook_max_attempts, then failed. The rows are the record: GET /api/v1/batches/<id>/webhooks.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from humanseg.core import webhook_targets
from humanseg.core.db import session_scope
from humanseg.core.logfmt import logkv
from humanseg.core.models import Batch, DeliveryStatus, WebhookDelivery, utcnow
from humanseg.core.settings import Settings
from humanseg.core.webhooks import sign
from humanseg.worker.loop import Loop

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10.0  # per delivery: a slow receiver must not hold the loop for long
LEASE_SECONDS = 60  # a claimed delivery comes due again after this if its worker died
MAX_DELAY_SECONDS = 3600.0
PER_PASS = 50


def retry_delay(attempt: int, settings: Settings) -> float:
    """Backoff after a failed attempt: retry_seconds x 4^(attempt-1), at most one hour."""
    return min(MAX_DELAY_SECONDS, settings.webhook_retry_seconds * 4.0 ** (attempt - 1))


def _claim(sessions: sessionmaker[Session]) -> tuple[WebhookDelivery, str] | None:
    """One due delivery, claimed for this loop, with its batch's secret; None when none is due."""
    now = utcnow()
    with session_scope(sessions) as session:
        candidates = session.scalars(
            select(WebhookDelivery.id).where(WebhookDelivery.status == DeliveryStatus.pending,
                                             WebhookDelivery.next_attempt_at <= now)
            .order_by(WebhookDelivery.next_attempt_at).limit(5)).all()
        for delivery_id in candidates:
            claimed = session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == DeliveryStatus.pending,
                       WebhookDelivery.next_attempt_at <= now)
                .values(attempts=WebhookDelivery.attempts + 1,
                        next_attempt_at=now + timedelta(seconds=LEASE_SECONDS))).rowcount  # type: ignore[attr-defined]  # DML: a CursorResult
            if claimed:
                row = session.get(WebhookDelivery, delivery_id, populate_existing=True)
                assert row is not None  # claimed just now, in this transaction
                secret = session.scalar(select(Batch.webhook_secret).where(Batch.id == row.batch_id))
                return row, secret or ""
    return None


def _send(row: WebhookDelivery, secret: str, settings: Settings) -> tuple[int | None, str | None]:
    """(HTTP status, error) of one attempt; error None on a 2xx answer."""
    try:
        target = webhook_targets.resolve(row.url, settings.webhook_allow_hosts)
    except webhook_targets.TargetRefused as exc:
        return None, f"refused: {exc}"
    body = row.payload.encode()
    timestamp = int(utcnow().timestamp())
    headers = {"Content-Type": "application/json", "User-Agent": "humanseg-webhooks/1",
               "webhook-id": row.id, "webhook-timestamp": str(timestamp),
               "webhook-signature": sign(secret, row.id, timestamp, body)}
    try:
        status = webhook_targets.post(target, body, headers, TIMEOUT_SECONDS)
    except (OSError, ValueError) as exc:  # refused, reset, timed out, TLS, bad answer
        return None, f"{type(exc).__name__}: {exc}"[:500]
    return status, None if 200 <= status < 300 else f"the receiver answered {status}"


def _record(sessions, row: WebhookDelivery, status: int | None, error: str | None,
            settings: Settings) -> None:
    now = utcnow()
    values: dict = {"last_status_code": status}
    if error is None:
        values.update(status=DeliveryStatus.succeeded.value, delivered_at=now, next_attempt_at=None)
    elif row.attempts >= settings.webhook_max_attempts:
        values.update(status=DeliveryStatus.failed.value, last_error=error, next_attempt_at=None)
    else:
        values.update(last_error=error,
                      next_attempt_at=now + timedelta(seconds=retry_delay(row.attempts, settings)))
    with session_scope(sessions) as session:
        session.execute(update(WebhookDelivery).where(WebhookDelivery.id == row.id,
                                                      WebhookDelivery.attempts == row.attempts)
                        .values(**values))
    log.info(logkv(event="webhook_attempt", delivery_id=row.id, webhook_event=row.event,
                   job_id=row.job_id, batch_id=row.batch_id, attempt=row.attempts,
                   status=status, outcome=values.get("status", "retry"), error=error))


def deliver_due(settings: Settings, sessions: sessionmaker[Session], limit: int = PER_PASS) -> int:
    """Deliver up to `limit` due deliveries; returns how many were attempted."""
    done = 0
    while done < limit:
        claimed = _claim(sessions)
        if claimed is None:
            break
        row, secret = claimed
        status, error = _send(row, secret, settings)
        _record(sessions, row, status, error, settings)
        done += 1
    return done


class WebhookThread(Loop):
    """The delivery loop (one per worker while the `webhooks` setting is on): a full pass runs
    again at once, else it waits `every` seconds."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], every: float = 1.0):
        super().__init__("webhook", every, lambda: deliver_due(settings, sessions) >= PER_PASS)
