"""Small storage: versions packed in the database, the raw payload kept once (the
snapshot archive is opt-in), and raw-payload retention that keeps every record and
change forever."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from monitor.errors import NotFoundError
from monitor.pipeline import load
from monitor.sources.files import read_snapshots
from monitor.store import Store
from monitor.store.schema import versions

from conftest import OPENING

FILES = [OPENING / "2026-02-10.json", OPENING / "2026-03-10.json"]
KEY = "NCT06821503"


def stored_rows(store):
    with store.engine.connect() as conn:
        return conn.execute(select(versions.c.number, versions.c.record, versions.c.raw).order_by("number")).all()


def test_a_version_is_stored_compressed_and_reads_back_exactly(store_url):
    snapshots = [s for path in FILES for s in read_snapshots(path)]
    store = Store.open(store_url)
    load(store, FILES)
    assert [v.record for v in store.versions.history(KEY)] == [s.record for s in snapshots]
    assert [store.versions.raw_payload(KEY, n) for n in (1, 2)] == [s.raw for s in snapshots]
    for row, snap in zip(stored_rows(store), snapshots, strict=True):
        assert len(row.raw) < len(snap.raw.encode()) / 3
        assert len(row.record) < len(snap.raw.encode()) / 10, "the record packs against its own raw payload"
    store.close()


def test_retention_drops_old_raw_payloads_and_keeps_every_record_and_change(store_url):
    store = Store.open(store_url)
    load(store, FILES)
    kept = store.versions.history(KEY)
    assert store.versions.drop_old_raw_payloads(1) == 1
    now = store.versions.history(KEY)
    assert [(v.number, v.record, v.changes, v.content_hash) for v in now] == [
        (v.number, v.record, v.changes, v.content_hash) for v in kept
    ]
    assert now[1].changes, "the second version's changes are still there"
    assert [row.raw is None for row in stored_rows(store)] == [True, False]
    with pytest.raises(NotFoundError, match=r"NCT06821503 version 1: its raw payload was dropped by `storage\."):
        store.versions.raw_payload(KEY, 1)
    assert store.versions.raw_payload(KEY, 2) == read_snapshots(FILES[1])[0].raw
    store.close()


def test_a_store_with_retention_drops_the_raw_payload_a_new_version_supersedes(store_url):
    store = Store.open(store_url, keep_raw_versions=1)
    load(store, FILES[:1])
    assert [row.raw is None for row in stored_rows(store)] == [False]
    load(store, FILES[1:])
    assert [row.raw is None for row in stored_rows(store)] == [True, False]
    assert [v.record for v in store.versions.history(KEY)] == [s.record for path in FILES for s in read_snapshots(path)]
    store.close()


def test_db_prune_drops_old_raw_payloads_and_the_history_reads_the_same(monitor, db_path):
    assert monitor("load", *FILES).code == 0
    before = [monitor("diff", KEY, "--format", "json").out, monitor("history", KEY).out]
    run = monitor("db", "prune", "--keep", "1")
    assert (run.code, run.out) == (
        0,
        "dropped the raw payloads of 1 older version(s), keeping the newest 1 per trial; "
        "every record and change is kept\n",
    )
    assert [monitor("diff", KEY, "--format", "json").out, monitor("history", KEY).out] == before
    assert monitor("db", "prune", "--keep", "1").out.startswith("dropped the raw payloads of 0 older")
    assert monitor("load", *FILES).out == monitor("load", *FILES).out  # still recognised: nothing stored twice
    assert len(Store.open(str(db_path)).versions.history(KEY)) == 2


def test_db_prune_takes_the_configured_retention_and_refuses_without_one(monitor, tmp_path):
    assert monitor("load", *FILES).code == 0
    run = monitor("db", "prune")
    assert run.code == 2
    assert run.err == (
        "error: storage.keep_raw_versions is 0 (every raw payload is kept): "
        "set it in the configuration or give --keep N\n"
    )
    config = tmp_path / "retention.yaml"
    config.write_text("storage:\n  keep_raw_versions: 1\n")
    assert monitor("--config", config, "db", "prune").out.startswith("dropped the raw payloads of 1 older version(s)")


@pytest.mark.parametrize(
    ("setting", "problem"),
    [
        ("keep_raw_versions: -1", "storage.keep_raw_versions"),
        ("keep_raw_versions: two", "storage.keep_raw_versions"),
        ("archive: maybe", "storage.archive"),
        ("archives: true", "archives: is not a setting here"),
    ],
)
def test_a_wrong_storage_setting_is_refused_by_name(monitor, tmp_path, setting, problem):
    config = tmp_path / "bad.yaml"
    config.write_text(f"storage:\n  {setting}\n")
    run = monitor("--config", config, "db", "prune")
    assert run.code == 2
    assert problem in run.err


def test_fetch_keeps_the_raw_payload_once_unless_the_archive_is_asked_for(monitor, server, tmp_path):
    archive = tmp_path / "archive"
    base = ("--ctgov-url", server.url, "--rate", "0", "--snapshots", archive)
    assert monitor(*base, "fetch", KEY).code == 0
    assert not archive.exists()
    config = tmp_path / "archive-on.yaml"
    config.write_text("storage:\n  archive: true\n")
    assert monitor("--config", config, *base, "fetch", "NCT06302556").code == 0
    assert [p.parent.name for p in archive.rglob("*.json.gz")] == ["NCT06302556"]


def test_db_export_writes_the_archive_that_load_reads_back(monitor, cli, db_path, tmp_path):
    assert monitor("load", *FILES).code == 0
    archive = tmp_path / "export"
    run = monitor("db", "export", "--to", archive)
    assert (run.code, run.out) == (0, f"2 raw payload(s) in {archive}, 2 written now\n")
    assert monitor("db", "export", "--to", archive).out == f"2 raw payload(s) in {archive}, 0 written now\n"
    other = tmp_path / "other.db"
    assert cli("--db", other, "load", archive).code == 0
    exported, stored = Store.open(str(other)).versions.history(KEY), Store.open(str(db_path)).versions.history(KEY)
    assert [(v.record, [c.summary for c in v.changes]) for v in exported] == [
        (v.record, [c.summary for c in v.changes]) for v in stored
    ]


def test_db_export_into_an_unwritable_folder_says_so(monitor, tmp_path):
    assert monitor("load", *FILES).code == 0
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the folder should be")
    run = monitor("db", "export", "--to", blocked)
    assert run.code == 2
    assert run.err.startswith(f"error: cannot write the snapshot archive at {blocked}/NCT06821503/")
    assert run.err.endswith("; 0 payload(s) written before it (make it writable, or --to DIR)\n")


def test_db_export_into_a_folder_whose_name_is_too_long_says_so(monitor, tmp_path):
    assert monitor("load", *FILES).code == 0
    run = monitor("db", "export", "--to", tmp_path / ("x" * 300))
    assert run.code == 2, run.err
    assert run.err.startswith(f"error: cannot write the snapshot archive at {tmp_path / ('x' * 300)}/NCT06821503/")
    assert "File name too long" in run.err and len(run.err.splitlines()) == 1, run.err


GARBLED = [
    ("record", b"\x00\x11\x22\x33"),  # an unknown marker
    ("record", b"r\x28\xb5\x2f\xfd" + b"\xff" * 40),  # a marker and a garbage frame
    ("record", b"z" + __import__("zstandard").ZstdCompressor(write_content_size=True).compress(b"not json")),
    ("record", b"z" + __import__("zstandard").ZstdCompressor(write_content_size=True).compress(b"[1, 2]")),
    ("raw", b"1\xff\xff\xff"),  # a marker and no frame
    ("raw", b"\x28\xb5\x2f\xfd\x00"),  # a truncated bare frame
    ("record", '{"a": 1}'),  # text where a packed record belongs (changed by hand)
    ("record", b"z" + __import__("zstandard").ZstdCompressor(write_content_size=True).compress(b"{\"a\": 1}")),
]


@pytest.mark.parametrize(("column", "garbage"), GARBLED)
@pytest.mark.parametrize("command", [("history", KEY), ("diff", KEY), ("show", KEY), ("check",), ("db", "export")])
def test_a_garbled_stored_version_is_named_by_trial_and_version(monitor, db_path, tmp_path, column, garbage, command):
    assert monitor("load", *FILES).code == 0
    store = Store.open(str(db_path))
    with store.engine.begin() as conn:  # by hand, as a damaged file or a hand edit would
        conn.execute(text(f"UPDATE versions SET {column} = :garbage WHERE number = 2"), {"garbage": garbage})
    store.close()
    if command == ("db", "export"):
        if column != "raw":
            return
        command = (*command, "--to", tmp_path / "export")
    run = monitor(*command)
    assert run.code == 2, run.err
    assert run.err.startswith(f"error: {KEY} version 2: "), run.err
    assert "damaged" in run.err and len(run.err.splitlines()) == 1, run.err


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("db", "prune", "--keep", "99999999999999999999999"), "error: Invalid value for '--keep': "),
        (("db", "prune", "--keep", "1000001"), "error: Invalid value for '--keep': "),
        (("db", "prune", "--keep", "0"), "error: Invalid value for '--keep': "),
        (("db", "export", "--to", ""), "error: --to: give a folder"),
    ],
)
def test_db_prune_and_export_refuse_a_bad_argument_and_change_nothing(monitor, db_path, args, problem):
    assert monitor("load", *FILES).code == 0
    before = db_path.read_bytes()
    run = monitor(*args)
    assert (run.code, run.err.startswith(problem), len(run.err.splitlines())) == (2, True, 1), run.err
    assert db_path.read_bytes() == before


def test_bytes_that_are_not_text_in_a_stored_column_are_one_line_naming_the_damage(monitor, db_path):
    assert monitor("load", *FILES).code == 0
    store = Store.open(str(db_path))
    with store.engine.begin() as conn:  # SQLite keeps it as TEXT: not UTF-8, not a blob
        conn.execute(text("UPDATE versions SET record = CAST(X'72FF00FE1B5B316D0A0A' AS TEXT) WHERE number = 2"))
    store.close()
    run = monitor("history", KEY)
    assert run.code == 2, run.err
    assert run.err.startswith("error: the database is damaged (") and run.err.endswith(": restore it from a backup\n")
    assert len(run.err.splitlines()) == 1 and "\x1b" not in run.err


def test_db_export_writes_again_an_archived_file_that_no_longer_holds_its_payload(monitor, cli, tmp_path):
    assert monitor("load", *FILES).code == 0
    archive = tmp_path / "export"
    assert monitor("db", "export", "--to", archive).code == 0
    damaged, truncated = sorted(archive.rglob("*.json.gz"))
    damaged.write_text("garbage")
    truncated.write_bytes(truncated.read_bytes()[:40])
    run = monitor("db", "export", "--to", archive)
    assert (run.code, run.out) == (0, f"2 raw payload(s) in {archive}, 2 written now\n")
    assert cli("--db", tmp_path / "other.db", "load", archive).code == 0
    assert Store.open(str(tmp_path / "other.db")).versions.raw_payload(KEY, 2) == read_snapshots(FILES[1])[0].raw
