"""Records: batches, jobs, webhook deliveries, idempotent answers and API keys, with their status enums."""

from __future__ import annotations

import enum
import re
import uuid
from datetime import datetime, timezone

from sqlalchemy import (
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

FIRST_MODEL = "fast"  # the model of every job recorded before jobs named one (model NULL)


def model_of(job: Job) -> str:
    """The name of the model that made (or makes) a job."""
    return job.model or FIRST_MODEL


def utcnow() -> datetime:
    """Timezone-aware now in UTC."""
    return datetime.now(timezone.utc)


_PUBLIC_ID = re.compile(r"[0-9a-f]{32}")


def new_id() -> str:
    """A fresh public id (hex uuid4, 32 chars)."""
    return uuid.uuid4().hex


def is_public_id(value: str) -> bool:
    """True for a string new_id could have made; nothing else can name a row."""
    return _PUBLIC_ID.fullmatch(value) is not None


class UTCDateTime(TypeDecorator):
    """Stores UTC; always hands back aware datetimes (SQLite drops tzinfo)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class JobStatus(str, enum.Enum):
    """Lifecycle of one job."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"  # by a client (web/jobs_control.py); late results are discarded

    def is_terminal(self) -> bool:
        """True when the job will not change any more (unless a client asks for a retry)."""
        return self not in ACTIVE_STATUSES


# Not finished yet: what a wait waits for, what cancel may stop, what keeps a batch unfinished.
ACTIVE_STATUSES = (JobStatus.queued, JobStatus.running)


class DeliveryStatus(str, enum.Enum):
    """Lifecycle of one webhook delivery (core/webhooks.py records it, worker/webhook_sender.py sends it)."""

    pending = "pending"  # due at next_attempt_at (retried with backoff until the attempts run out)
    succeeded = "succeeded"  # the receiver answered 2xx
    failed = "failed"  # every attempt failed; kept for the batch's delivery list

    def is_terminal(self) -> bool:
        """True when no more attempts will be made."""
        return self is not DeliveryStatus.pending


class Base(DeclarativeBase):
    pass


class Batch(Base):
    """One upload request; groups its jobs."""

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    # Seq numbers handed out so far (appends reserve ranges); never decremented, so seqs stay
    # unique for paging. How many jobs a batch has is counted (core.counts.status_counts).
    job_count: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    # The API key that made it (None: made without one, on an open server). No foreign key:
    # keys are revoked, never deleted, and the web tier checks ownership on every lookup.
    owner_key_id: Mapped[str | None] = mapped_column(String(32))
    # Callback for this batch's events (core/webhooks.py); the secret signs every delivery.
    webhook_url: Mapped[str | None] = mapped_column(String(2000))
    webhook_events: Mapped[str | None] = mapped_column(String(100))  # comma-separated
    webhook_secret: Mapped[str | None] = mapped_column(String(100))

    jobs: Mapped[list[Job]] = relationship(back_populates="batch", order_by="Job.seq")

    __table_args__ = (
        # The batches page lists newest first: ORDER BY created_at DESC, id DESC.
        Index("ix_batches_created_id", "created_at", "id"),
        # The same, for one key's batches.
        Index("ix_batches_owner_created_id", "owner_key_id", "created_at", "id"),
    )


class Job(Base):
    """One image to segment; the public id is ours, never Celery's."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), nullable=False)
    seq: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    # As sent by the client; only ever displayed, never used for paths.
    filename: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    content_type: Mapped[str] = mapped_column(String(50), nullable=False)
    width: Mapped[int] = mapped_column(Integer, nullable=False)
    height: Mapped[int] = mapped_column(Integer, nullable=False)
    bytes: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[JobStatus] = mapped_column(
        Enum(JobStatus, name="job_status", native_enum=False, length=16),
        default=JobStatus.queued,
        nullable=False,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    original_key: Mapped[str] = mapped_column(String(255), nullable=False)
    # Result keys are not stored: they follow from the id (core/layout.py, via core.results.ResultKind.key).
    # On-request kinds the upload asked the worker to make too (`outputs=`), comma-separated.
    outputs: Mapped[str | None] = mapped_column(String(200))
    # The registered model (core/registry.py) that makes its results, and keys them (core/storage.py);
    # kept by a retry. NULL: made before jobs chose one, by FIRST_MODEL.
    model: Mapped[str | None] = mapped_column(String(64))

    batch: Mapped[Batch] = relationship(back_populates="jobs")

    __table_args__ = (
        # Gallery pages finished jobs newest first: WHERE status=? ORDER BY finished_at, id.
        Index("ix_jobs_status_finished_id", "status", "finished_at", "id"),
        # Sweeper scans by status and lease/creation time.
        Index("ix_jobs_status_lease", "status", "lease_expires_at"),
        Index("ix_jobs_batch_seq", "batch_id", "seq"),
    )

    @property
    def duration_ms(self) -> int | None:
        """Milliseconds from start to finish, when both are known."""
        if self.started_at is None or self.finished_at is None:
            return None
        return int((self.finished_at - self.started_at).total_seconds() * 1000)


class WebhookDelivery(Base):
    """One event for one callback URL: its signed body, and how delivering it went."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)  # webhook-id
    # No foreign keys: the record of a delivery outlives a deleted batch or job.
    batch_id: Mapped[str] = mapped_column(String(32), nullable=False)
    job_id: Mapped[str | None] = mapped_column(String(32))
    event: Mapped[str] = mapped_column(String(32), nullable=False)
    # One delivery per event occurrence, whoever records it first (web, worker, sweeper).
    dedupe: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    url: Mapped[str] = mapped_column(String(2000), nullable=False)
    payload: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=DeliveryStatus.pending.value)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    # When it is due next; while one loop delivers it, pushed ahead as a lease.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_batch", "batch_id", "created_at"),
    )


class IdempotencyKey(Base):
    """The first answer to a job creation sent with an Idempotency-Key (web/idempotency.py)."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # sha256 of the request's fields and files: the same key with another body is refused.
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    # None while the first request is still in progress.
    status_code: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)

    # Keys older than a day are forgotten: DELETE ... WHERE created_at < ? on every new key.
    __table_args__ = (Index("ix_idempotency_keys_created", "created_at"),)


class ApiKey(Base):
    """A client's API key: only its sha256 is stored (core/keys.py makes and checks keys)."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    # The key's first characters, shown by `humanseg keys list` to tell keys apart.
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    key_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    admin: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    # Per-key limits; None: the settings' defaults (rate_limit_per_minute, images_per_day).
    requests_per_minute: Mapped[int | None] = mapped_column(Integer)
    images_per_day: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
