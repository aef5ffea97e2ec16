"""Versions written hundreds of trials at a time: a few statements per batch,
and still one trial's refusal is its own.  Against a real local registry and a
real database of each kind; statements are counted as the database sees them."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import event

from monitor.archive import SnapshotArchive
from monitor.live import Live
from monitor.loading import survey
from monitor.pipeline import as_new_version, ingest, load, utc_now
from monitor.sources.ctgov import CtgovClient, Politeness
from monitor.store import Store

from conftest import NOISE, OPENING, UNKNOWN, serve_history, study

ALL = ("NCT06821503", "NCT06302556", "NCT06387628")


@pytest.fixture
def client(server):
    client = CtgovClient(server.url, politeness=Politeness(rate=0, retries=0, timeout=5))
    yield client
    client.close()


@pytest.fixture
def live(client, store_url, tmp_path):
    live = Live(Store.open(store_url), client, SnapshotArchive(tmp_path / "snapshots"), routes=lambda key, c: ["team"])
    yield live
    live.store.close()


def statements(store: Store, run) -> list[str]:
    seen: list[str] = []

    def count(conn, cursor, statement, *_args) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        run()
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    return seen


def versions_of(store: Store) -> dict[str, int]:
    return {key: len(store.versions.history(key)) for key in ALL if store.versions.latest_head(key)}


def test_storing_more_new_trials_sends_no_more_statements(live):
    one = statements(live.store, lambda: live.fetch([ALL[0]]))
    two = statements(live.store, lambda: live.fetch(list(ALL[1:])))
    assert len(two) == len(one), "the statements of a fetch do not grow with its trials"
    assert len([s for s in two if s.startswith("INSERT INTO versions")]) == 1
    assert versions_of(live.store) == dict.fromkeys(ALL, 1)


def test_refetching_identical_trials_sends_no_statement_per_trial(live):
    """A fetched copy byte-identical to the stored version is known from the heads read once
    for the fetch: no query per trial, no version row read."""
    live.fetch(list(ALL))
    one = statements(live.store, lambda: live.fetch([ALL[0]]))
    reports = []
    three = statements(live.store, lambda: reports.append(live.fetch(list(ALL))))
    assert len(three) == len(one), "the statements of a fetch do not grow with its identical trials"
    assert not [s for s in three if "FROM versions" in s], "no version row is read"
    assert [(r.key, r.status, r.note) for r in reports[0].results] == [
        (key, "unchanged", "same raw payload as version 1") for key in ALL
    ]


def test_storing_more_changed_trials_writes_them_in_one_batch(live, server):
    live.fetch(list(ALL))
    for key in ALL[:2]:
        changed = json.loads(server.studies[key])
        changed["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"] = "2027-01-02"
        changed["protocolSection"]["designModule"]["enrollmentInfo"]["count"] = 999
        server.set_study(changed)
    reports = []
    seen = statements(live.store, lambda: reports.append(live.fetch(list(ALL))))
    assert len([s for s in seen if s.startswith("INSERT INTO versions")]) == 1
    assert len([s for s in seen if s.startswith("INSERT INTO changes")]) == 1
    assert len([s for s in seen if s.startswith("INSERT INTO deliveries")]) == 1
    assert [(r.key, r.status) for r in reports[0].results] == [(key, "changed") for key in ALL[:2]] + [
        (ALL[2], "unchanged")
    ], "results in the order the registry sent them"
    assert versions_of(live.store) == {ALL[0]: 2, ALL[1]: 2, ALL[2]: 1}
    for key in ALL[:2]:
        assert any(c.field.startswith("enrollment") for c in live.store.versions.history(key)[-1].changes)
    assert {d.trial_key for d in live.store.deliveries.recent()} >= set(ALL[:2])


def test_a_version_the_database_refuses_is_refused_alone_not_with_its_batch(live, store_url, server):
    """Another process stores a version of one trial while the batch waits: the
    batch's insert breaks the (trial, number) constraint on that one row; its
    neighbours are written with their changes and deliveries, it is reported."""
    other = Store.open(store_url)
    racing = ALL[1]

    def race(what: str, _n: int) -> None:
        if what == "fetch" and not other.versions.latest_head(racing):
            current = live.current(racing)  # another version than the fetch's (the same one is no conflict)
            other.versions.add_version(as_new_version(current, "another process's version", utc_now()), 1)

    live.progress = race
    report = live.fetch(list(ALL))
    assert sorted(r.key for r in report.results) == sorted(set(ALL) - {racing})
    assert [p.split(":")[0] for p in report.problems] == [racing]
    assert "another process stored a version at the same time" in report.problems[0]
    assert versions_of(live.store) == dict.fromkeys(ALL, 1), "one version each: none doubled, none lost"
    assert live.store.versions.latest_heads() == {key: live.store.versions.latest_head(key) for key in ALL}
    other.close()


# --- monitor load: the same batched writer ------------------------------------------------


def test_a_load_writes_each_round_of_copies_in_one_batch(store_url):
    """Two copies of each of three trials: two rounds (every trial's oldest copy, then its
    next), each one INSERT INTO versions and one read of the round's heads, not one per version."""
    store = Store.open(store_url)
    results = []
    seen = statements(store, lambda: results.extend(load(store, [OPENING, UNKNOWN, NOISE])))
    assert [(r.key, r.status, r.version) for r in results] == [
        ("NCT06302556", "new", 1),
        ("NCT06302556", "changed", 2),
        ("NCT06387628", "new", 1),
        ("NCT06387628", "unchanged", 1),  # its second download differs only in noise
        ("NCT06821503", "new", 1),
        ("NCT06821503", "changed", 2),
    ]
    stored = sum(len(store.versions.history(key)) for key in ALL)
    inserts = [s for s in seen if s.startswith("INSERT INTO versions")]
    assert stored == 5 and len(inserts) == 2, "one insert per round of copies"
    assert len([s for s in seen if "FROM trial_heads" in s]) == 2, "one read of the heads per round"
    assert store.versions.latest_heads() == {key: store.versions.latest_head(key) for key in ALL}
    store.close()


def test_a_version_the_database_refuses_during_a_load_is_refused_alone(store_url):
    """Another process stores one of the trials while the load's batch waits: that trial is
    refused by name, the others of the batch are stored with their versions."""
    store, other = Store.open(store_url), Store.open(store_url)
    racing = "NCT06302556"

    def race(what: str, _n: int) -> None:
        if what == "records" and not other.versions.latest_head(racing):
            load(other, [UNKNOWN / "2026-03-02.json"])  # a different version: a real conflict

    found = survey([OPENING / "2026-02-10.json", UNKNOWN / "2026-02-02.json", NOISE / "2026-02-03.json"])
    results = found.store(store, utc_now, progress=race)
    assert [(r.key, r.status) for r in results if r.status == "failed"] == [(racing, "failed")]
    assert [r.note for r in results if r.key == racing] == [
        "another process stored a version at the same time; nothing was written, try again"
    ]
    assert {key: len(store.versions.history(key)) for key in ALL} == dict.fromkeys(ALL, 1), "none lost, none doubled"
    assert store.versions.latest_heads() == {key: store.versions.latest_head(key) for key in ALL}
    store.close()
    other.close()


# --- backfill: a new trial's history in one batch ------------------------------------------


def test_a_new_trials_history_is_written_in_one_batch_as_ingest_would_store_it(live, server, store_url, tmp_path):
    serve_history(server)
    older, old = server.history["NCT06821503"]
    stale = copy.deepcopy(older)  # listed after a newer version, older date: left out, as ingest leaves it
    stale["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"] = "2024-12-01"
    server.history["NCT06821503"] = [older, old, copy.deepcopy(old), stale]
    seen = statements(live.store, lambda: live.backfill("NCT06821503"))
    assert len([s for s in seen if s.startswith("INSERT INTO versions")]) == 1
    assert len([s for s in seen if s.startswith("INSERT INTO changes")]) == 1
    one_by_one = Store.open(f"sqlite:///{tmp_path / 'one-by-one.db'}")
    for answer in live.source.history("NCT06821503"):
        ingest(one_by_one, answer.snapshot(), live.now, backfill=True)

    def kept(store: Store) -> list:
        return [
            (v.number, v.content_hash, v.date, [(c.summary, c.field) for c in v.changes])
            for v in store.versions.history("NCT06821503")
        ]

    assert kept(live.store) == kept(one_by_one)
    assert [v.date for v in live.store.versions.history("NCT06821503")] == ["2025-01-10", "2025-02-17"]
    assert live.store.versions.changes_since(datetime(2000, 1, 1, tzinfo=UTC)) == (0, 0), "history, not news"
    assert live.store.versions.latest_heads() == {"NCT06821503": live.store.versions.latest_head("NCT06821503")}
    one_by_one.close()


def test_history_put_before_a_stored_version_is_inserted_in_one_statement(live, server):
    serve_history(server)
    server.set_study(study(OPENING / "2026-03-10.json"))
    live.fetch(["NCT06821503"])
    seen = statements(live.store, lambda: live.backfill("NCT06821503"))
    assert len([s for s in seen if s.startswith("INSERT INTO versions")]) == 1
    assert [v.date for v in live.store.versions.history("NCT06821503")] == ["2025-01-10", "2025-02-17", "2026-03-10"]
    assert live.store.versions.latest_head("NCT06821503").number == 3
