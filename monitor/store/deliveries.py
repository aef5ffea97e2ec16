"""The delivery ledger (the transactional outbox): one row per (event, route); the
deliveries concern (``store.deliveries``).

A row is written with its event; the sender marks it ``sent`` only after
Apprise reported success, so a crash at any moment loses nothing.  The one
window left, between a successful send and its mark, can repeat a message on
restart, never lose one (at-least-once).

Before sending, a sender *claims* its rows (:meth:`DeliveryStore.claim`): one
conditional ``UPDATE`` sets a lease on rows that are pending and not leased by
anyone else (or whose lease has expired).  The database serialises the two
updates of a race, so two cycles, or the daemon and ``monitor notify retry``,
never send the same row; a lease left by a killed sender is given back (see
:mod:`monitor.notify`) or expires, and the row is sent again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from monitor.errors import NotFoundError
from monitor.model import Change
from monitor.store.database import Concern, Database
from monitor.store.rows import StoredVersion, _change_columns
from monitor.store.schema import changes, deliveries, trials, versions
from monitor.store.versions import VersionStore


@dataclass(frozen=True)
class Delivery:
    id: int
    route: str
    event: str
    trial_key: str
    created_at: datetime
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    sent_at: datetime | None
    lease_until: datetime | None = None
    lease_owner: str | None = None


@dataclass(frozen=True)
class Event:
    """What one delivery is about: a new version (with its changes) or a
    saved-search event."""

    trial_key: str
    title: str
    changes: tuple[Change, ...]
    version: StoredVersion | None = None
    previous: int | None = None  # the number of the version before, when there is one
    previous_date: str | None = None  # and its registry date (last update posted)


class DeliveryStore(Concern):
    """Reading, claiming and marking the outbox rows (the writers of events write them,
    in the event's transaction: :meth:`VersionStore._insert_deliveries`)."""

    def __init__(self, db: Database, versions: VersionStore) -> None:
        super().__init__(db)
        self.versions = versions  # an event is read with its version

    def due_deliveries(self, route: str, now: datetime | None = None) -> list[Delivery]:
        """Pending rows of a route (only those whose next attempt is due, given ``now``), oldest first."""
        query = select(deliveries).where((deliveries.c.route == route) & (deliveries.c.status == "pending"))
        if now is not None:
            query = query.where(deliveries.c.next_attempt_at <= now)
        with self._reading() as conn:
            return [Delivery(**r._mapping) for r in conn.execute(query.order_by(deliveries.c.id))]

    def recent(self, status: str | None = None, limit: int = 200) -> list[Delivery]:
        query = select(deliveries).order_by(deliveries.c.id.desc()).limit(limit)
        if status:
            query = query.where(deliveries.c.status == status)
        with self._reading() as conn:
            return [Delivery(**r._mapping) for r in conn.execute(query)]

    def delivery_counts(self) -> dict[str, int]:
        with self._reading() as conn:
            rows = conn.execute(select(deliveries.c.status, func.count()).group_by(deliveries.c.status)).all()
        counts = dict(rows)
        return {"pending": counts.get("pending", 0), "failed": counts.get("failed", 0), "sent": counts.get("sent", 0)}

    def claim(self, ids: list[int], owner: str, now: datetime, until: datetime, due: bool = True) -> list[int]:
        """Lease the rows of ``ids`` that are pending, due at ``now`` (unless not
        ``due``) and free (never leased, or their lease expired before ``now``)
        to ``owner`` until ``until``; the ids claimed.  ``owner`` is unique to
        its sender."""
        if not ids:
            return []
        free = (deliveries.c.lease_until.is_(None)) | (deliveries.c.lease_until < now)
        if due:
            free = free & (deliveries.c.next_attempt_at <= now)
        with self.engine.begin() as conn:
            conn.execute(
                deliveries.update()
                .where(deliveries.c.id.in_(ids) & (deliveries.c.status == "pending") & free)
                .values(lease_until=until, lease_owner=owner)
            )
            claimed = conn.execute(
                select(deliveries.c.id).where(deliveries.c.id.in_(ids) & (deliveries.c.lease_owner == owner))
            )
            return sorted(claimed.scalars())

    def release(self, ids: list[int] | None, owner: str) -> None:
        """Give back rows claimed by ``owner`` (those of ``ids``, or all) without sending them."""
        query = deliveries.update().where((deliveries.c.lease_owner == owner) & (deliveries.c.status == "pending"))
        if ids is not None:
            query = query.where(deliveries.c.id.in_(ids))
        with self.engine.begin() as conn:
            conn.execute(query.values(lease_until=None, lease_owner=None))

    def lease_owners(self, now: datetime) -> list[str]:
        """The senders holding a live claim on a pending row."""
        query = (
            select(deliveries.c.lease_owner)
            .where((deliveries.c.status == "pending") & (deliveries.c.lease_until >= now))
            .distinct()
        )
        with self._reading() as conn:
            return sorted(conn.execute(query).scalars())

    def mark_sent(self, ids: list[int], at: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                deliveries.update()
                .where(deliveries.c.id.in_(ids) & (deliveries.c.status == "pending"))
                .values(status="sent", sent_at=at, last_error=None, lease_until=None, lease_owner=None)
            )

    def mark_attempt_failed(self, ids: list[int], error: str, next_attempt: datetime, give_up_before: datetime) -> int:
        """Count a failed attempt; rows created before ``give_up_before`` are
        marked failed, the rest wait until ``next_attempt``.  Returns how many
        were given up."""
        with self.engine.begin() as conn:
            conn.execute(
                deliveries.update()
                .where(deliveries.c.id.in_(ids))
                .values(
                    attempts=deliveries.c.attempts + 1,
                    last_error=error,
                    next_attempt_at=next_attempt,
                    lease_until=None,
                    lease_owner=None,
                )
            )
            given_up = conn.execute(
                deliveries.update()
                .where(deliveries.c.id.in_(ids) & (deliveries.c.created_at < give_up_before))
                .values(status="failed")
            ).rowcount
        return given_up

    def retry_now(self, now: datetime, include_failed: bool = False) -> int:
        """Make every pending row due now; with ``include_failed``, failed rows
        too, with a fresh retry window."""
        with self.engine.begin() as conn:
            count = conn.execute(
                deliveries.update().where(deliveries.c.status == "pending").values(next_attempt_at=now)
            ).rowcount
            if include_failed:
                count += conn.execute(
                    deliveries.update()
                    .where(deliveries.c.status == "failed")
                    .values(status="pending", next_attempt_at=now, created_at=now)
                ).rowcount
        return count

    def event(self, event: str) -> Event:
        kind, _, raw_id = event.partition(":")
        with self._reading() as conn:
            if kind == "v":
                row = conn.execute(select(versions).where(versions.c.id == int(raw_id))).first()
                if row is None:
                    raise NotFoundError(f"no version with id {raw_id}")
                version = self.versions._version(conn, row, with_changes=True)
                previous = version.number - 1 if version.number > 1 else None
                previous_date = None
                if previous is not None:
                    previous_date = conn.execute(
                        select(versions.c.last_update_posted).where(
                            (versions.c.trial_key == row.trial_key) & (versions.c.number == previous)
                        )
                    ).scalar()
                return Event(row.trial_key, version.record.title, version.changes, version, previous, previous_date)
            row = conn.execute(
                _change_columns().add_columns(changes.c.trial_key).where(changes.c.id == int(raw_id))
            ).first()
            if row is None:
                raise NotFoundError(f"no event with id {raw_id}")
            mapping = dict(row._mapping)
            key = mapping.pop("trial_key")
            title = conn.execute(select(trials.c.title).where(trials.c.key == key)).scalar()
            change = Change.from_dict(mapping)
            return Event(key, title or (change.new or change.old or {}).get("title") or key, (change,))
