"""packed versions: raw payloads and records stored compressed (monitor.store.packing)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 13:30:00

``versions.raw`` (text) and ``versions.record`` (JSON) become compressed blobs:
the raw payload as a zstandard frame, the record as compact JSON compressed with
the raw payload as dictionary.  Existing rows are converted in batches of
:data:`BATCH` versions (never every row in memory); the content is unchanged:
the same raw text and the same record come back out.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from monitor.store.packing import pack_raw, pack_record, stored_record, unpack_raw

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BATCH = 500


def _convert(record_type: sa.types.TypeEngine, raw_type: sa.types.TypeEngine, convert) -> None:
    """Fill ``packed_record`` and ``packed_raw`` from ``record`` and ``raw``, BATCH rows at a time."""
    conn = op.get_bind()
    update = sa.text("UPDATE versions SET packed_record = :record, packed_raw = :raw WHERE id = :id").bindparams(
        sa.bindparam("record", type_=record_type), sa.bindparam("raw", type_=raw_type)
    )
    last = 0
    while True:
        rows = conn.execute(
            sa.text("SELECT id, record, raw FROM versions WHERE id > :last ORDER BY id LIMIT :n"),
            {"last": last, "n": BATCH},
        ).all()
        if not rows:
            return
        for row in rows:
            record, raw = convert(row.record, row.raw)
            conn.execute(update, {"record": record, "raw": raw, "id": row.id})
        last = rows[-1].id


def _pack(record, raw: str):
    record = record if isinstance(record, dict) else json.loads(record)
    return pack_record(record, raw), pack_raw(raw)


def _unpack(record: bytes, raw: bytes | None):
    return stored_record(record, raw), unpack_raw(raw) if raw is not None else ""


def _swap(record_type: sa.types.TypeEngine, raw_type: sa.types.TypeEngine, convert, raw_nullable: bool) -> None:
    with op.batch_alter_table("versions") as batch:
        batch.add_column(sa.Column("packed_record", record_type, nullable=True))
        batch.add_column(sa.Column("packed_raw", raw_type, nullable=True))
    _convert(record_type, raw_type, convert)
    with op.batch_alter_table("versions") as batch:
        batch.drop_column("record")
        batch.drop_column("raw")
    with op.batch_alter_table("versions") as batch:
        batch.alter_column("packed_record", new_column_name="record", existing_type=record_type, nullable=False)
        batch.alter_column("packed_raw", new_column_name="raw", existing_type=raw_type, nullable=raw_nullable)


def upgrade() -> None:
    _swap(sa.LargeBinary(), sa.LargeBinary(), _pack, raw_nullable=True)


def downgrade() -> None:
    """Back to text and JSON (a raw payload dropped by retention comes back empty)."""
    from sqlalchemy.dialects.postgresql import JSONB

    _swap(sa.JSON().with_variant(JSONB(), "postgresql"), sa.Text(), _unpack, raw_nullable=False)
