"""A registry answer whose path to the NCT id has the wrong type is refused naming that JSON path and the
type expected, like every other wrong shape ("nothing invented"), never as "a record without an NCT id"."""

from __future__ import annotations

import json

import pytest

from monitor.errors import SourceError
from monitor.live import Live
from monitor.sources.ctgov import CtgovClient, Politeness
from monitor.store import Store

from conftest import OPENING, UNKNOWN, monitor_process, study

TRIAL = "NCT06302556"
IDENTITY = "protocolSection.identificationModule"
WRONG = [
    (
        lambda s: s["protocolSection"].update(identificationModule=TRIAL),
        f'{IDENTITY}: expected an object, got the string "{TRIAL}"',
    ),
    (
        lambda s: s["protocolSection"].update(identificationModule=[TRIAL]),
        f"{IDENTITY}: expected an object, got a list",
    ),
    (
        lambda s: s["protocolSection"]["identificationModule"].update(nctId=6302556),
        f"{IDENTITY}.nctId: expected a string, got the number 6302556",
    ),
    (lambda s: s.update(protocolSection=7), "protocolSection: expected an object, got the number 7"),
]
WRONG_IDS = ["identification_a_string", "identification_a_list", "nct_id_a_number", "protocol_a_number"]


def damaged(damage) -> dict:
    record = study(UNKNOWN / "2026-02-02.json")
    damage(record)
    return record


@pytest.fixture
def live(server, tmp_path):
    client = CtgovClient(server.url, politeness=Politeness(rate=0, retries=0, timeout=30))
    live = Live(Store.open(f"sqlite:///{tmp_path / 'monitor.db'}"), client)
    yield live
    client.close()
    live.store.close()


@pytest.mark.parametrize(("damage", "says"), WRONG, ids=WRONG_IDS)
def test_a_fetched_record_of_the_wrong_shape_is_refused_naming_the_json_path(live, server, damage, says):
    server.set_raw(TRIAL, json.dumps(damaged(damage)).encode(), "2026-02-02")
    report = live.fetch([TRIAL, "NCT06821503", "NCT06387628"])
    assert sorted(r.key for r in report.results) == ["NCT06387628", "NCT06821503"], "the others are stored"
    assert report.problems == [
        f"{TRIAL}: {server.url}/studies?filter.ids={TRIAL}&pageSize=1: studies[0].{says}; not stored"
    ]


@pytest.mark.parametrize(("damage", "says"), WRONG, ids=WRONG_IDS)
def test_a_single_study_of_the_wrong_shape_is_refused_naming_the_json_path(live, server, damage, says):
    server.set_raw(TRIAL, json.dumps(damaged(damage)).encode(), "2026-02-02")
    with pytest.raises(SourceError) as refused:
        live.client.study(TRIAL)
    assert refused.value.message == f"{server.url}/studies/{TRIAL}: {says}"


def test_a_saved_search_answering_a_record_of_the_wrong_shape_names_the_json_path(live, server):
    server.extra.append(damaged(WRONG[0][0]))  # the only record of the answer (no fixture trial is on lupus)
    with pytest.raises(SourceError) as refused:
        live.client.search("query.cond=lupus")
    assert refused.value.message.endswith(f": studies[0].{WRONG[0][1]}"), refused.value.message
    assert "without an NCT id" not in refused.value.message


def test_fetch_of_a_record_of_the_wrong_shape_exits_2_and_stores_nothing(tmp_path, server):
    server.set_raw(TRIAL, json.dumps(damaged(WRONG[0][0])).encode(), "2026-02-02")
    db = tmp_path / "monitor.db"
    assert monitor_process("--db", db, "load", OPENING / "2026-02-10.json", cwd=tmp_path).returncode == 0
    fetched = monitor_process("--db", db, "--ctgov-url", server.url, "--retries", "0", "fetch", TRIAL, cwd=tmp_path)
    assert fetched.returncode == 2, fetched.stderr
    assert fetched.stderr.splitlines()[0] == (
        f"warning: {TRIAL}: {server.url}/studies?filter.ids={TRIAL}&pageSize=1: studies[0].{WRONG[0][1]}; not stored"
    )
    assert "without an NCT id" not in fetched.stderr
    store = Store.open(f"sqlite:///{db}")
    assert store.versions.latest_head(TRIAL) is None and store.versions.counts()["versions"] == 1, "the stored trial stays as it was"
    store.close()
