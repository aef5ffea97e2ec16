"""trial_heads: each trial's latest version (number, content hash, registry date) in a small table

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 13:20:00

A cycle used to find every trial's latest version by grouping over ``versions``,
which reads the whole database (the registry date sits after the blobs).  The
store now keeps the latest head per trial in ``trial_heads``, written in the
transaction that writes the version; this migration fills it from ``versions``
for an existing database.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trial_heads",
        sa.Column("trial_key", sa.String(length=64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("last_update_posted", sa.String(length=10), nullable=True),
        sa.ForeignKeyConstraint(["trial_key"], ["trials.key"]),
        sa.PrimaryKeyConstraint("trial_key"),
    )
    op.execute(
        "INSERT INTO trial_heads (trial_key, number, content_hash, last_update_posted) "
        "SELECT v.trial_key, v.number, v.content_hash, v.last_update_posted FROM versions v "
        "JOIN (SELECT trial_key, MAX(number) AS number FROM versions GROUP BY trial_key) latest "
        "ON latest.trial_key = v.trial_key AND latest.number = v.number"
    )


def downgrade() -> None:
    op.drop_table("trial_heads")
