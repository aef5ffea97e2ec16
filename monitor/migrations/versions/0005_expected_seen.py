"""expected_seen: the trials the expected-event rules have evaluated (the first evaluation is a silent baseline)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 12:40:00

A database where the rules have already run (``expected_state`` holds a row)
had every stored trial evaluated by them: those trials are marked as seen, so
their next transitions are still told.  Elsewhere the next evaluation is the
baseline.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "expected_seen",
        sa.Column("trial_key", sa.String(length=64), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("trial_key"),
    )
    op.execute(
        "INSERT INTO expected_seen (trial_key, since) SELECT key, first_seen FROM trials "
        "WHERE EXISTS (SELECT 1 FROM expected_state)"
    )


def downgrade() -> None:
    op.drop_table("expected_seen")
