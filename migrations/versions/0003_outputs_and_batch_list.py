"""jobs.outputs (on-request results the worker makes too) and the batches list index

Revision ID: 0003
Revises: 0002
Create Date: 2026-02-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("outputs", sa.String(200), nullable=True))
    op.create_index("ix_batches_created_id", "batches", ["created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_batches_created_id", table_name="batches")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("outputs")
