"""The version store: one transaction per version, safe to share, nothing half-written."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from monitor.clock import utc_now
from monitor.errors import StoreError
from monitor.pipeline import as_new_version, ingest, load
from monitor.sources.files import read_snapshots
from monitor.store import Store, database_url

from conftest import OPENING


@pytest.fixture
def store(store_url):
    store = Store.open(store_url)
    yield store
    store.close()


def test_a_plain_path_is_a_sqlite_file_and_urls_pass_through(tmp_path, monkeypatch):
    monkeypatch.delenv("MONITOR_DB", raising=False)
    assert database_url(str(tmp_path / "x.db")) == f"sqlite:///{tmp_path}/x.db"
    assert database_url("postgresql://u:p@h/db") == "postgresql://u:p@h/db"
    monkeypatch.setenv("MONITOR_DB", "sqlite:////tmp/env.db")
    assert database_url(None) == f"sqlite:///{Path('monitor.db')}", "the environment is read by the settings only"


def test_sqlite_files_use_wal_and_a_busy_timeout(db_path):
    store = Store.open(str(db_path))
    load(store, [OPENING / "2026-02-10.json"])
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000


def test_a_version_and_its_changes_land_together_or_not_at_all(store, monkeypatch):
    load(store, [OPENING / "2026-02-10.json"])
    before = store.versions.counts()
    from monitor.store import versions as store_module

    real_change_row = store_module._change_row
    calls = {"n": 0}

    def failing_change_row(change):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk on fire")
        return real_change_row(change)

    monkeypatch.setattr(store_module, "_change_row", failing_change_row)
    (snapshot,) = read_snapshots(OPENING / "2026-03-10.json")
    with pytest.raises(RuntimeError):
        ingest(store, snapshot)
    assert store.versions.counts() == before
    assert store.versions.latest_version("NCT06821503").number == 1


def test_a_second_writer_with_a_stale_view_writes_nothing(store, store_url):
    load(store, [OPENING / "2026-02-10.json"])
    (snapshot,) = read_snapshots(OPENING / "2026-03-10.json")
    other = Store.open(store_url)
    other.versions.add_version(as_new_version(snapshot, "h", utc_now()), 2)
    before = store.versions.counts()
    with pytest.raises(StoreError, match="another process stored a version at the same time"):
        store.versions.add_version(as_new_version(snapshot, "h2", utc_now()), 2)
    assert store.versions.counts() == before
    other.close()


def test_two_writers_storing_the_same_version_at_once_store_it_once_and_neither_fails(store, store_url):
    """Two `monitor fetch` of the same trials at once: the loser's insert breaks the
    (trial, number) constraint, but what it meant to store is there, whole: not a problem
    (it was 300 errors in `monitor status` and 600 lines on stderr for a fetch of 300)."""
    (snapshot,) = read_snapshots(OPENING / "2026-02-10.json")
    other = Store.open(store_url)
    other.versions.add_version(as_new_version(snapshot, "h", utc_now()), 1, ["team"])
    before = store.versions.counts()
    assert store.versions.add_version(as_new_version(snapshot, "h", utc_now()), 1, ["team"]) == 1
    assert store.versions.counts() == before, "nothing doubled: one version, its changes and deliveries once"
    other.close()


def test_stored_versions_keep_record_raw_payload_hash_and_dates(store):
    load(store, [OPENING])
    (first, second) = store.versions.history("NCT06821503")
    assert second.record.overall_status == "RECRUITING"
    assert second.last_update_posted == "2026-03-10"
    assert len(second.content_hash) == 64 and second.content_hash != first.content_hash
    assert '"nctId": "NCT06821503"' in store.versions.raw_payload("NCT06821503", 2)
    assert second.changes[0].summary == "Overall status NOT_YET_RECRUITING -> RECRUITING"


def test_a_database_whose_driver_is_missing_is_a_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_psycopg(name, *args, **kwargs):
        if name.startswith("psycopg"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_psycopg)
    with pytest.raises(StoreError, match=r"its driver is not installed \(psycopg\); for PostgreSQL install") as raised:
        Store.open("postgresql+psycopg://user:secret@127.0.0.1:1/db")
    assert "secret" not in raised.value.message, "passwords are never shown"
