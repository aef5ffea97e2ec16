"""The version store (the only module that imports SQLAlchemy).

Three tables: ``trials``; ``versions`` (each distinct normalized record with its
raw payload, content hash, source, load time and the registry's last-update
date); ``changes`` (what each version changed against the one before).  A
version and its changes are written in one transaction.  Rows never leave this
module: callers get :class:`StoredVersion` values and model objects.

SQLite files are opened in WAL mode with a busy timeout, so a CLI command and
the daemon can use the same file.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from monitor.errors import NotFoundError, StoreError
from monitor.model import Change, TrialRecord

log = logging.getLogger(__name__)

DEFAULT_DB = "monitor.db"
BUSY_TIMEOUT_MS = 30_000

_json = JSON().with_variant(JSONB(), "postgresql")
metadata = MetaData()

trials = Table(
    "trials",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("nct_id", String(11), index=True),
    Column("title", Text),
    Column("first_seen", DateTime(timezone=True), nullable=False),
)

versions = Table(
    "versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("trial_key", String(64), ForeignKey("trials.key"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("record", _json, nullable=False),
    Column("raw", Text, nullable=False),
    Column("raw_hash", String(64), nullable=False, index=True),
    Column("format", String(32)),
    Column("source", Text),
    Column("loaded_at", DateTime(timezone=True), nullable=False),
    Column("last_update_posted", String(10)),
    UniqueConstraint("trial_key", "number", name="uq_versions_trial_number"),
)

changes = Table(
    "changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # NULL for events that belong to no version: a trial entering or leaving a saved search.
    Column("version_id", Integer, ForeignKey("versions.id"), index=True),
    Column("trial_key", String(64), nullable=False, index=True),
    Column("detected_at", DateTime(timezone=True), nullable=False),
    Column("position", Integer, nullable=False),
    Column("category", String(32), nullable=False),
    Column("field", String(64), nullable=False),
    Column("change", String(16), nullable=False),
    Column("old", _json),
    Column("new", _json),
    Column("severity", String(8), nullable=False),
    Column("summary", Text, nullable=False),
)


watches = Table(
    "watches",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(8), nullable=False),  # trial | query
    Column("target", Text, nullable=False),  # an NCT id, or a saved search's API parameters
    Column("added_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("kind", "target", name="uq_watches_kind_target"),
)

query_members = Table(
    "query_members",
    metadata,
    Column("watch_id", Integer, ForeignKey("watches.id", ondelete="CASCADE"), primary_key=True),
    Column("trial_key", String(64), primary_key=True),
    Column("title", Text),
    Column("status", String(40)),
    Column("entered_at", DateTime(timezone=True), nullable=False),
)

trial_state = Table(
    "trial_state",
    metadata,
    Column("trial_key", String(64), primary_key=True),
    Column("backfill", String(8), nullable=False, default="pending"),  # pending | done | failed
    Column("seen_update", String(10)),  # the registry's last-update date when we last looked
    Column("last_error", Text),
    Column("last_error_at", DateTime(timezone=True)),
)

source_state = Table(
    "source_state",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text),
)


@dataclass(frozen=True)
class Watch:
    kind: str
    target: str
    added_at: datetime
    members: int = 0


@dataclass(frozen=True)
class VersionHead:
    number: int
    content_hash: str
    last_update_posted: str | None


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


def database_url(value: str | None) -> str:
    """A SQLAlchemy URL from ``--db``/``MONITOR_DB``: a URL, or a file path
    taken as a SQLite file."""
    value = value or os.environ.get("MONITOR_DB") or DEFAULT_DB
    if "://" in value:
        return value
    return f"sqlite:///{Path(value).expanduser()}"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Store:
    """Trials, their versions and changes, in one SQLAlchemy database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str | None = None, create: bool = True) -> Store:
        url = database_url(url)
        shown = _mask(url)
        if url.startswith("sqlite:///") and not create:
            path = Path(url.removeprefix("sqlite:///"))
            if not path.exists():
                raise StoreError(f"no database at {path}: run `monitor load` first, or pass --db")
        try:
            if url.startswith("sqlite"):
                path = url.removeprefix("sqlite:///")
                if path and path != ":memory:":
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
                event.listen(engine, "connect", _sqlite_pragmas)
            else:
                engine = create_engine(url, pool_pre_ping=True)
            metadata.create_all(engine)
        except ImportError as exc:
            raise StoreError(
                f"cannot open the database {shown}: its driver is not installed ({exc.name}); "
                "for PostgreSQL install registry-monitor[postgres]"
            ) from exc
        except (SQLAlchemyError, OSError, ValueError) as exc:
            raise StoreError(f"cannot open the database {shown}: {_reason(exc)}") from exc
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    # --- reading ------------------------------------------------------------------

    def trial_keys(self) -> list[str]:
        with self._reading() as conn:
            return [row.key for row in conn.execute(select(trials.c.key).order_by(trials.c.key))]

    def has_trial(self, key: str) -> bool:
        with self._reading() as conn:
            return conn.execute(select(trials.c.key).where(trials.c.key == key)).first() is not None

    def latest_version(self, key: str) -> StoredVersion | None:
        with self._reading() as conn:
            row = conn.execute(
                select(versions).where(versions.c.trial_key == key).order_by(versions.c.number.desc()).limit(1)
            ).first()
            return self._version(conn, row, with_changes=False) if row else None

    def latest_head(self, key: str) -> VersionHead | None:
        """The latest version's number, hashes and date, without its record."""
        with self._reading() as conn:
            row = conn.execute(
                select(versions.c.number, versions.c.content_hash, versions.c.last_update_posted)
                .where(versions.c.trial_key == key)
                .order_by(versions.c.number.desc())
                .limit(1)
            ).first()
        return VersionHead(row.number, row.content_hash, row.last_update_posted) if row else None

    def raw_hashes(self) -> dict[str, tuple[str, int, str]]:
        """Raw-payload hash -> (trial key, version number, title), for every version."""
        query = select(versions.c.raw_hash, versions.c.trial_key, versions.c.number, trials.c.title).join(
            trials, trials.c.key == versions.c.trial_key
        )
        with self._reading() as conn:
            return {row.raw_hash: (row.trial_key, row.number, row.title) for row in conn.execute(query)}

    def known_hashes(self, key: str) -> dict[tuple[str, str | None], int]:
        """(content hash, last-update date) -> version number, for one trial."""
        with self._reading() as conn:
            rows = conn.execute(
                select(versions.c.number, versions.c.content_hash, versions.c.last_update_posted).where(
                    versions.c.trial_key == key
                )
            )
            return {(row.content_hash, row.last_update_posted): row.number for row in rows}

    def versions(self, key: str) -> list[StoredVersion]:
        """Every stored version of a trial, oldest first, with its changes."""
        with self._reading() as conn:
            rows = conn.execute(select(versions).where(versions.c.trial_key == key).order_by(versions.c.number)).all()
            if not rows:
                raise NotFoundError(f"{key} is not in the store: load or fetch it first (`monitor load PATH`)")
            return [self._version(conn, row, with_changes=True) for row in rows]

    def raw_payload(self, key: str, number: int) -> str:
        with self._reading() as conn:
            raw = conn.execute(
                select(versions.c.raw).where((versions.c.trial_key == key) & (versions.c.number == number))
            ).scalar()
        if raw is None:
            raise NotFoundError(f"{key} has no version {number}")
        return raw

    def counts(self) -> dict[str, int]:
        with self._reading() as conn:
            return {
                "trials": conn.execute(select(func.count()).select_from(trials)).scalar_one(),
                "versions": conn.execute(select(func.count()).select_from(versions)).scalar_one(),
                "changes": conn.execute(select(func.count()).select_from(changes)).scalar_one(),
            }

    def table_sizes(self) -> dict[str, int]:
        """Rows in every table (for benchmarks and `monitor status`)."""
        with self._reading() as conn:
            return {
                table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for table in metadata.sorted_tables
            }

    # --- writing ------------------------------------------------------------------

    def add_version(
        self,
        record: TrialRecord,
        raw: str,
        raw_hash: str,
        content_hash: str,
        source: str | None,
        loaded_at: datetime,
        found: list[Change],
        expected_number: int,
    ) -> int:
        """Store ``record`` as version ``expected_number`` of its trial with the
        changes found against the version before, all in one transaction.

        ``expected_number`` is the number the caller computed from the latest
        version it saw; if another writer got there first the transaction fails
        and nothing is written.
        """
        try:
            with self.engine.begin() as conn:
                if expected_number == 1:
                    conn.execute(
                        insert(trials).values(
                            key=record.key, nct_id=record.nct_id, title=record.title, first_seen=loaded_at
                        )
                    )
                else:
                    conn.execute(trials.update().where(trials.c.key == record.key).values(title=record.title))
                version_id = conn.execute(
                    insert(versions).values(
                        trial_key=record.key,
                        number=expected_number,
                        content_hash=content_hash,
                        record=record.to_dict(),
                        raw=raw,
                        raw_hash=raw_hash,
                        format=record.source,
                        source=source,
                        loaded_at=loaded_at,
                        last_update_posted=record.last_update_posted,
                    )
                ).inserted_primary_key[0]
                self._insert_changes(conn, version_id, record.key, loaded_at, found)
        except IntegrityError as exc:
            raise StoreError(
                f"{record.key}: another process stored a version at the same time; nothing was written, try again"
            ) from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"{record.key}: the database refused the write: {_reason(exc)}") from exc
        return expected_number

    def prepend_versions(self, key: str, older: list[tuple], first_changes: list[Change]) -> int:
        """Put ``older`` versions (``(record, raw, raw_hash, content_hash, source,
        loaded_at, changes)``, oldest first) before every stored version of
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
                for number, (record, raw, raw_hash, content_hash, source, loaded_at, found) in enumerate(older, 1):
                    version_id = conn.execute(
                        insert(versions).values(
                            trial_key=key,
                            number=number,
                            content_hash=content_hash,
                            record=record.to_dict(),
                            raw=raw,
                            raw_hash=raw_hash,
                            format=record.source,
                            source=source,
                            loaded_at=loaded_at,
                            last_update_posted=record.last_update_posted,
                        )
                    ).inserted_primary_key[0]
                    self._insert_changes(conn, version_id, key, loaded_at, found)
                if first is not None:
                    self._insert_changes(conn, first, key, older[-1][5], first_changes)
        except SQLAlchemyError as exc:
            raise StoreError(f"{key}: the database refused the backfill: {_reason(exc)}") from exc
        return shift

    def _insert_changes(self, conn, version_id: int | None, key: str, at: datetime, found: list[Change]) -> None:
        if found:
            conn.execute(
                insert(changes),
                [
                    {"version_id": version_id, "trial_key": key, "position": i, "detected_at": at, **_change_row(c)}
                    for i, c in enumerate(found)
                ],
            )

    # --- watches ---------------------------------------------------------------------

    def add_watch(self, kind: str, target: str, now: datetime) -> bool:
        """Start watching; False when it was watched already."""
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(watches).values(kind=kind, target=target, added_at=now))
        except IntegrityError:
            return False
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot save the watch {target}: {_reason(exc)}") from exc
        return True

    def remove_watch(self, kind: str, target: str) -> bool:
        with self.engine.begin() as conn:
            watch_id = conn.execute(
                select(watches.c.id).where((watches.c.kind == kind) & (watches.c.target == target))
            ).scalar()
            if watch_id is None:
                return False
            conn.execute(query_members.delete().where(query_members.c.watch_id == watch_id))
            conn.execute(watches.delete().where(watches.c.id == watch_id))
        return True

    def watches(self) -> list[Watch]:
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

    def watched_trials(self) -> list[str]:
        """Every trial watched by id or through a saved search."""
        with self._reading() as conn:
            direct = conn.execute(select(watches.c.target).where(watches.c.kind == "trial")).scalars().all()
            via = conn.execute(select(query_members.c.trial_key)).scalars().all()
        return sorted(set(direct) | set(via))

    def members(self, target: str) -> dict[str, tuple[str | None, str | None]] | None:
        """A saved search's current trials (key -> (title, status)); None before its first run."""
        with self._reading() as conn:
            watch_id = conn.execute(
                select(watches.c.id).where((watches.c.kind == "query") & (watches.c.target == target))
            ).scalar()
            if watch_id is None:
                raise NotFoundError(f"no saved search {target!r} is watched")
            if self.get_state(f"query.{watch_id}.baseline") is None:
                return None
            rows = conn.execute(select(query_members).where(query_members.c.watch_id == watch_id))
            return {r.trial_key: (r.title, r.status) for r in rows}

    def update_members(
        self,
        target: str,
        entered: list[tuple[str, str | None, str | None]],
        left: list[str],
        events: list[tuple[str, Change]],
        now: datetime,
    ) -> None:
        """Trials entering and leaving a saved search, with their events, in one transaction."""
        with self.engine.begin() as conn:
            watch_id = conn.execute(
                select(watches.c.id).where((watches.c.kind == "query") & (watches.c.target == target))
            ).scalar()
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
            for key, event in events:
                self._insert_changes(conn, None, key, now, [event])
            self._put_state(conn, f"query.{watch_id}.baseline", now.isoformat())

    def events(self, key: str) -> list[Change]:
        """Events of a trial that belong to no version (saved-search membership)."""
        with self._reading() as conn:
            rows = conn.execute(
                select(
                    changes.c.category,
                    changes.c.field,
                    changes.c.change,
                    changes.c.old,
                    changes.c.new,
                    changes.c.severity,
                    changes.c.summary,
                )
                .where((changes.c.trial_key == key) & changes.c.version_id.is_(None))
                .order_by(changes.c.id)
            )
            return [Change.from_dict(dict(r._mapping)) for r in rows]

    # --- per-trial and per-source state -------------------------------------------------

    def latest_updates(self) -> dict[str, str | None]:
        """Trial key -> the registry's last-update date we last saw: when we last
        fetched it, else that of its latest version."""
        seen = {key: head[2] for key, head in self._latest_heads().items()}
        with self._reading() as conn:
            rows = conn.execute(
                select(trial_state.c.trial_key, trial_state.c.seen_update).where(trial_state.c.seen_update.is_not(None))
            )
            seen.update({r.trial_key: r.seen_update for r in rows})
        return seen

    def mark_seen(self, key: str, last_update: str | None) -> None:
        self._upsert_trial_state(key, seen_update=last_update)

    def _latest_heads(self) -> dict[str, tuple[int, str, str | None]]:
        latest = (
            select(versions.c.trial_key, func.max(versions.c.number).label("number"))
            .group_by(versions.c.trial_key)
            .subquery()
        )
        query = select(
            versions.c.trial_key, versions.c.number, versions.c.content_hash, versions.c.last_update_posted
        ).join(latest, (versions.c.trial_key == latest.c.trial_key) & (versions.c.number == latest.c.number))
        with self._reading() as conn:
            return {r.trial_key: (r.number, r.content_hash, r.last_update_posted) for r in conn.execute(query)}

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

    def get_state(self, key: str) -> str | None:
        with self._reading() as conn:
            return conn.execute(select(source_state.c.value).where(source_state.c.key == key)).scalar()

    def set_state(self, key: str, value: str) -> None:
        with self.engine.begin() as conn:
            self._put_state(conn, key, value)

    def _put_state(self, conn, key: str, value: str) -> None:
        done = conn.execute(source_state.update().where(source_state.c.key == key).values(value=value))
        if done.rowcount == 0:
            conn.execute(insert(source_state).values(key=key, value=value))

    # --- helpers ------------------------------------------------------------------

    def _reading(self):
        try:
            return self.engine.connect()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read the database {_mask(str(self.engine.url))}: {_reason(exc)}") from exc

    def _version(self, conn, row, with_changes: bool) -> StoredVersion:
        found: tuple[Change, ...] = ()
        if with_changes:
            found = tuple(
                Change.from_dict(dict(r._mapping))
                for r in conn.execute(
                    select(
                        changes.c.category,
                        changes.c.field,
                        changes.c.change,
                        changes.c.old,
                        changes.c.new,
                        changes.c.severity,
                        changes.c.summary,
                    )
                    .where(changes.c.version_id == row.id)
                    .order_by(changes.c.position)
                )
            )
        record = row.record if isinstance(row.record, dict) else json.loads(row.record)
        return StoredVersion(
            trial_key=row.trial_key,
            number=row.number,
            record=TrialRecord.from_dict(record),
            content_hash=row.content_hash,
            source=row.source,
            loaded_at=row.loaded_at,
            last_update_posted=row.last_update_posted,
            changes=found,
        )


def _change_row(change: Change) -> dict:
    data = change.to_dict()
    return {k: data[k] for k in ("category", "field", "change", "old", "new", "severity", "summary")}


def _mask(url: str) -> str:
    """A database URL with its password hidden."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparseable URL is shown as the user wrote it, minus nothing secret
        return url.split("@")[-1]


def _reason(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__
