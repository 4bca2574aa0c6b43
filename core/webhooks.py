"""Webhook events: which a batch wants, recording them when jobs finish, and signing them.

Signatures follow the Standard Webhooks spec: headers webhook-id, webhook-timestamp and
webhook-signature = "v1," + base64(HMAC-SHA256(secret, f"{id}.{timestamp}.{body}")), where the
secret is "whsec_" + base64 of its bytes. Events are rows (webhook_deliveries) written in the
transaction that finishes the job, so none is lost; worker/webhook_sender.py delivers them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from humanseg.core.counts import status_counts
from humanseg.core.errors import HumansegError
from humanseg.core.models import Batch, DeliveryStatus, Job, WebhookDelivery, new_id, utcnow

JOB_FINISHED = "job.finished"
BATCH_FINISHED = "batch.finished"
EVENTS = (JOB_FINISHED, BATCH_FINISHED)
SECRET_PREFIX = "whsec_"


class WebhookConfigError(HumansegError):
    """A refused webhook field: `parameter` names it, `reason` says why."""

    def __init__(self, parameter: str, reason: str):
        super().__init__(f"{parameter}: {reason}")
        self.parameter = parameter
        self.reason = reason


@dataclass(frozen=True)
class WebhookConfig:
    """A batch's callback: URL, events wanted, and the signing secret."""

    url: str
    events: tuple[str, ...]
    secret: str


def parse_events(values: Iterable[str]) -> tuple[str, ...]:
    """Events from repeated and/or comma-separated fields; all of them when none is named."""
    names = [n.strip().lower() for v in values for n in v.split(",") if n.strip()]
    unknown = sorted(set(names) - set(EVENTS))
    if unknown:
        raise WebhookConfigError("webhook_events", f"unknown {', '.join(unknown)}; "
                                 f"one or more of {', '.join(EVENTS)}")
    return tuple(e for e in EVENTS if e in names) or EVENTS


def new_secret() -> str:
    """A fresh signing secret, whsec_ + base64 of 24 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def secret_bytes(secret: str) -> bytes:
    """The key bytes of a whsec_ secret (WebhookConfigError when it is not one)."""
    raw = secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else ""
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WebhookConfigError("webhook_secret", "must be whsec_ + base64") from exc
    if not 24 <= len(key) <= 64:
        raise WebhookConfigError("webhook_secret", "must hold 24 to 64 bytes")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature header value for one message."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    mac = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def job_payload(job: Job) -> dict[str, Any]:
    """What a job.finished event says about the job."""
    return {"id": job.id, "batch_id": job.batch_id, "filename": job.filename,
            "status": job.status.value, "error": job.error, "attempts": job.attempts,
            "finished_at": _iso(job.finished_at), "url": f"/api/v1/jobs/{job.id}"}


def _event(kind: str, data: dict[str, Any]) -> str:
    return json.dumps({"type": kind, "timestamp": _iso(utcnow()), "data": data},
                      separators=(",", ":"))


def _add(session: Session, delivery: dict[str, Any]) -> None:
    """Insert unless an equal event (same dedupe) is already recorded, without failing the caller."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]  # same on_conflict_do_nothing
    now = utcnow()
    row = {"status": DeliveryStatus.pending.value, "attempts": 0, "created_at": now, "next_attempt_at": now,
           **delivery}
    session.execute(insert(WebhookDelivery).values(**row).on_conflict_do_nothing(
        index_elements=["dedupe"]))


def record_finished(session: Session, job_ids: Iterable[str]) -> int:
    """In the caller's transaction: events for jobs just made terminal (and their batches if done).

    Returns how many events were offered; one already recorded (same dedupe) is not added again.
    """
    rows = session.execute(
        select(Job, Batch).join(Batch, Job.batch_id == Batch.id)
        .where(Job.id.in_(list(job_ids)), Batch.webhook_url.is_not(None))).all()
    made, batches = 0, {}
    for job, batch in rows:
        events = (batch.webhook_events or "").split(",")
        if JOB_FINISHED in events and job.status.is_terminal():
            _add(session, {"id": new_id(), "batch_id": batch.id, "job_id": job.id,
                           "event": JOB_FINISHED, "url": batch.webhook_url,
                           "dedupe": f"{JOB_FINISHED}:{job.id}:{_iso(job.finished_at)}",
                           "payload": _event(JOB_FINISHED, {"job": job_payload(job)})})
            made += 1
        if BATCH_FINISHED in events:
            batches[batch.id] = batch
    for batch in batches.values():
        made += _batch_event(session, batch)
    return made


def _batch_event(session: Session, batch: Batch) -> int:
    counts = status_counts(session, batch.id)
    if not counts.done:
        return 0
    last = session.scalar(select(func.max(Job.finished_at)).where(Job.batch_id == batch.id))
    data = {"batch": {"id": batch.id, "name": batch.name, "job_count": counts.total,
                      "counts": dict(counts.by_status),
                      "url": f"/api/v1/batches/{batch.id}"}}
    # One event per time the batch finishes (a retry can make it finish again later).
    _add(session, {"id": new_id(), "batch_id": batch.id, "job_id": None, "event": BATCH_FINISHED,
                   "url": batch.webhook_url, "dedupe": f"{BATCH_FINISHED}:{batch.id}:{_iso(last)}",
                   "payload": _event(BATCH_FINISHED, data)})
    return 1


def delivery_json(row: WebhookDelivery) -> dict[str, Any]:
    """The public record of one delivery."""
    return {"id": row.id, "event": row.event, "job_id": row.job_id, "url": row.url,
            "status": row.status, "attempts": row.attempts,
            "last_status_code": row.last_status_code, "last_error": row.last_error,
            "created_at": _iso(row.created_at), "delivered_at": _iso(row.delivered_at),
            "next_attempt_at": _iso(row.next_attempt_at) if row.status == DeliveryStatus.pending else None}
