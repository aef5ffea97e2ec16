"""Looking after the database, one call each: what ``monitor db upgrade|prune|export`` do,
for a Python caller too.

    upgrade_schema(settings.database)      # ("0006", "0007"): the schema revision before and after
    prune_raw(store, keep=3)               # raw payloads dropped; records and changes stay
    export_raw(store, "snapshots/")        # (payloads in the archive, written now, the folder)
"""

from __future__ import annotations

from pathlib import Path

from monitor.archive import ArchiveError, SnapshotArchive
from monitor.errors import UsageError
from monitor.store import Store
from monitor.store.database import open_engine
from monitor.store.export import raw_payloads
from monitor.store.migrate import upgrade


def upgrade_schema(database: str) -> tuple[str | None, str]:
    """Bring the schema of ``database`` (a SQLAlchemy URL or SQLite path) to this version
    of the monitor: (revision before, None for an empty database; revision after)."""
    engine = open_engine(database, create=None)
    try:
        return upgrade(engine)
    finally:
        engine.dispose()


def check_keep(keep: int) -> int:
    """``keep`` raw payloads a trial, at least one (:class:`UsageError` before anything is opened)."""
    if not keep:
        raise UsageError(
            "storage.keep_raw_versions is 0 (every raw payload is kept): set it in the configuration or give --keep N"
        )
    return keep


def prune_raw(store: Store, keep: int) -> int:
    """Drop the raw payloads of each trial's versions but the newest ``keep``; how many were dropped."""
    return store.versions.drop_old_raw_payloads(check_keep(keep))


def check_folder(folder: str | Path) -> str | Path:
    """An archive folder named (:class:`UsageError` for a blank one, before anything is opened)."""
    if not str(folder).strip():
        raise UsageError("--to: give a folder (or leave --to out for the `snapshots` setting)")
    return folder


def export_raw(store: Store, folder: str | Path) -> tuple[int, int, Path]:
    """Write every stored raw payload to the snapshot archive at ``folder`` (`monitor load`
    reads it back): (payloads in the archive, written now, the archive's root).  A payload
    that cannot be written stops the export with :class:`ArchiveError` saying how many were."""
    archive = SnapshotArchive(check_folder(folder))
    written = total = 0
    for payload in raw_payloads(store.engine):
        try:
            path = archive.put(payload.key, payload.registry_date, payload.raw, payload.raw_hash, verify=True)
            written += path is not None
        except ArchiveError as exc:
            cause = exc.message.split("; nothing was stored")[0]
            raise ArchiveError(
                f"{cause}; {written} payload(s) written before it (make it writable, or --to DIR)"
            ) from exc
        total += 1
    return total, written, archive.root
