"""Versions written hundreds of trials at a time: a few statements per batch,
and still one trial's refusal is its own.  Against a real local registry and a
real database of each kind; statements are counted as the database sees them."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import event

from monitor.archive import SnapshotArchive
from monitor.live import Live
from monitor.pipeline import ingest
from monitor.sources.ctgov import CtgovClient, Politeness
from monitor.store import Store

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
            current = live.current(racing)
            ingest(other, current)

    live.progress = race
    report = live.fetch(list(ALL))
    assert sorted(r.key for r in report.results) == sorted(set(ALL) - {racing})
    assert [p.split(":")[0] for p in report.problems] == [racing]
    assert "another process stored a version at the same time" in report.problems[0]
    assert versions_of(live.store) == dict.fromkeys(ALL, 1), "one version each: none doubled, none lost"
    assert live.store.versions.latest_heads() == {key: live.store.versions.latest_head(key) for key in ALL}
    other.close()
