"""`monitor load` in two passes, one file at a time: pass 1 checks every file and keeps
small facts, pass 2 re-reads each file and stores it."""

from __future__ import annotations

import io
import json
import shutil

import pytest

from monitor import loading
from monitor.clock import utc_now
from monitor.errors import StoreError
from monitor.loading import Fact, survey
from monitor.sources.files import Payload, read_snapshots
from monitor.store import Store

from conftest import OPENING


def test_pass_one_keeps_facts_not_payloads(tmp_path):
    found = survey([OPENING])
    assert [(f.key, f.date[0]) for f in found.facts] == [("NCT06821503", "2025-02-17"), ("NCT06821503", "2026-03-10")]
    assert all(isinstance(f, Fact) and len(f) == 9 for f in found.facts)
    assert all(not isinstance(value, dict) and len(str(value)) < 200 for f in found.facts for value in f)


def test_copies_of_one_trial_in_later_files_are_stored_oldest_first(tmp_path, db_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(OPENING / "2026-03-10.json", folder / "a-newer.json")
    shutil.copy(OPENING / "2026-02-10.json", folder / "b-older.json")
    store = Store.open(str(db_path))
    results = survey([folder]).store(store, utc_now)
    assert [(r.status, r.version, r.origin.rsplit("/", 1)[1]) for r in results] == [
        ("new", 1, "b-older.json"),
        ("changed", 2, "a-newer.json"),
    ]


def test_a_file_changed_between_the_two_passes_stores_what_was_checked(tmp_path, db_path):
    file = tmp_path / "trial.json"
    shutil.copy(OPENING / "2026-02-10.json", file)
    found = survey([file])
    study = json.loads(file.read_text())
    study["protocolSection"]["identificationModule"]["briefTitle"] = "Rewritten meanwhile"
    file.write_text(json.dumps(study))
    store = Store.open(str(db_path))
    results = found.store(store, utc_now)
    assert [r.status for r in results] == ["new"]
    assert store.versions.latest_version("NCT06821503").record == read_snapshots(OPENING / "2026-02-10.json")[0].record


def test_pass_two_normalizes_no_payload_again(tmp_path, monkeypatch):
    text = (OPENING / "2026-02-10.json").read_text()
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(510):  # more than an earlier pass 1 kept in memory (500): the rest were normalized twice
        (folder / f"{i:03d}.json").write_text(text.replace("NCT06821503", f"NCT90000{i:03d}"))
    expected = read_snapshots(folder / "509.json")[0].record
    found = survey([folder])
    monkeypatch.setattr(Payload, "snapshot", lambda self: pytest.fail(f"{self.origin} normalized again"))
    store = Store.open(str(tmp_path / "monitor.db"))
    results = found.store(store, utc_now)
    found.close()
    assert (results.total, results.count_of("new")) == (510, 510)
    assert store.versions.latest_version("NCT90000509").record == expected


def test_a_spool_that_cannot_be_written_stores_nothing_and_says_where(tmp_path, monkeypatch):
    monkeypatch.setattr(loading.tempfile, "TemporaryFile", lambda **_: (_ for _ in ()).throw(OSError(28, "full")))
    with pytest.raises(StoreError, match=r"could not write the load's temporary file in .* set TMPDIR"):
        survey([OPENING])


class NearlyFullDisk(io.RawIOBase):
    """A temporary file on a disk with ``room`` bytes left: a write past it is short (what fits),
    the next one fails (ENOSPC), as a real file system does."""

    def __init__(self, room: int) -> None:
        self.room = room

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def write(self, data) -> int:
        if not self.room:
            raise OSError(28, "No space left on device")
        written = min(len(data), self.room)
        self.room -= written
        return written


def test_a_spool_whose_last_bytes_do_not_reach_the_disk_fails_in_pass_one_with_the_same_error(
    tmp_path, db_path, monkeypatch, cli
):
    """The spool's last write is short (the disk filled up): its rest waits in the file's buffer and
    the full disk shows only when it is flushed.  That is still pass 1's error (exit 2, TMPDIR named),
    before the database is created."""
    monkeypatch.setattr(loading.tempfile, "TemporaryFile", lambda **_: io.BufferedRandom(NearlyFullDisk(5_000)))
    run = cli("--db", db_path, "load", OPENING / "2026-02-10.json")
    assert run.code == 2, run.err
    assert "could not write the load's temporary file in" in run.err and "set TMPDIR" in run.err
    assert not db_path.exists(), "nothing was stored, nor the database created"
