"""batches and jobs

Revision ID: 0001
Revises:
Create Date: 2025-11-25
"""
import sqlalchemy as sa
from alembic import op

from humanseg.core.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

STATUSES = ("queued", "running", "succeeded", "failed")


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("job_count", sa.Integer, nullable=False),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("batch_id", sa.String(32), sa.ForeignKey("batches.id"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(50), nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("bytes", sa.Integer, nullable=False),
        sa.Column("status", sa.Enum(*STATUSES, name="job_status", native_enum=False, length=16,
                                    create_constraint=False), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime()),
        sa.Column("finished_at", UTCDateTime()),
        sa.Column("lease_expires_at", UTCDateTime()),
        sa.Column("original_key", sa.String(255), nullable=False),
        sa.Column("mask_key", sa.String(255)),
        sa.Column("cutout_key", sa.String(255)),
        sa.Column("overlay_key", sa.String(255)),
        sa.Column("thumb_key", sa.String(255)),
    )
    op.create_index("ix_jobs_status_finished_id", "jobs", ["status", "finished_at", "id"])
    op.create_index("ix_jobs_status_lease", "jobs", ["status", "lease_expires_at"])
    op.create_index("ix_jobs_batch_seq", "jobs", ["batch_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_jobs_batch_seq", table_name="jobs")
    op.drop_index("ix_jobs_status_lease", table_name="jobs")
    op.drop_index("ix_jobs_status_finished_id", table_name="jobs")
    op.drop_table("jobs")
    op.drop_table("batches")
