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
