"""trial_heads.raw_hash: the latest version's raw-payload hash beside its head

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 16:30:00

A fetch reads every head of its trials in one query; with the latest raw hash in
the head it also knows, without one more query per trial, which fetched copies
are byte-identical to what is stored (those are not normalized again).  This
migration adds the column and fills it from each trial's latest version, in
batches of trials (a whole-registry database has 570,000 of them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BATCH = 5_000  # trials per UPDATE


def upgrade() -> None:
    op.add_column("trial_heads", sa.Column("raw_hash", sa.String(length=64), nullable=True))
    conn = op.get_bind()
    fill = sa.text(
        "UPDATE trial_heads SET raw_hash = (SELECT v.raw_hash FROM versions v "
        "WHERE v.trial_key = trial_heads.trial_key AND v.number = trial_heads.number) "
        "WHERE trial_key > :after AND trial_key <= :last"
    )
    after = ""
    while True:
        keys = (
            conn.execute(
                sa.text("SELECT trial_key FROM trial_heads WHERE trial_key > :after ORDER BY trial_key LIMIT :n"),
                {"after": after, "n": BATCH},
            )
            .scalars()
            .all()
        )
        if not keys:
            return
        conn.execute(fill, {"after": after, "last": keys[-1]})
        after = keys[-1]


def downgrade() -> None:
    with op.batch_alter_table("trial_heads") as batch:
        batch.drop_column("raw_hash")
