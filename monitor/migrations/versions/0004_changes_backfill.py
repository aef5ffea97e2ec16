"""changes.backfill: changes found in backfilled history are history, not news

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 11:50:00

Existing changes of versions that came from the registry's version history
(their source is a ``/history/`` URL) are marked as backfilled.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("changes") as batch:
        batch.add_column(sa.Column("backfill", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.execute(
        "UPDATE changes SET backfill = TRUE WHERE version_id IN "
        "(SELECT id FROM versions WHERE source LIKE '%/history/%')"
    )


def downgrade() -> None:
    with op.batch_alter_table("changes") as batch:
        batch.drop_column("backfill")
