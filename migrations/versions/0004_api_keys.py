"""api_keys (hashed client keys with per-key limits) and batches.owner_key_id

Revision ID: 0004
Revises: 0003
Create Date: 2026-02-05
"""
import sqlalchemy as sa
from alembic import op

from humanseg.core.models import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("admin", sa.Boolean, nullable=False),
        sa.Column("requests_per_minute", sa.Integer),
        sa.Column("images_per_day", sa.Integer),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime()),
    )
    # Plain ALTER TABLE, not batch mode: SQLite's batch mode copies and drops `batches`, which
    # foreign keys (PRAGMA foreign_keys=ON, see core/db.py) forbid while jobs point at it.
    op.add_column("batches", sa.Column("owner_key_id", sa.String(32), nullable=True))
    op.create_index("ix_batches_owner_created_id", "batches", ["owner_key_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_batches_owner_created_id", table_name="batches")
    op.drop_column("batches", "owner_key_id")  # SQLite >= 3.35 drops columns in place
    op.drop_table("api_keys")
