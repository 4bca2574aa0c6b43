"""idempotency_keys (first answers to job creations sent with an Idempotency-Key), webhooks
(batches.webhook_*, webhook_deliveries); the job status 'cancelled' needs no change (the status
column is a VARCHAR(16) without a constraint)

Revision ID: 0005
Revises: 0004
Create Date: 2026-02-10
"""
import sqlalchemy as sa
from alembic import op

from humanseg.core.models import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("response", sa.Text),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_idempotency_keys_created", "idempotency_keys", ["created_at"])
    # Plain ALTER TABLE (SQLite >= 3.35 drops columns too): a batch-mode copy of `batches`
    # would have to drop the table that jobs reference.
    op.add_column("batches", sa.Column("webhook_url", sa.String(2000), nullable=True))
    op.add_column("batches", sa.Column("webhook_events", sa.String(100), nullable=True))
    op.add_column("batches", sa.Column("webhook_secret", sa.String(100), nullable=True))
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("batch_id", sa.String(32), nullable=False),
        sa.Column("job_id", sa.String(32)),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("dedupe", sa.String(200), nullable=False, unique=True),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_status_code", sa.Integer),
        sa.Column("last_error", sa.Text),
        sa.Column("next_attempt_at", UTCDateTime()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("delivered_at", UTCDateTime()),
    )
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_webhook_deliveries_batch", "webhook_deliveries", ["batch_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_batch", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    for name in ("webhook_secret", "webhook_events", "webhook_url"):
        op.drop_column("batches", name)
    op.drop_index("ix_idempotency_keys_created", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
