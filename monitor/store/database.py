"""Opening a database: URLs, SQLite pragmas, and errors that hide passwords."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from monitor.errors import StoreError
from monitor.masking import mask_secrets
from monitor.store.migrate import prepare

DEFAULT_DB = "monitor.db"
BUSY_TIMEOUT_MS = 30_000


def database_url(value: str | None) -> str:
    """A SQLAlchemy URL from the database setting (``--db``, ``MONITOR_DB`` and the file are
    applied by :func:`monitor.config.load_settings`): a URL, or a file path taken as a SQLite file;
    ``monitor.db`` when none is given."""
    value = value or DEFAULT_DB
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


def _sqlite_reading(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


def _postgresql_reading(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    cursor.close()
    dbapi_connection.commit()


def _read_only_sqlite(path: Path) -> Engine:
    """A SQLite file opened for reading only: no journal change, no migration, no
    write.  A WAL file whose folder we cannot write (no ``-shm`` file to create)
    is opened as immutable: nobody can be writing it there without that file."""
    connect_args = {"timeout": BUSY_TIMEOUT_MS / 1000}
    for mode in ("mode=ro", "immutable=1"):
        engine = create_engine(f"sqlite:///file:{quote(str(path))}?{mode}&uri=true", connect_args=connect_args)
        event.listen(engine, "connect", _sqlite_reading)
        try:
            with engine.connect() as connection:
                connection.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar()
            return engine
        except SQLAlchemyError:
            engine.dispose()
            if mode == "immutable=1":
                raise
    raise AssertionError("unreachable")


def _unwritable(url: str) -> str | None:
    """Why a SQLite file cannot be written (None when it can, or is not a plain file path)."""
    if not url.startswith("sqlite:///") or "?" in url:
        return None
    path = Path(url.removeprefix("sqlite:///"))
    if path.exists() and not os.access(path, os.W_OK):
        return f"{path} is read-only"
    if path.parent.exists() and not os.access(path.parent, os.W_OK):
        return f"its folder {path.parent} is read-only"
    return None


def open_engine(url: str | None, create: bool | None, read_only: bool = False) -> Engine:
    """An engine for ``url`` with the schema in place; a clear error otherwise.
    ``read_only``: for commands that only read; the database is opened for
    reading only (a read-only file or folder serves them) and never migrated."""
    url = database_url(url)
    shown = mask(url)
    if url.startswith("sqlite:///") and not create:
        path = Path(url.removeprefix("sqlite:///"))
        if not path.exists():
            raise StoreError(f"no database at {path}: run `monitor load` first, or pass --db")
    try:
        if read_only and url.startswith("sqlite:///") and "?" not in url:
            engine = _read_only_sqlite(Path(url.removeprefix("sqlite:///")))
        elif url.startswith("sqlite"):
            path = url.removeprefix("sqlite:///")
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url)
            if read_only:
                event.listen(engine, "connect", _postgresql_reading)
        if create is not None:  # None: the caller migrates (`monitor db upgrade`)
            prepare(engine, create, shown)
    except ImportError as exc:
        raise StoreError(
            f"cannot open the database {shown}: its driver is not installed ({exc.name}); "
            "for PostgreSQL install registry-monitor[postgres]"
        ) from exc
    except (SQLAlchemyError, OSError, ValueError) as exc:
        why = None if read_only else _unwritable(url)
        if why:
            raise StoreError(
                f"cannot write the database {shown}: {why} ({reason(exc)}); "
                "commands that only read (history, show, diff, status, watch list, deliveries) still work"
            ) from exc
        raise StoreError(f"cannot open the database {shown}: {reason(exc)}") from exc
    return engine


class Database:
    """The engine, and connections that fail with a clear error."""

    def __init__(self, engine: Engine, keep_raw_versions: int = 0) -> None:
        self.engine = engine
        # Retention: keep the raw payloads of each trial's newest N versions only (0: all);
        # records and changes are always kept (monitor.store.versions).
        self.keep_raw_versions = keep_raw_versions

    def close(self) -> None:
        self.engine.dispose()

    def fresh_connections(self) -> None:
        """Start a batch of work (a cycle) on new server connections.  Pinging the
        server at every checkout cost four round trips per stored trial; instead a
        connection left idle between cycles (a restarted or timed-out server) is
        dropped here, once per cycle.  SQLite files have no server: nothing to do."""
        if self.engine.dialect.name != "sqlite":
            self.engine.dispose()

    def _reading(self):
        try:
            return self.engine.connect()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read the database {mask(str(self.engine.url))}: {reason(exc)}") from exc


class Concern:
    """One concern of the store (versions, watches, deliveries, ...): it holds the shared
    :class:`Database` rather than inheriting it, so every concern reads and writes the
    same engine, and a write that spans concerns takes the other concern's helpers with
    the open connection (one transaction)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @property
    def engine(self) -> Engine:
        return self.db.engine

    @property
    def keep_raw_versions(self) -> int:
        return self.db.keep_raw_versions

    def _reading(self):
        return self.db._reading()


def mask(url: str) -> str:
    """A database URL with its password hidden (:func:`monitor.masking.mask_secrets`)."""
    return mask_secrets(url)


def reason(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__
