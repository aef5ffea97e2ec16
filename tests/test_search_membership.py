"""Saved searches between two full refreshes ask only what changed within them since the
watermark: trials joining are the same `membership` events as before, found by one change query;
a member updated out of the search leaves in the same cycle (asked once more by id); a member the
registry deletes leaves at the full refresh, which pages the search in full.  Against the local
registry server."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from monitor.clock import SetClock
from monitor.live import LAST_FULL, Live
from monitor.live_plan import WATERMARK
from monitor.sources.ctgov import CtgovClient, Politeness
from monitor.store import Store

from conftest import OPENING, study
from ctgov_server import Fault

SEARCH = "query.cond=pancreatic"



@pytest.fixture
def live(server, store_url):
    client = CtgovClient(server.url, politeness=Politeness(rate=0, retries=0, timeout=2), sleep=lambda s: None)
    live = Live(Store.open(store_url), client, now=SetClock("2026-02-11T12:00:00"))
    live.store.watches.add_watch("query", SEARCH, live.now())
    yield live
    client.close()
    live.store.close()


def trial(nct: str, day: str, condition: str = "Advanced Pancreatic Cancer", status: str = "RECRUITING") -> dict:
    record = copy.deepcopy(study(OPENING / "2026-03-10.json"))
    record["protocolSection"]["identificationModule"]["nctId"] = nct
    record["protocolSection"]["conditionsModule"]["conditions"] = [condition]
    record["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"] = day
    record["protocolSection"]["statusModule"]["overallStatus"] = status
    return record


def search_requests(server) -> list[dict]:
    return [q for path, q in server.requests if path == "/api/v2/studies" and "query.cond" in q]


def baseline(live, server) -> None:
    """The search's first run (its baseline, paged in full), then a watermark and a fresh full refresh."""
    report = live.cycle(queries=[SEARCH], scope="s")
    assert report.complete and report.membership == [], report.problems
    assert set(live.store.watches.members(SEARCH)) == {"NCT06821503"}
    live.store.service.set_state(f"ctgov.{LAST_FULL}.s", live.now().isoformat())
    live.store.service.set_state(f"{WATERMARK}.s", "2026-02-10")
    server.requests.clear()


def test_a_trial_joining_a_saved_search_is_found_by_its_change_query_not_by_paging_it(live, server):
    baseline(live, server)
    server.set_study(trial("NCT07000001", "2026-02-11"))
    report = live.cycle(queries=[SEARCH], scope="s")
    assert report.complete, report.problems
    asked = search_requests(server)
    assert asked, "the search was asked"
    assert all(q["filter.advanced"] == ["AREA[LastUpdatePostDate]RANGE[2026-02-10,MAX]"] for q in asked)
    assert len(asked) == 1, "one change query within the search: the plan reuses its answer"
    assert [(key, event.summary) for key, event in report.membership] == [
        (
            "NCT07000001",
            "Entered saved search 'query.cond=pancreatic': "
            + trial("X", "")["protocolSection"]["identificationModule"]["briefTitle"]
            + " (RECRUITING)",
        )
    ]
    assert set(live.store.watches.members(SEARCH)) == {"NCT06821503", "NCT07000001"}
    # queued for its history, as before, and tried in the same cycle (the server has none for it)
    assert live.store.watches.backfill_state("NCT07000001") == "failed"


def test_an_unchanged_search_costs_one_change_query_and_says_nothing(live, server):
    baseline(live, server)
    server.data_timestamp += "moved elsewhere"
    report = live.cycle(queries=[SEARCH], scope="s")
    assert report.complete and report.membership == [], report.problems
    assert [q["filter.advanced"] for q in search_requests(server)] == [
        ["AREA[LastUpdatePostDate]RANGE[2026-02-10,MAX]"]
    ]


def test_a_member_updated_within_the_search_is_refreshed_without_an_event(live, server):
    baseline(live, server)
    server.set_study(trial("NCT06821503", "2026-02-11", status="ACTIVE_NOT_RECRUITING"))
    report = live.cycle(queries=[SEARCH], scope="s")
    assert report.membership == [], "an update is not a membership event"
    assert live.store.watches.members(SEARCH)["NCT06821503"][1] == "ACTIVE_NOT_RECRUITING"


def test_a_member_updated_out_of_the_search_leaves_it_in_the_same_cycle(live, server):
    baseline(live, server)
    server.set_study(trial("NCT06821503", "2026-02-11", condition="Lupus"))  # no longer pancreatic
    report = live.cycle(queries=[SEARCH], scope="s")
    assert report.complete, report.problems
    assert [(key, event.summary.split(":")[0]) for key, event in report.membership] == [
        ("NCT06821503", "Left saved search 'query.cond=pancreatic'")
    ]
    left = report.membership[0][1]
    assert left.old["status"] == "NOT_YET_RECRUITING" and left.change.value == "removed"  # as it last was in it
    confirm = [q for q in search_requests(server) if "filter.ids" in q]
    assert [q["filter.ids"] for q in confirm] == [["NCT06821503"]], "asked once more, by id, within the search"
    assert live.store.watches.members(SEARCH) == {}


def test_a_member_the_change_query_missed_but_still_in_the_search_does_not_leave(live, server):
    """The search's change query and the plan's answer are two requests: a member updated between
    them is in the plan's answer and not in the search's; asked again by id, it is still there."""
    baseline(live, server)
    server.set_study(trial("NCT06821503", "2026-02-11", status="ACTIVE_NOT_RECRUITING"))
    server.faults.append(Fault("/studies", body=b'{"studies": []}'))  # the search's change query, before the update
    report = live.cycle(queries=[SEARCH], scope="s")
    assert report.complete and report.membership == [], report.problems
    assert set(live.store.watches.members(SEARCH)) == {"NCT06821503"}


def test_a_member_the_registry_deletes_leaves_at_the_full_refresh(live, server):
    baseline(live, server)
    server.remove_study("NCT06821503")
    report = live.cycle(queries=[SEARCH], scope="s")
    assert report.membership == [], "a change query cannot see a trial the registry deleted"
    assert report.problems == ["NCT06821503: not found on ClinicalTrials.gov"]
    live.now.at = datetime(2026, 2, 19, 12, tzinfo=UTC)  # the full refresh is due: the search is paged in full
    server.requests.clear()
    report = live.cycle(queries=[SEARCH], scope="s")
    assert [q for q in search_requests(server) if "filter.advanced" not in q], "paged in full"
    assert [(key, event.summary.split(":")[0]) for key, event in report.membership] == [
        ("NCT06821503", "Left saved search 'query.cond=pancreatic'")
    ]
    assert live.store.watches.members(SEARCH) == {}
