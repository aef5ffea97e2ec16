"""Watches, saved-search members, and per-trial state (the watches concern: ``store.watches``).

The key-value service state and the daemon's lock are :mod:`monitor.store.service`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from monitor.errors import NotFoundError, StoreError
from monitor.model import Change
from monitor.store.database import Concern, Database, reason
from monitor.store.rows import CHUNK, keyed_rows
from monitor.store.schema import query_members, trial_heads, trial_state, watches
from monitor.store.service import ServiceState
from monitor.store.versions import VersionStore

HELD_PAGE = 20_000  # keys a query in held_keys()


@dataclass(frozen=True)
class Watch:
    kind: str
    target: str
    added_at: datetime
    members: int = 0


class WatchStore(Concern):
    """Watches, saved-search members and their events, and each trial's fetch state."""

    def __init__(self, db: Database, versions: VersionStore, service: ServiceState) -> None:
        super().__init__(db)
        self.versions = versions  # a saved-search event is written with its deliveries
        self.service = service  # and the search's baseline mark, in one transaction

    # --- watches ---------------------------------------------------------------------

    def add_watch(self, kind: str, target: str, now: datetime) -> bool:
        """Start watching; False when it was watched already."""
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(watches).values(kind=kind, target=target, added_at=now))
        except IntegrityError:
            return False
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot save the watch {target}: {reason(exc)}") from exc
        return True

    def ensure_watches(self, kind: str, targets: Iterable[str], now: datetime) -> list[str]:
        """Watch every one of ``targets`` not watched yet, in one transaction: ``CHUNK`` targets at a
        time, one query for those of them already watched and one batched insert of the rest
        (memory flat in the number of targets); returns the newly added ones."""
        wanted = list(dict.fromkeys(targets))
        if not wanted:
            return []
        missing: list[str] = []
        try:
            with self.engine.begin() as conn:
                for i in range(0, len(wanted), CHUNK):
                    part = wanted[i : i + CHUNK]
                    held = select(watches.c.target).where(watches.c.kind == kind, watches.c.target.in_(part))
                    have = set(conn.execute(held).scalars())
                    new = [t for t in part if t not in have]
                    if new:
                        conn.execute(insert(watches), [{"kind": kind, "target": t, "added_at": now} for t in new])
                    missing += new
        except IntegrityError:  # another process added some at the same moment: one at a time, then
            return [t for t in wanted if self.add_watch(kind, t, now)]
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot save the watches: {reason(exc)}") from exc
        return missing

    def remove_watch(self, kind: str, target: str) -> bool:
        with self.engine.begin() as conn:
            watch_id = _watch_id(conn, kind, target)
            if watch_id is None:
                return False
            conn.execute(query_members.delete().where(query_members.c.watch_id == watch_id))
            conn.execute(watches.delete().where(watches.c.id == watch_id))
        return True

    def all(self) -> list[Watch]:
        members = (
            select(query_members.c.watch_id, func.count().label("n")).group_by(query_members.c.watch_id).subquery()
        )
        query = (
            select(watches.c.kind, watches.c.target, watches.c.added_at, members.c.n)
            .outerjoin(members, members.c.watch_id == watches.c.id)
            .order_by(watches.c.kind.desc(), watches.c.target)
        )
        with self._reading() as conn:
            return [Watch(r.kind, r.target, r.added_at, r.n or 0) for r in conn.execute(query)]

    def tally(self) -> str:
        """The watches in a few bytes: how many, the highest id and the latest addition, so that any
        removal or addition since (a removal and an addition too) tells (one query, no row read)."""
        query = select(func.count(), func.max(watches.c.id), func.max(watches.c.added_at))
        with self._reading() as conn:
            count, highest, latest = conn.execute(query).one()
        return f"{count}/{highest}/{latest}"

    def watched_trials(self) -> list[str]:
        """Every trial watched by id or through a saved search."""
        with self._reading() as conn:
            direct = conn.execute(select(watches.c.target).where(watches.c.kind == "trial")).scalars().all()
            via = conn.execute(select(query_members.c.trial_key)).scalars().all()
        return sorted(set(direct) | set(via))

    def members(self, target: str) -> dict[str, tuple[str | None, str | None]] | None:
        """A saved search's current trials (key -> (title, status)); None before its first run."""
        with self._reading() as conn:
            watch_id = _watch_id(conn, "query", target)
            if watch_id is None:
                raise NotFoundError(f"no saved search {target!r} is watched")
            if self.service.get_state(f"query.{watch_id}.baseline") is None:
                return None
            rows = conn.execute(select(query_members).where(query_members.c.watch_id == watch_id))
            return {r.trial_key: (r.title, r.status) for r in rows}

    def update_members(
        self,
        target: str,
        entered: list[tuple[str, str | None, str | None]],
        left: list[str],
        events: list[tuple[str, Change, list[str]]],
        now: datetime,
    ) -> None:
        """Trials entering and leaving a saved search, with their events and the
        events' deliveries (``(trial, event, routes)``), in one transaction."""
        with self.engine.begin() as conn:
            watch_id = _watch_id(conn, "query", target)
            if left:
                conn.execute(
                    query_members.delete().where(
                        (query_members.c.watch_id == watch_id) & query_members.c.trial_key.in_(left)
                    )
                )
            if entered:
                conn.execute(
                    insert(query_members),
                    [
                        {"watch_id": watch_id, "trial_key": key, "title": title, "status": status, "entered_at": now}
                        for key, title, status in entered
                    ],
                )
            for key, event, routes in events:
                change_id = self.versions._insert_event(conn, key, now, event)
                self.versions._insert_deliveries(conn, routes, f"c:{change_id}", key, now)
            self.service._put_state(conn, f"query.{watch_id}.baseline", now.isoformat())

    def refresh_members(self, target: str, rows: list[tuple[str, str | None, str | None]]) -> None:
        """The title and status of trials already in a saved search (``(key, title, status)``), as its
        change query answered them: what a `left` event names later.  One batched statement."""
        if not rows:
            return
        with self.engine.begin() as conn:
            watch_id = _watch_id(conn, "query", target)
            conn.execute(
                query_members.update()
                .where((query_members.c.watch_id == watch_id) & (query_members.c.trial_key == bindparam("k")))
                .values(title=bindparam("t"), status=bindparam("s")),
                [{"k": key, "t": title, "s": status} for key, title, status in rows],
            )

    # --- per-trial and per-source state -------------------------------------------------

    def last_seen(self, keys: Iterable[str] | None = None) -> dict[str, tuple[str | None, str | None]]:
        """Trial key -> (last-update date, overall status) we last saw in the
        registry: when we last fetched it, else its latest version's date.  Of every
        trial, or of ``keys`` only (a thousand a query: :class:`monitor.seen.LastSeen`)."""
        wanted = None if keys is None else sorted(set(keys))
        seen: dict[str, tuple[str | None, str | None]] = {
            key: (head.last_update_posted, None) for key, head in self.versions.latest_heads(wanted).items()
        }
        query = select(trial_state.c.trial_key, trial_state.c.seen_update, trial_state.c.seen_status).where(
            trial_state.c.seen_update.is_not(None)
        )
        with self._reading() as conn:
            rows = keyed_rows(conn, query, trial_state.c.trial_key, wanted)
            seen.update({r.trial_key: (r.seen_update, r.seen_status) for r in rows})
        return seen

    def held_keys(self) -> Iterator[str]:
        """Every trial :meth:`last_seen` knows of (a head, or a date seen), keys only, read
        ``HELD_PAGE`` at a time in key order, heads first: a trial with both is named twice, and the
        whole registry's 570,000 keys are never in one list."""
        dated = trial_state.c.seen_update.is_not(None)
        for column, where in ((trial_heads.c.trial_key, None), (trial_state.c.trial_key, dated)):
            after = ""
            while True:
                query = select(column).where(column > after).order_by(column).limit(HELD_PAGE)
                with self._reading() as conn:
                    keys = list(conn.execute(query if where is None else query.where(where)).scalars())
                yield from keys
                if len(keys) < HELD_PAGE:
                    break
                after = keys[-1]

    def mark_seen(self, key: str, last_update: str | None, status: str | None) -> None:
        self._upsert_trial_state(key, seen_update=last_update, seen_status=status)

    def mark_seen_many(self, seen: dict[str, tuple[str | None, str | None]]) -> None:
        """:meth:`mark_seen` for many trials (key -> (last-update date, status)) in one transaction."""
        if not seen:
            return
        keys = sorted(seen)
        with self.engine.begin() as conn:
            have = set()
            for i in range(0, len(keys), CHUNK):
                have.update(
                    conn.execute(
                        select(trial_state.c.trial_key).where(trial_state.c.trial_key.in_(keys[i : i + CHUNK]))
                    ).scalars()
                )
            rows = [{"k": k, "seen_update": seen[k][0], "seen_status": seen[k][1]} for k in keys if k in have]
            if rows:
                conn.execute(
                    trial_state.update()
                    .where(trial_state.c.trial_key == bindparam("k"))
                    .values(seen_update=bindparam("seen_update"), seen_status=bindparam("seen_status")),
                    rows,
                )
            new = [
                {"trial_key": k, "backfill": "done", "seen_update": seen[k][0], "seen_status": seen[k][1]}
                for k in keys
                if k not in have
            ]
            if new:
                conn.execute(insert(trial_state), new)

    def backfill_state(self, key: str) -> str | None:
        with self._reading() as conn:
            return conn.execute(select(trial_state.c.backfill).where(trial_state.c.trial_key == key)).scalar()

    def set_backfill(self, key: str, state: str) -> None:
        self._upsert_trial_state(key, backfill=state)

    def pending_backfills(self, limit: int) -> list[str]:
        with self._reading() as conn:
            return list(
                conn.execute(
                    select(trial_state.c.trial_key)
                    .where(trial_state.c.backfill == "pending")
                    .order_by(trial_state.c.trial_key)
                    .limit(limit)
                ).scalars()
            )

    def record_error(self, key: str, message: str, now: datetime) -> bool:
        """Remember a trial's error; True when it is new (not the one last reported)."""
        with self._reading() as conn:
            previous = conn.execute(select(trial_state.c.last_error).where(trial_state.c.trial_key == key)).scalar()
        self._upsert_trial_state(key, last_error=message, last_error_at=now)
        return previous != message

    def clear_errors(self, keys: Iterable[str]) -> None:
        """Forget the last error of every one of ``keys`` that has one, in one transaction."""
        keys = sorted(set(keys))
        with self.engine.begin() as conn:
            for i in range(0, len(keys), CHUNK):
                conn.execute(
                    trial_state.update()
                    .where(trial_state.c.trial_key.in_(keys[i : i + CHUNK]) & trial_state.c.last_error.is_not(None))
                    .values(last_error=None, last_error_at=None)
                )

    def forget_places(self, prefix: str) -> None:
        """Forget the problems recorded under a place rather than a trial (keys starting with ``prefix``,
        such as ``registry page N studies[I]``): a new pass names again those still there."""
        with self.engine.begin() as conn:
            conn.execute(trial_state.delete().where(trial_state.c.trial_key.startswith(prefix, autoescape=True)))

    def clear_error(self, key: str) -> None:
        with self._reading() as conn:
            has = conn.execute(select(trial_state.c.last_error).where(trial_state.c.trial_key == key)).scalar()
        if has:
            self._upsert_trial_state(key, last_error=None, last_error_at=None)

    def _upsert_trial_state(self, key: str, **values) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(trial_state.update().where(trial_state.c.trial_key == key).values(**values))
            if done.rowcount == 0:
                conn.execute(insert(trial_state).values(trial_key=key, **{"backfill": "done", **values}))

    def trial_errors(self) -> list[tuple[str, str, datetime | None]]:
        """Trials whose last fetch failed: (key, message, when), newest first."""
        with self._reading() as conn:
            rows = conn.execute(
                select(trial_state.c.trial_key, trial_state.c.last_error, trial_state.c.last_error_at)
                .where(trial_state.c.last_error.is_not(None))
                .order_by(trial_state.c.last_error_at.desc())
            )
            return [(r.trial_key, r.last_error, r.last_error_at) for r in rows]


def _watch_id(conn, kind: str, target: str) -> int | None:
    """The id of the watch (``kind``, ``target``), None when there is none."""
    return conn.execute(select(watches.c.id).where((watches.c.kind == kind) & (watches.c.target == target))).scalar()
