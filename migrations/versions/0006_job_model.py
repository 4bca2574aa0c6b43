"""jobs.model: the registered model a job was made with (NULL: made before jobs chose a model,
by the one model there was, `fast`; their results keep the key layout they were written with)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE ADD COLUMN (nullable, no default): no table copy on SQLite.
    op.add_column("jobs", sa.Column("model", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "model")
