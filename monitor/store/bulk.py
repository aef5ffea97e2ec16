"""Writing many versions at once: a few statements per batch, not several per trial.

:meth:`BulkStore.add_versions` writes a batch of versions (hundreds of
trials), each with its changes, its head and its deliveries, in one
transaction of batched (``executemany``) statements.  When the database
refuses the batch (a row that breaks a constraint, another process that
stored a version of one of its trials first), nothing of it is kept and every
version is written again in its own transaction (:meth:`add_version`): the bad
one is refused alone, with the reason, and never takes its neighbours with it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import bindparam, insert

from monitor.errors import StoreError, WriteConflict
from monitor.store.retention import retain
from monitor.store.rows import NewVersion, delivery_rows, forget_turning_days, head_row, insert_versions
from monitor.store.schema import deliveries, trial_heads, trials
from monitor.store.versions import VersionStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PendingVersion:
    """A version waiting for its batch: stored as ``number`` with ``routes``' deliveries."""

    new: NewVersion
    number: int
    routes: tuple[str, ...] = ()


class BulkStore(VersionStore):
    def add_versions(self, batch: list[PendingVersion]) -> dict[str, str]:
        """Write ``batch``; the trials not written, each with the reason (empty: all written)."""
        if not batch:
            return {}
        try:
            with self.engine.begin() as conn:
                _write_batch(conn, batch, self.keep_raw_versions)
            return {}
        except Exception as exc:  # any refusal: each version again, alone
            log.info("a batch of %d versions was refused (%s); writing them one by one", len(batch), exc)
        refused: dict[str, str] = {}
        for pending in batch:
            key = pending.new.record.key
            try:
                self.add_version(pending.new, pending.number, pending.routes)
            except WriteConflict as exc:  # that trial's alone
                refused[key] = exc.message.removeprefix(f"{key}: ")  # the caller names the trial
            except StoreError:  # the database refuses every write (full, read-only): nothing more is stored
                raise
            except Exception as exc:  # the per-trial boundary
                log.exception("%s: unexpected error writing the version", key)
                refused[key] = f"unexpected error ({type(exc).__name__}: {exc}); not stored, see the log"
        return refused


def _write_batch(conn, batch: list[PendingVersion], keep_raw_versions: int = 0) -> None:
    """Every row of ``batch`` in the open transaction ``conn``: one statement per table (and, when
    ``storage.keep_raw_versions`` is set, the raw payloads it pushes out dropped, one trial at a time)."""
    first = [p.new for p in batch if p.number == 1]
    later = [p.new for p in batch if p.number != 1]
    if first:
        conn.execute(
            insert(trials),
            [
                {"key": n.record.key, "nct_id": n.record.nct_id, "title": n.record.title, "first_seen": n.loaded_at}
                for n in first
            ],
        )
    if later:
        conn.execute(
            trials.update().where(trials.c.key == bindparam("k")).values(title=bindparam("t")),
            [{"k": n.record.key, "t": n.record.title} for n in later],
        )
    ids = insert_versions(conn, [(p.new, p.number) for p in batch])
    heads = [{"trial_key": p.new.record.key, **head_row(p.new, p.number)} for p in batch]
    if first:
        conn.execute(insert(trial_heads), [h for h in heads if h["number"] == 1])
    if later:
        conn.execute(
            trial_heads.update()
            .where(trial_heads.c.trial_key == bindparam("k"))
            .values(
                number=bindparam("n"),
                content_hash=bindparam("h"),
                last_update_posted=bindparam("d"),
                raw_hash=bindparam("r"),
            ),
            [
                {
                    "k": h["trial_key"],
                    "n": h["number"],
                    "h": h["content_hash"],
                    "d": h["last_update_posted"],
                    "r": h["raw_hash"],
                }
                for h in heads
                if h["number"] != 1
            ],
        )
        forget_turning_days(conn, [n.record.key for n in later])
    outbox = [
        row
        for version_id, p in zip(ids, batch, strict=True)
        for row in delivery_rows(p.routes, f"v:{version_id}", p.new.record.key, p.new.loaded_at)
    ]
    if outbox:
        conn.execute(insert(deliveries), outbox)
    if keep_raw_versions:
        for p in batch:
            retain(conn, p.new.record.key, p.number, keep_raw_versions)
