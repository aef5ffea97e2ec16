"""Retention of raw payloads (``storage.keep_raw_versions``): each trial keeps the raw
payloads of its newest N versions; older versions keep their record, hashes, dates and
changes forever, only their raw text goes (``versions.raw`` becomes NULL, and the record,
packed with the raw payload as dictionary, is re-packed on its own first).

Applied as each version is stored (in its transaction) and, for what is already stored,
by ``monitor db prune`` (:func:`drop_old_raw_payloads`, in batches of :data:`BATCH`).
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from monitor.store.packing import naming, repack_alone, unpack_raw
from monitor.store.schema import versions

BATCH = 500  # versions re-packed per transaction


def retain(conn: Connection, key: str, newest: int, keep: int) -> int:
    """Drop the raw payloads of ``key``'s versions older than its newest ``keep`` (0: keep all)."""
    if keep < 1 or newest <= keep:
        return 0
    old = (versions.c.trial_key == key) & (versions.c.number <= newest - keep) & versions.c.raw.is_not(None)
    return _drop(conn, conn.execute(select(*_COLUMNS).where(old)).all())


def drop_old_raw_payloads(engine: Engine, keep: int) -> int:
    """Apply retention to every trial now; how many raw payloads were dropped."""
    if keep < 1:
        return 0
    later = versions.alias("later")
    newer_count = (
        select(func.count())
        .where((later.c.trial_key == versions.c.trial_key) & (later.c.number > versions.c.number))
        .scalar_subquery()
    )
    dropped, last = 0, 0
    while True:
        with engine.begin() as conn:
            rows = conn.execute(
                select(*_COLUMNS)
                .where(versions.c.raw.is_not(None) & (versions.c.id > last) & (newer_count >= keep))
                .order_by(versions.c.id)
                .limit(BATCH)
            ).all()
            if not rows:
                return dropped
            dropped += _drop(conn, rows)
        last = rows[-1].id


_COLUMNS = (versions.c.id, versions.c.trial_key, versions.c.number, versions.c.record, versions.c.raw)


def _drop(conn: Connection, rows) -> int:
    for row in rows:
        with naming(row.trial_key, row.number):
            record = repack_alone(row.record, unpack_raw(row.raw))
        conn.execute(versions.update().where(versions.c.id == row.id).values(record=record, raw=None))
    return len(rows)
