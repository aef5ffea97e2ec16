"""Trials, their versions and their changes (the versions concern: ``store.versions``).

A version is written with its changes, its head and its deliveries in one transaction;
the other concerns write their events and deliveries through :meth:`VersionStore._insert_event`
and :meth:`VersionStore._insert_deliveries` on their own open connection."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from monitor.diff import UNHASHED, hashed
from monitor.errors import NotFoundError, StoreError, WriteConflict
from monitor.model import Change, TrialRecord
from monitor.store.database import Concern, reason
from monitor.store.packing import naming, stored_record, unpack_raw
from monitor.store.retention import drop_old_raw_payloads, retain
from monitor.store.rows import (
    _HEAD,
    NewVersion,
    StoredVersion,
    VersionHead,
    _change_columns,
    _change_row,
    _head,
    delivery_rows,
    forget_turning_days,
    head_row,
    insert_versions,
    keyed_rows,
    version_row,
)
from monitor.store.schema import changes, deliveries, metadata, trial_heads, trials, versions


class VersionStore(Concern):
    """Trials, versions, changes and heads: reading, and writing one version (batches: :mod:`.bulk`)."""

    # --- reading ------------------------------------------------------------------

    def latest_version(self, key: str) -> StoredVersion | None:
        with self._reading() as conn:
            row = conn.execute(
                select(versions).where(versions.c.trial_key == key).order_by(versions.c.number.desc()).limit(1)
            ).first()
            return self._version(conn, row, with_changes=False) if row else None

    def latest_head(self, key: str) -> VersionHead | None:
        """The latest version's number, hashes and date, without its record."""
        with self._reading() as conn:
            row = conn.execute(select(*_HEAD).where(trial_heads.c.trial_key == key)).first()
        return _head(row) if row else None

    def latest_raw_hash(self, key: str) -> tuple[int, str | None] | None:
        """The latest version's number and raw-payload hash (a fetch has them in its heads already)."""
        head = self.latest_head(key)
        return (head.number, head.raw_hash) if head else None

    def latest_heads(self, keys: Iterable[str] | None = None) -> dict[str, VersionHead]:
        """Every trial's latest version head (or those of ``keys``), from the small
        heads table: no version row is read."""
        with self._reading() as conn:
            rows = keyed_rows(conn, select(trial_heads.c.trial_key, *_HEAD), trial_heads.c.trial_key, keys)
            return {r.trial_key: _head(r) for r in rows}

    def raw_hashes(self) -> dict[str, tuple[str, int, str]]:
        """Raw-payload hash -> (trial key, version number, title), for every version."""
        query = select(versions.c.raw_hash, versions.c.trial_key, versions.c.number, trials.c.title).join(
            trials, trials.c.key == versions.c.trial_key
        )
        with self._reading() as conn:
            return {row.raw_hash: (row.trial_key, row.number, row.title) for row in conn.execute(query)}

    def known_hashes(self, key: str) -> dict[tuple[str, str | None], int]:
        """(content hash, last-update date) -> version number, for one trial (a version stored
        unhashed, :data:`monitor.diff.UNHASHED`, is hashed from its stored record)."""
        with self._reading() as conn:
            rows = conn.execute(
                select(versions.c.number, versions.c.content_hash, versions.c.last_update_posted).where(
                    versions.c.trial_key == key
                )
            ).all()
            return {(self._hash(conn, key, row), row.last_update_posted): row.number for row in rows}

    def _hash(self, conn, key: str, row) -> str:
        """``row``'s content hash; read from its stored record when it was stored unhashed."""
        if row.content_hash != UNHASHED:
            return row.content_hash
        stored = conn.execute(
            select(versions.c.record, versions.c.raw).where(
                (versions.c.trial_key == key) & (versions.c.number == row.number)
            )
        ).one()
        with naming(key, row.number):
            return hashed(UNHASHED, TrialRecord.from_dict(stored_record(stored.record, stored.raw)))

    def history(self, key: str) -> list[StoredVersion]:
        """Every stored version of a trial, oldest first, with its changes."""
        with self._reading() as conn:
            rows = conn.execute(select(versions).where(versions.c.trial_key == key).order_by(versions.c.number)).all()
            if not rows:
                raise NotFoundError(f"{key} is not in the store: load or fetch it first (`monitor load PATH`)")
            return [self._version(conn, row, with_changes=True) for row in rows]

    def raw_payload(self, key: str, number: int) -> str:
        with self._reading() as conn:
            row = conn.execute(
                select(versions.c.raw).where((versions.c.trial_key == key) & (versions.c.number == number))
            ).first()
        if row is None:
            raise NotFoundError(f"{key} has no version {number}")
        raw = row.raw
        if raw is None:
            raise NotFoundError(
                f"{key} version {number}: its raw payload was dropped by `storage.keep_raw_versions` "
                "(its record and changes are kept)"
            )
        with naming(key, number):
            return unpack_raw(raw)

    def events(self, key: str) -> list[Change]:
        """Events of a trial that belong to no version (saved-search membership)."""
        with self._reading() as conn:
            rows = conn.execute(
                _change_columns()
                .where((changes.c.trial_key == key) & changes.c.version_id.is_(None))
                .order_by(changes.c.id)
            )
            return [Change.from_dict(dict(r._mapping)) for r in rows]

    def changes_since(self, since: datetime) -> tuple[int, int]:
        """(changes, of which major) detected since ``since``; backfilled history is not counted."""
        with self._reading() as conn:
            rows = conn.execute(
                select(changes.c.severity, func.count())
                .where((changes.c.detected_at >= since) & changes.c.backfill.is_(False))
                .group_by(changes.c.severity)
            ).all()
        counts = dict(rows)
        return sum(counts.values()), counts.get("major", 0)

    def counts(self) -> dict[str, int]:
        sizes = self.table_sizes()
        return {name: sizes[name] for name in ("trials", "versions", "changes")}

    def table_sizes(self) -> dict[str, int]:
        """Rows in every table."""
        with self._reading() as conn:
            return {
                table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for table in metadata.sorted_tables
            }

    # --- writing ------------------------------------------------------------------

    def add_version(self, new: NewVersion, number: int, routes: list[str] | tuple[str, ...] = ()) -> int:
        """Store ``new`` as version ``number`` of its trial, with its changes, in
        one transaction.

        ``number`` is the one the caller computed from the latest version it
        saw; if another writer got there first the transaction fails and nothing
        is written.
        """
        key = new.record.key
        try:
            with self.engine.begin() as conn:
                if number == 1:
                    conn.execute(
                        insert(trials).values(
                            key=key, nct_id=new.record.nct_id, title=new.record.title, first_seen=new.loaded_at
                        )
                    )
                else:
                    conn.execute(trials.update().where(trials.c.key == key).values(title=new.record.title))
                version_id = self._insert_version(conn, new, number)
                head = head_row(new, number)
                if number == 1:
                    conn.execute(insert(trial_heads).values(trial_key=key, **head))
                else:
                    conn.execute(trial_heads.update().where(trial_heads.c.trial_key == key).values(**head))
                    forget_turning_days(conn, [key])
                retain(conn, key, number, self.keep_raw_versions)
                self._insert_deliveries(conn, routes, f"v:{version_id}", key, new.loaded_at)
        except IntegrityError as exc:
            if self._stored_as(key, number) == hashed(new.content_hash, new.record):  # another process stored it
                return number
            raise WriteConflict(
                f"{key}: another process stored a version at the same time; nothing was written, try again"
            ) from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"{key}: the database refused the write: {reason(exc)}") from exc
        return number

    def _stored_as(self, key: str, number: int) -> str | None:
        """The content hash of version ``number`` of ``key``, when it is stored."""
        query = select(versions.c.number, versions.c.content_hash).where(
            versions.c.trial_key == key, versions.c.number == number
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
            return self._hash(conn, key, row) if row else None

    def prepend_versions(self, key: str, older: list[NewVersion], first_changes: list[Change]) -> int:
        """Put ``older`` versions (oldest first) before every stored version of
        ``key``, renumbering the stored ones, and give the formerly first version
        its changes against the newest of them: all in one transaction."""
        if not older:
            return 0
        shift = len(older)
        try:
            with self.engine.begin() as conn:
                first = conn.execute(
                    select(versions.c.id).where((versions.c.trial_key == key) & (versions.c.number == 1))
                ).scalar()
                # Two steps, so that no number is ever held twice.
                conn.execute(
                    versions.update().where(versions.c.trial_key == key).values(number=versions.c.number + 1_000_000)
                )
                conn.execute(
                    versions.update()
                    .where(versions.c.trial_key == key)
                    .values(number=versions.c.number - 1_000_000 + shift)
                )
                conn.execute(
                    trial_heads.update()
                    .where(trial_heads.c.trial_key == key)
                    .values(number=trial_heads.c.number + shift)
                )
                insert_versions(conn, [(new, number) for number, new in enumerate(older, 1)], backfill=True)
                if first is not None:
                    self._insert_changes(conn, first, key, older[-1].loaded_at, first_changes, backfill=True)
                if self.keep_raw_versions:
                    newest = select(func.max(versions.c.number)).where(versions.c.trial_key == key)
                    retain(conn, key, conn.execute(newest).scalar(), self.keep_raw_versions)
        except SQLAlchemyError as exc:
            raise StoreError(f"{key}: the database refused the backfill: {reason(exc)}") from exc
        return shift

    def drop_old_raw_payloads(self, keep: int) -> int:
        """Retention applied to every stored trial now (:mod:`monitor.store.retention`)."""
        return drop_old_raw_payloads(self.engine, keep)

    def _insert_deliveries(self, conn, routes, event: str, key: str, at: datetime) -> None:
        """The outbox rows of one event: written in the event's own transaction."""
        if routes:
            conn.execute(insert(deliveries), delivery_rows(routes, event, key, at))

    def _insert_version(self, conn, new: NewVersion, number: int, backfill: bool = False) -> int:
        version_id = conn.execute(insert(versions).values(**version_row(new, number))).inserted_primary_key[0]
        self._insert_changes(conn, version_id, new.record.key, new.loaded_at, new.changes, backfill or new.backfill)
        return version_id

    def _insert_changes(self, conn, version_id: int | None, key: str, at: datetime, found, backfill=False) -> None:
        if found:
            conn.execute(
                insert(changes),
                [
                    {
                        "version_id": version_id,
                        "trial_key": key,
                        "position": i,
                        "detected_at": at,
                        "backfill": backfill,
                        **_change_row(c),
                    }
                    for i, c in enumerate(found)
                ],
            )

    def _insert_event(self, conn, key: str, at: datetime, event: Change) -> int:
        """A change that belongs to no version; its id."""
        return conn.execute(
            insert(changes).values(version_id=None, trial_key=key, position=0, detected_at=at, **_change_row(event))
        ).inserted_primary_key[0]

    def _version(self, conn, row, with_changes: bool) -> StoredVersion:
        found: tuple[Change, ...] = ()
        if with_changes:
            found = tuple(
                Change.from_dict(dict(r._mapping))
                for r in conn.execute(
                    _change_columns().where(changes.c.version_id == row.id).order_by(changes.c.position)
                )
            )
        with naming(row.trial_key, row.number):
            record = TrialRecord.from_dict(stored_record(row.record, row.raw))
        return StoredVersion(
            trial_key=row.trial_key,
            number=row.number,
            record=record,
            content_hash=hashed(row.content_hash, record),
            source=row.source,
            loaded_at=row.loaded_at,
            last_update_posted=row.last_update_posted,
            changes=found,
        )
