"""A newcomer's first steps: `monitor diff` right after the first `load`, and a
database the user can only read."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from conftest import NOISE, OPENING, ROOT, SEEDS, monitor_process

ONE_VERSION = (
    "NCT06518668 has one stored version (2025-07-25, {source}): nothing to compare yet. "
    "`monitor backfill NCT06518668` brings its past versions; "
    "`monitor diff NCT06518668 --live` compares with the registry now.\n"
)


def test_diff_of_a_trial_with_one_stored_version_says_what_to_do_next(monitor):
    assert monitor("load", SEEDS).code == 0
    run = monitor("diff", "NCT06518668")
    assert (run.code, run.err) == (0, "")
    assert run.out == ONE_VERSION.format(source=f"{SEEDS}/000_89b1b94dc6394612.txt")
    assert monitor("diff", "NCT06518668", "--exit-code").code == 0


def test_diff_of_a_trial_with_one_stored_version_in_json_has_no_old_side(monitor):
    assert monitor("load", OPENING / "2026-02-10.json", OPENING / "2026-03-10.json").code == 0
    two = json.loads(monitor("diff", "NCT06821503", "--format", "json").out)
    assert monitor("load", SEEDS).code == 0
    run = monitor("diff", "NCT06518668", "--format", "json")
    assert run.code == 0
    one = json.loads(run.out)
    assert list(one) == list(two) == ["trial", "old", "new", "changes"]
    assert one["trial"] == "NCT06518668" and one["old"] is None and one["changes"] == []
    assert list(one["new"]) == list(two["new"])  # version, date, source, record: the shape of a two-version diff
    assert (one["new"]["version"], one["new"]["date"]) == (1, "2025-07-25")
    assert one["new"]["record"]["nct_id"] == "NCT06518668"


def test_diff_after_later_snapshots_that_were_noise_only_is_the_same(monitor):
    assert monitor("load", NOISE).code == 0  # two downloads differing only in versionHolder
    run = monitor("diff", "NCT06387628")
    assert run.code == 0
    assert run.out.startswith("NCT06387628 has one stored version (2024-08-02, ")
    assert run.out.endswith("`monitor diff NCT06387628 --live` compares with the registry now.\n")


def test_diff_after_a_later_version_that_changed_nothing_reported_is_the_same(monitor, db_path):
    """A `refreshed` version: stored, with no change to report (what one format does not show)."""
    from datetime import UTC, datetime

    from monitor.pipeline import as_new_version, read_single
    from monitor.store import Store

    snapshot = read_single(OPENING / "2026-02-10.json")
    assert monitor("load", OPENING / "2026-02-10.json").code == 0
    store = Store.open(str(db_path))
    store.versions.add_version(as_new_version(snapshot, "0" * 64, datetime.now(UTC), ()), 2, [])
    store.close()
    run = monitor("diff", "NCT06821503")
    assert run.code == 0
    assert run.out.startswith("NCT06821503 has one stored version (")
    assert "and 1 later one that changed nothing: nothing to compare yet." in run.out
    assert json.loads(monitor("diff", "NCT06821503", "--format", "json").out)["new"]["version"] == 2


def test_diff_of_a_trial_with_two_versions_still_compares_them(monitor):
    assert monitor("load", OPENING).code == 0
    run = monitor("diff", "NCT06821503")
    assert run.code == 0 and "v1 (" in run.out and " -> v2 (" in run.out


# --- a database the user can only read -------------------------------------------

READS = [
    ("history", "NCT06821503"),
    ("show", "NCT06821503"),
    ("diff", "NCT06821503"),
    ("diff", "NCT06821503", "--from", "1", "--to", "2", "--format", "json"),
    ("diff", str(OPENING / "2026-03-10.json")),
    ("status",),
    ("watch", "list"),
    ("deliveries",),
]


@pytest.fixture
def read_only_db(tmp_path, cli):
    """A database in a folder nobody can write, root included: the folder and the
    file are made immutable (chattr +i), as chmod does not stop root.  Also the
    outputs of the read commands on a writable copy, to compare with."""
    folder, copy = tmp_path / "ro", tmp_path / "rw"
    folder.mkdir()
    copy.mkdir()
    db = folder / "monitor.db"
    made = monitor_process("--db", db, "load", OPENING, cwd=ROOT)  # a process of its own: closed cleanly
    assert made.returncode == 0, made.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["monitor.db"]
    shutil.copy(db, copy / "monitor.db")
    writable = {}
    for args in READS:
        run = cli("--db", copy / "monitor.db", *args)
        writable[args] = run.out.replace(str(copy), str(folder))
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    made = subprocess.run(["chattr", "+i", str(db), str(folder)], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot make files immutable here: {made.stderr.strip()}")
    try:
        yield db, writable
    finally:
        subprocess.run(["chattr", "-i", str(db), str(folder)], check=False)


def test_the_database_is_really_read_only(read_only_db):
    db, _ = read_only_db
    with pytest.raises(PermissionError):
        (db.parent / "probe").write_text("x")
    with pytest.raises(PermissionError):
        db.open("ab").close()


@pytest.mark.parametrize("args", READS, ids=[" ".join(a[:2]) for a in READS])
def test_a_read_only_database_serves_every_read_command(read_only_db, cli, args):
    db, writable = read_only_db
    before = db.read_bytes()
    run = cli("--db", db, *args)
    assert (run.code, run.err) == (0, ""), run.err
    assert run.out == writable[args]
    assert db.read_bytes() == before
    assert sorted(p.name for p in db.parent.iterdir()) == ["monitor.db"]


def test_writing_to_a_read_only_database_is_one_clear_error(read_only_db, cli):
    db, _ = read_only_db
    before = db.read_bytes()
    run = cli("--db", db, "load", SEEDS)
    assert run.code == 2
    assert run.err.startswith(f"error: cannot write the database sqlite:///{db}: {db} is read-only (")
    assert run.err.endswith(
        "commands that only read (history, show, diff, status, watch list, deliveries) still work\n"
    )
    assert run.err.count("\n") == 1
    assert db.read_bytes() == before


def test_read_commands_never_migrate_or_write(tmp_path, cli):
    """Opened read-only, a database of another schema revision is refused, not migrated."""
    db = tmp_path / "monitor.db"
    assert cli("--db", db, "load", OPENING).code == 0
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'older'")
    run = cli("--db", db, "history", "NCT06821503")
    assert run.code == 2 and "is at schema revision older" in run.err
    assert f"the database sqlite:///{db} is" in run.err  # as the user named it, not the read-only file: URL
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == ("older",)


def test_a_store_opened_read_only_reads_and_refuses_writes_on_every_database(store_url):
    from sqlalchemy import text

    from monitor.pipeline import load
    from monitor.store import Store

    writer = Store.open(store_url)
    load(writer, [OPENING / "2026-02-10.json", OPENING / "2026-03-10.json"])
    writer.close()
    reader = Store.open(store_url, read_only=True)
    try:
        assert [v.number for v in reader.versions.history("NCT06821503")] == [1, 2]
        with pytest.raises(Exception, match=r"(?i)read-only|readonly|query_only"), reader.engine.begin() as conn:
            conn.execute(text("DELETE FROM changes"))
        assert len(reader.versions.history("NCT06821503")[1].changes) > 0
    finally:
        reader.close()
