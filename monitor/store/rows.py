"""What the versions concern reads and writes, as values and rows: the version types callers
get (:class:`NewVersion`, :class:`VersionHead`, :class:`StoredVersion`) and the row shapes and
multi-row inserts the single and batched writers share (:mod:`monitor.store.versions`,
:mod:`monitor.store.bulk`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import insert, select, update

from monitor.model import Change, TrialRecord
from monitor.store.packing import pack_raw, pack_record
from monitor.store.schema import changes, expected_seen, trial_heads, versions

CHUNK = 500  # keys per ``IN (...)``: within every SQLite build's limit on bound parameters
_HEAD = (trial_heads.c.number, trial_heads.c.content_hash, trial_heads.c.last_update_posted, trial_heads.c.raw_hash)


@dataclass(frozen=True)
class NewVersion:
    """A version to store, with the changes against the one before it."""

    record: TrialRecord
    raw: str
    raw_hash: str
    content_hash: str
    source: str | None
    loaded_at: datetime
    changes: tuple[Change, ...] = ()
    backfill: bool = False  # from the registry's version history: its changes are history, not news
    packed: tuple[bytes, bytes] | None = None  # (record, raw) as version_row packs them, when a worker did


@dataclass(frozen=True)
class VersionHead:
    number: int
    content_hash: str
    last_update_posted: str | None
    raw_hash: str | None = None  # of the version's raw payload as received (None: not known)


@dataclass(frozen=True)
class StoredVersion:
    trial_key: str
    number: int
    record: TrialRecord
    content_hash: str
    source: str | None
    loaded_at: datetime
    last_update_posted: str | None
    changes: tuple[Change, ...] = field(default=())

    @property
    def date(self) -> str:
        """The registry's date for this version, else the day it was loaded."""
        return self.last_update_posted or self.loaded_at.date().isoformat()


_CHANGE_FIELDS = ("category", "field", "change", "old", "new", "severity", "summary")


def _change_columns():
    return select(*(changes.c[name] for name in _CHANGE_FIELDS))


def insert_versions(conn, items: list[tuple[NewVersion, int]], backfill: bool = False) -> list[int]:
    """``items`` (version, its number) and their changes, one batched statement each; their ids, in order."""
    conn.execute(insert(versions), [version_row(new, number) for new, number in items])
    ids = version_ids(conn, [(new.record.key, number) for new, number in items])
    found = [
        {
            "version_id": version_id,
            "trial_key": new.record.key,
            "position": i,
            "detected_at": new.loaded_at,
            "backfill": backfill or new.backfill,
            **_change_row(change),
        }
        for version_id, (new, _) in zip(ids, items, strict=True)
        for i, change in enumerate(new.changes)
    ]
    if found:
        conn.execute(insert(changes), found)
    return ids


def version_ids(conn, numbered: list[tuple[str, int]]) -> list[int]:
    """The ids of the versions (trial, number) just written, in that order (read back through the
    unique index: no ``RETURNING`` order to trust, one query per 500 trials)."""
    keys = sorted({key for key, _ in numbered})
    found: dict[tuple[str, int], int] = {}
    for i in range(0, len(keys), CHUNK):
        query = select(versions.c.trial_key, versions.c.number, versions.c.id).where(
            versions.c.trial_key.in_(keys[i : i + CHUNK])
        )
        found.update({(row.trial_key, row.number): row.id for row in conn.execute(query)})
    return [found[pair] for pair in numbered]


def version_row(new: NewVersion, number: int) -> dict:
    """The ``versions`` row of ``new`` as version ``number`` (one place for every writer)."""
    record, raw = new.packed or (pack_record(new.record.to_dict(), new.raw), pack_raw(new.raw))
    return {
        "trial_key": new.record.key,
        "number": number,
        "content_hash": new.content_hash,
        "record": record,
        "raw": raw,
        "raw_hash": new.raw_hash,
        "format": new.record.source,
        "source": new.source,
        "loaded_at": new.loaded_at,
        "last_update_posted": new.record.last_update_posted,
    }


def head_row(new: NewVersion, number: int) -> dict:
    """The ``trial_heads`` values of ``new`` stored as version ``number`` (its trial's latest)."""
    return {
        "number": number,
        "content_hash": new.content_hash,
        "last_update_posted": new.record.last_update_posted,
        "raw_hash": new.raw_hash,
    }


def keyed_rows(conn, query, column, keys: Iterable[str] | None):
    """The rows of ``query``: all of them, or those whose ``column`` is one of ``keys`` (:data:`CHUNK`
    keys a query, each ``IN (...)`` within every SQLite build's limit)."""
    if keys is None:
        yield from conn.execute(query)
        return
    wanted = sorted(set(keys))
    for start in range(0, len(wanted), CHUNK):
        yield from conn.execute(query.where(column.in_(wanted[start : start + CHUNK])))


def forget_turning_days(conn, keys: list[str]) -> None:
    """The next turning day of ``keys`` unknown (``expected_seen.due``), in the transaction that stores
    their new versions: the day was computed from the old record, and `monitor load`, `fetch` and
    `backfill` store without the rules, so the next daily pass must evaluate the new one."""
    for start in range(0, len(keys), CHUNK):
        part = keys[start : start + CHUNK]
        conn.execute(update(expected_seen).where(expected_seen.c.trial_key.in_(part)).values(due=None))


def _head(row) -> VersionHead:
    return VersionHead(row.number, row.content_hash, row.last_update_posted, row.raw_hash)


def delivery_rows(routes, event: str, key: str, at: datetime) -> list[dict]:
    """The outbox rows of one event, one per route."""
    return [
        {
            "route": route,
            "event": event,
            "trial_key": key,
            "created_at": at,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": at,
        }
        for route in routes
    ]


def _change_row(change: Change) -> dict:
    data = change.to_dict()
    return {name: data[name] for name in _CHANGE_FIELDS}
