"""drop the per-kind result key columns (keys follow from the job id)

Revision ID: 0002
Revises: 0001
Create Date: 2026-01-20
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Frozen here on purpose: a migration must not change when core.results gains a kind.
COLUMNS = {"mask_key": "mask.png", "cutout_key": "cutout.png", "overlay_key": "overlay.jpg",
           "thumb_key": "thumb.jpg"}


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        for column in COLUMNS:
            batch.drop_column(column)


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        for column in COLUMNS:
            batch.add_column(sa.Column(column, sa.String(255)))
    # The keys were always results/<job_id>/<file>, written when the job succeeded.
    for column, filename in COLUMNS.items():
        op.execute(sa.text(f"UPDATE jobs SET {column} = 'results/' || id || '/{filename}' "
                           "WHERE status = 'succeeded'"))
