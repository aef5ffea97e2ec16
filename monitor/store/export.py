"""Every stored raw payload, read in batches (``monitor db export``: the snapshot
archive written from the database, which holds the one copy by default)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.engine import Engine

from monitor.store.packing import naming, unpack_raw
from monitor.store.schema import versions

BATCH = 200  # versions read per query


class RawPayload(NamedTuple):
    key: str
    registry_date: str | None
    raw: str
    raw_hash: str


def raw_payloads(engine: Engine) -> Iterator[RawPayload]:
    """Every raw payload still stored (retention may have dropped old ones), oldest row first."""
    columns = (
        versions.c.id,
        versions.c.trial_key,
        versions.c.number,
        versions.c.last_update_posted,
        versions.c.raw,
        versions.c.raw_hash,
    )
    last = 0
    while True:
        with engine.connect() as conn:
            rows = conn.execute(
                select(*columns)
                .where((versions.c.id > last) & versions.c.raw.is_not(None))
                .order_by(versions.c.id)
                .limit(BATCH)
            ).all()
        if not rows:
            return
        for row in rows:
            with naming(row.trial_key, row.number):
                raw = unpack_raw(row.raw)
            yield RawPayload(row.trial_key, row.last_update_posted, raw, row.raw_hash)
        last = rows[-1].id
