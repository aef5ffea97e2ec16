"""expected_seen.due: the next day a trial's expected-event rules can turn

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 19:40:00

The rules turn on a trial's dates only where a date or a grace period is crossed
(:func:`monitor.expected_events.next_due`).  With that day stored beside each
evaluated trial, the first cycle of a UTC day evaluates the trials due, not every
watched record (a pass over 570,000 records took 5 minutes of CPU).  Rows that
exist before this migration get no day (NULL: "not known"), so the next daily
pass evaluates them once and writes theirs.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("expected_seen", sa.Column("due", sa.Date(), nullable=True))
    op.create_index("ix_expected_seen_due", "expected_seen", ["due"])


def downgrade() -> None:
    op.drop_index("ix_expected_seen_due", "expected_seen")
    with op.batch_alter_table("expected_seen") as batch:
        batch.drop_column("due")
