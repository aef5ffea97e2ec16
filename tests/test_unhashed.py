"""A trial's first version is stored without its content hash (monitor.diff.UNHASHED: a first
load does not project what nothing compares yet); every reader of the hash computes it from the
stored record, so dedupe, the next comparison, a race of two writers and the history behave as
if it had been stored."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from monitor.clock import utc_now
from monitor.diff import UNHASHED, fingerprint
from monitor.errors import WriteConflict
from monitor.pipeline import as_new_version, ingest
from monitor.sources.files import Payload, read_snapshots
from monitor.store import Store

from conftest import OPENING


@pytest.fixture
def store(store_url):
    store = Store.open(store_url)
    yield store
    store.close()


def stored_hashes(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return [row[0] for row in conn.execute(text("SELECT content_hash FROM versions ORDER BY number"))] + [
            row[0] for row in conn.execute(text("SELECT content_hash FROM trial_heads"))
        ]


def noise_copy(snapshot):
    """The same trial with its title in capitals: another raw payload, the same comparison form."""
    study = json.loads(snapshot.raw)
    ident = study["protocolSection"]["identificationModule"]
    ident["briefTitle"] = ident["briefTitle"].upper()
    return Payload("noise.json", json.dumps(study), study).snapshot()


def test_a_first_version_is_stored_unhashed_and_read_with_its_hash(store):
    (first,) = read_snapshots(OPENING / "2026-02-10.json")
    assert ingest(store, first).status == "new"
    assert stored_hashes(store) == [UNHASHED, UNHASHED]
    (version,) = store.versions.history(first.record.key)
    assert version.content_hash == fingerprint(first.record)


def test_the_same_record_again_after_a_first_load_is_the_same_version(store):
    (first,) = read_snapshots(OPENING / "2026-02-10.json")
    ingest(store, first)
    again = ingest(store, noise_copy(first))
    assert (again.status, again.version, again.note) == ("unchanged", 1, "same as version 1")


def test_an_older_copy_identical_to_an_unhashed_version_is_that_version_not_stale(store):
    first, second = read_snapshots(OPENING / "2026-02-10.json") + read_snapshots(OPENING / "2026-03-10.json")
    ingest(store, first)
    assert ingest(store, second).status == "changed"
    back = ingest(store, noise_copy(first))
    assert (back.status, back.version, back.note) == ("unchanged", 1, "same as version 1")
    assert stored_hashes(store)[1] == fingerprint(second.record), "a later version is stored with its hash"


def test_two_writers_of_a_first_version_agree_only_when_it_is_the_same_record(store, store_url):
    first, second = read_snapshots(OPENING / "2026-02-10.json") + read_snapshots(OPENING / "2026-03-10.json")
    other = Store.open(store_url)
    other.versions.add_version(as_new_version(first, UNHASHED, utc_now()), 1)
    assert store.versions.add_version(as_new_version(noise_copy(first), UNHASHED, utc_now()), 1) == 1
    with pytest.raises(WriteConflict):
        store.versions.add_version(as_new_version(second, UNHASHED, utc_now()), 1)
    other.close()


def test_a_pooled_first_load_then_the_same_records_again_are_the_same_versions(store_url):
    """The pool stores new trials unhashed; a refetch whose records differ only in noise (a
    different raw payload, so not caught by the raw hash) is unchanged, trial by trial."""
    from test_workers import N, key, run, trials

    from monitor.workers import Workers

    from ctgov_server import CtgovServer

    server = CtgovServer(trials(1)).start()
    try:
        live = run(server, store_url, Workers(2, minimum=200))
        keys = [key(i) for i in range(N)]
        first = live.fetch(keys)
        assert {r.status for r in first.results} == {"new"}
        assert set(stored_hashes(live.store)) == {UNHASHED}
        for one in trials(1):
            ident = one["protocolSection"]["identificationModule"]
            ident["briefTitle"] = ident["briefTitle"].upper()
            server.set_study(one, move_timestamp=False)
        again = live.fetch(keys)
        assert {(r.status, r.version, r.note) for r in again.results} == {("unchanged", 1, "same as version 1")}
        assert len(again.results) == len(first.results) == N - 1  # the broken one is refused both times
        live.store.close()
    finally:
        server.stop()
