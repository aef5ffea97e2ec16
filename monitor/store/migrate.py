"""Schema migrations (Alembic, SQLite in batch mode).

A new database gets the current schema and is stamped with the head revision.
An existing one must be at the head revision: when it is older, `monitor db
upgrade` brings it there; nothing migrates behind the user's back.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.engine import Connection, Engine

from monitor.errors import StoreError
from monitor.masking import mask_secrets
from monitor.store.schema import metadata


def _config(connection: Connection):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "monitor:migrations")
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", "monitor:migrations")
    return ScriptDirectory.from_config(config).get_current_head()


def current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def prepare(engine: Engine, create: bool = True, shown: str | None = None) -> None:
    """Create the schema of a new database (when ``create``); check that of an existing one.
    ``shown``: the database as the user named it (not a read-only engine's ``file:...?mode=ro`` URL)."""
    shown = shown or mask_secrets(str(engine.url))
    with engine.begin() as connection:
        tables = set(inspect(connection).get_table_names()) - {"alembic_version"}
        revision = current_revision(connection)
        if not tables:
            if not create:
                raise StoreError(f"the database {shown} is empty: load or fetch trials first")
            from alembic import command

            metadata.create_all(connection)
            command.stamp(_config(connection), "head")
            return
    head = head_revision()
    if revision is None:
        raise StoreError(
            f"the database {shown} has tables but no schema version (made by a development build): "
            "move it aside and load or fetch again"
        )
    if revision != head:
        raise StoreError(
            f"the database {shown} is at schema revision {revision}, this monitor needs {head}: "
            "run `monitor db upgrade` (back the database up first)"
        )


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the schema to the head revision; (from, to).  A SQLite file is copied first (the
    backup API, beside it) and put back if anything fails: SQLite commits each DDL statement
    on its own, so a migration that stops half-way would otherwise leave half a schema."""
    path = _sqlite_file(engine)
    if path is None:
        return _upgrade(engine)
    copy = path.with_name(path.name + ".before-upgrade")
    _copy(path, copy)
    try:
        try:
            return _upgrade(engine)
        except BaseException as exc:
            engine.dispose()
            _copy(copy, path)
            if not isinstance(exc, Exception):
                raise
            said = exc.message if isinstance(exc, StoreError) else f"{type(exc).__name__}: {exc}"
            said = said.splitlines()[0] if said else type(exc).__name__
            raise StoreError(f"the upgrade failed ({said}); the database is as it was before it") from exc
    finally:
        copy.unlink(missing_ok=True)


def _sqlite_file(engine: Engine) -> Path | None:
    """The SQLite file of ``engine``, when it is a plain file (not memory, not a URI)."""
    name = engine.url.database
    if engine.dialect.name != "sqlite" or not name or name == ":memory:" or name.startswith("file:"):
        return None
    path = Path(name)
    return path if path.is_file() else None


def _copy(source: Path, target: Path) -> None:
    """``source`` copied over ``target`` page by page (sqlite3's backup API: consistent, WAL included)."""
    with closing(sqlite3.connect(source)) as reading, closing(sqlite3.connect(target)) as writing:
        reading.backup(writing)


def _upgrade(engine: Engine) -> tuple[str | None, str]:
    from alembic import command

    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:  # batch mode copies a table others point at: keys are checked once the copy is done
            _foreign_keys(connection, "OFF")
        try:
            with connection.begin():
                before = current_revision(connection)
                if before is None and set(inspect(connection).get_table_names()) - {"alembic_version"}:
                    raise StoreError("the database has tables but no schema version: it cannot be upgraded in place")
                command.upgrade(_config(connection), "head")
                if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                    raise StoreError("the upgraded database has rows pointing at missing rows: restore the backup")
                return before, current_revision(connection)
        finally:
            if sqlite:
                _foreign_keys(connection, "ON")


def _foreign_keys(connection: Connection, state: str) -> None:
    """SQLite's foreign keys on or off (a no-op inside a transaction: this runs between them)."""
    connection.exec_driver_sql(f"PRAGMA foreign_keys={state}")
    connection.commit()
