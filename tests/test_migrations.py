"""Schema migrations: the migration chain builds exactly the schema the code
declares, on SQLite and PostgreSQL; an old or unversioned database is refused
with what to do."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from monitor.errors import StoreError
from monitor.store import Store
from monitor.store.migrate import head_revision, upgrade
from monitor.store.schema import metadata


def test_the_migrations_build_the_declared_schema(store_url):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = create_engine(store_url)
    assert upgrade(engine) == (None, head_revision())
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert differences == []
    engine.dispose()


def test_a_new_database_is_stamped_at_the_head_and_db_upgrade_has_nothing_to_do(store_url, cli):
    Store.open(store_url).close()
    engine = create_engine(store_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head_revision()
    engine.dispose()
    run = cli("--db", store_url, "db", "upgrade")
    assert (run.code, run.out) == (0, f"already at revision {head_revision()}\n")


def test_a_database_at_another_revision_is_refused_until_upgraded(store_url):
    Store.open(store_url).close()
    engine = create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0000'"))
    engine.dispose()
    with pytest.raises(
        StoreError, match=rf"is at schema revision 0000, this monitor needs {head_revision()}: run `monitor db upgrade`"
    ):
        Store.open(store_url)


def test_a_database_without_a_schema_version_is_refused(store_url):
    Store.open(store_url).close()
    engine = create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
    engine.dispose()
    with pytest.raises(StoreError, match="has tables but no schema version"):
        Store.open(store_url)


def test_a_database_at_0001_keeps_its_pending_deliveries_and_gains_leases(store_url):
    from datetime import UTC, datetime

    from alembic import command

    from monitor.store.migrate import _config

    engine = create_engine(store_url)
    at = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)
    with engine.begin() as conn:
        command.upgrade(_config(conn), "0001")
        conn.execute(
            text(
                "INSERT INTO deliveries (route, event, trial_key, created_at, status, attempts, next_attempt_at) "
                "VALUES ('team', 'v:1', 'NCT06302556', :at, 'pending', 0, :at)"
            ),
            {"at": at},
        )
    assert upgrade(engine) == ("0001", head_revision())
    store = Store(engine)
    (row,) = store.deliveries.recent("pending")
    assert (row.route, row.lease_owner, row.lease_until) == ("team", None, None)
    assert store.deliveries.claim([row.id], "me", at, at.replace(hour=8)) == [row.id]
    engine.dispose()


def _versions_at_0005(engine, snapshots) -> None:
    """A database built by the schema before packed versions (0005): the record as JSON, the raw text."""
    from datetime import UTC, datetime

    import sqlalchemy as sa
    from alembic import command
    from sqlalchemy.dialects.postgresql import JSONB

    from monitor.store.migrate import _config

    old_versions = sa.table(
        "versions",
        *map(sa.column, ("trial_key", "number", "content_hash", "raw_hash", "format", "source", "loaded_at")),
        sa.column("record", sa.JSON().with_variant(JSONB(), "postgresql")),
        sa.column("raw", sa.Text()),
        sa.column("last_update_posted", sa.String()),
    )
    at = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)
    with engine.begin() as conn:
        command.upgrade(_config(conn), "0005")
        conn.execute(
            text("INSERT INTO trials (key, nct_id, title, first_seen) VALUES ('NCT06821503', 'NCT06821503', 't', :at)"),
            {"at": at},
        )
        for number, snap in enumerate(snapshots, 1):
            conn.execute(
                old_versions.insert().values(
                    trial_key="NCT06821503",
                    number=number,
                    content_hash=f"c{number}",
                    raw_hash=snap.raw_hash,
                    format=snap.record.source,
                    source=snap.origin,
                    loaded_at=at,
                    record=snap.record.to_dict(),
                    raw=snap.raw,
                    last_update_posted=snap.record.last_update_posted,
                )
            )


def test_versions_stored_before_packing_read_back_the_same_after_db_upgrade(store_url):
    from monitor.sources.files import read_snapshots

    from conftest import OPENING

    snapshots = [s for path in sorted(OPENING.glob("*.json")) for s in read_snapshots(path)]
    engine = create_engine(store_url)
    _versions_at_0005(engine, snapshots)
    assert upgrade(engine) == ("0005", head_revision())
    store = Store(engine)
    stored = store.versions.history("NCT06821503")
    assert [v.record for v in stored] == [s.record for s in snapshots]
    assert [store.versions.raw_payload("NCT06821503", v.number) for v in stored] == [s.raw for s in snapshots]
    with engine.connect() as conn:  # rewritten packed: no text left in the rows
        (raw,) = conn.execute(text("SELECT raw FROM versions WHERE number = 1")).one()
    assert bytes(raw)[:5] == b"1\x28\xb5\x2f\xfd"  # a zstandard frame, with raw dictionary 1
    engine.dispose()


def test_packed_versions_migrate_back_to_text_and_json(store_url):
    from alembic import command

    from monitor.sources.files import read_snapshots
    from monitor.store.migrate import _config

    from conftest import OPENING

    snapshots = [s for path in sorted(OPENING.glob("*.json")) for s in read_snapshots(path)]
    engine = create_engine(store_url)
    _versions_at_0005(engine, snapshots)
    upgrade(engine)
    with engine.begin() as conn:
        command.downgrade(_config(conn), "0005")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT raw FROM versions ORDER BY number")).scalars().all()
    assert rows == [s.raw for s in snapshots]


def test_a_database_at_0006_gains_the_heads_table_filled_from_its_versions(store_url):
    from monitor.pipeline import load

    from conftest import OPENING, UNKNOWN

    source = Store.open(store_url)
    load(source, [OPENING, UNKNOWN])
    expected = source.versions.latest_heads()
    assert {key: head.number for key, head in expected.items()} == {"NCT06302556": 2, "NCT06821503": 2}
    source.close()
    engine = create_engine(store_url)
    with engine.begin() as conn:  # the same data as a database made before the heads table existed
        conn.execute(text("DROP TABLE trial_heads"))
        _before_0009(conn)
        conn.execute(text("UPDATE alembic_version SET version_num = '0006'"))
    assert upgrade(engine) == ("0006", head_revision())
    store = Store(engine)
    assert store.versions.latest_heads() == expected
    assert store.versions.latest_head("NCT06821503") == expected["NCT06821503"]
    engine.dispose()


def test_a_database_at_0007_gains_each_heads_latest_raw_hash(store_url):
    from monitor.pipeline import load

    from conftest import OPENING, UNKNOWN

    source = Store.open(store_url)
    load(source, [OPENING, UNKNOWN])
    expected = source.versions.latest_heads()
    source.close()
    engine = create_engine(store_url)
    with engine.begin() as conn:  # the same data as a database made before heads kept the raw hash
        latest = dict(
            conn.execute(
                text(
                    "SELECT v.trial_key, v.raw_hash FROM versions v JOIN trial_heads h "
                    "ON h.trial_key = v.trial_key AND h.number = v.number"
                )
            ).all()
        )
        conn.execute(text("ALTER TABLE trial_heads DROP COLUMN raw_hash"))
        _before_0009(conn)
        conn.execute(text("UPDATE alembic_version SET version_num = '0007'"))
    assert {key: head.raw_hash for key, head in expected.items()} == latest
    assert upgrade(engine) == ("0007", head_revision())
    store = Store(engine)
    assert store.versions.latest_heads() == expected, "every head's raw hash is its latest version's"
    assert store.versions.latest_raw_hash("NCT06821503") == (2, latest["NCT06821503"])
    engine.dispose()


def _before_0009(conn) -> None:
    """The expected-event state as it was before each trial's next turning day (0009)."""
    conn.execute(text("DROP INDEX ix_expected_seen_due"))
    conn.execute(text("ALTER TABLE expected_seen DROP COLUMN due"))


def test_a_database_at_0008_evaluates_its_trials_once_then_only_those_due(store_url):
    from datetime import UTC, datetime

    from monitor.expected_events import record_expected
    from monitor.pipeline import load

    from conftest import OPENING, UNKNOWN

    source = Store.open(store_url)
    load(source, [OPENING, UNKNOWN])
    source.close()
    engine = create_engine(store_url)
    at = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)
    with engine.begin() as conn:  # trials the rules evaluated before the turning day was kept
        _before_0009(conn)
        conn.execute(text("INSERT INTO expected_seen (trial_key, since) VALUES ('NCT06302556', :at)"), {"at": at})
        conn.execute(text("UPDATE alembic_version SET version_num = '0008'"))
    assert upgrade(engine) == ("0008", head_revision())
    store = Store(engine)
    assert store.expected.due_keys(at.date()) == {"NCT06302556"}, "a day not known yet is due"
    record_expected(store, ["NCT06302556"], at)
    assert store.expected.due_keys(at.date()) == set(), "evaluated once: its next day is known"
    engine.dispose()


def test_db_upgrade_from_0005_keeps_the_changes_that_point_at_versions(tmp_path, cli):
    """Batch mode copies `versions` while `changes` points at it: with SQLite's foreign keys on (as
    the store opens every file) the copy used to fail half-way ("FOREIGN KEY constraint failed")."""
    from monitor.sources.files import read_snapshots
    from monitor.store.database import open_engine

    from conftest import OPENING

    snapshots = [s for path in sorted(OPENING.glob("*.json")) for s in read_snapshots(path)]
    db = tmp_path / "old.db"
    db.touch()
    engine = open_engine(str(db), create=None)  # the store's own engine: foreign keys on
    _versions_at_0005(engine, snapshots)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO changes (version_id, trial_key, detected_at, position, category, field, change, "
                "severity, summary) SELECT id, trial_key, loaded_at, 0, 'status', 'overall_status', 'modified', "
                "'major', 'Overall status NOT_YET_RECRUITING -> RECRUITING' FROM versions WHERE number = 2"
            )
        )
    engine.dispose()
    run = cli("--db", db, "db", "upgrade")
    assert (run.code, run.err) == (0, ""), run.err
    assert run.out == f"schema revision 0005 -> {head_revision()}\n"
    history = cli("--db", db, "history", "NCT06821503")
    assert history.code == 0 and "Overall status NOT_YET_RECRUITING -> RECRUITING" in history.out
    with create_engine(f"sqlite:///{db}").connect() as conn:
        assert conn.execute(text("PRAGMA foreign_key_check")).all() == []


def _dump(db) -> list[str]:
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(db)) as conn:
        return list(conn.iterdump())


def test_a_sqlite_upgrade_that_fails_part_way_leaves_the_database_as_it_was(tmp_path):
    """SQLite runs DDL outside the transaction (each statement commits): a failure half-way through a
    migration (a full disk, a killed copy) used to leave half a schema behind."""
    from sqlalchemy import event

    from monitor.sources.files import read_snapshots
    from monitor.store.database import open_engine

    from conftest import OPENING

    snapshots = [s for path in sorted(OPENING.glob("*.json")) for s in read_snapshots(path)]
    db = tmp_path / "old.db"
    db.touch()
    engine = open_engine(str(db), create=None)
    _versions_at_0005(engine, snapshots)
    engine.dispose()
    before = _dump(db)
    engine = open_engine(str(db), create=None)

    @event.listens_for(engine, "before_cursor_execute")
    def disk_full(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("DROP TABLE"):  # batch mode has made and filled its copy
            raise OSError("database or disk is full")

    with pytest.raises(StoreError) as failed:
        upgrade(engine)
    engine.dispose()
    assert "database or disk is full" in failed.value.message and "as it was" in failed.value.message
    assert _dump(db) == before
    assert list(tmp_path.iterdir()) == [db], "no copy left behind"
