"""`monitor load` in two passes, one file at a time: pass 1 checks every file and keeps
small facts, pass 2 re-reads each file and stores it."""

from __future__ import annotations

import json
import shutil

import pytest

from monitor import loading
from monitor.clock import utc_now
from monitor.errors import SourceError
from monitor.loading import Fact, survey
from monitor.sources.files import read_snapshots
from monitor.store import Store

from conftest import OPENING


def test_pass_one_keeps_facts_not_payloads(tmp_path):
    found = survey([OPENING])
    assert [(f.key, f.date[0]) for f in found.facts] == [("NCT06821503", "2025-02-17"), ("NCT06821503", "2026-03-10")]
    assert all(isinstance(f, Fact) and len(f) == 8 for f in found.facts)
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


def test_a_file_changed_between_the_two_passes_is_refused_by_name(tmp_path, db_path, monkeypatch):
    monkeypatch.setattr(loading, "KEPT", 0)  # nothing kept from pass 1: every file is read again
    file = tmp_path / "trial.json"
    shutil.copy(OPENING / "2026-02-10.json", file)
    found = survey([file])
    study = json.loads(file.read_text())
    study["protocolSection"]["identificationModule"]["briefTitle"] = "Rewritten meanwhile"
    file.write_text(json.dumps(study))
    store = Store.open(str(db_path))
    with pytest.raises(SourceError, match=rf"^{file}: changed while it was being loaded; load it again$"):
        found.store(store, utc_now)
    assert store.versions.counts()["versions"] == 0


@pytest.mark.parametrize("kept", [0, 1, 500])
def test_a_load_stores_the_same_whatever_pass_one_kept(tmp_path, monkeypatch, kept):
    monkeypatch.setattr(loading, "KEPT", kept)
    store = Store.open(str(tmp_path / f"kept{kept}.db"))
    results = survey([OPENING]).store(store, utc_now)
    assert [(r.status, r.version, len(r.changes)) for r in results] == [("new", 1, 0), ("changed", 2, 20)]
    assert [v.record for v in store.versions.history("NCT06821503")] == [
        s.record for path in sorted(OPENING.glob("*.json")) for s in read_snapshots(path)
    ]
