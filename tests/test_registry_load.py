"""The whole registry's first load against a hostile registry: bounded by its totalCount (or
limits.max_registry_studies), a record whose NCT id cannot be read skipped and named by its place,
a page that is not JSON asked again with half the page size."""

from __future__ import annotations

import json
import sqlite3

import pytest

from monitor.clock import SetClock
from monitor.errors import SourceError
from monitor.limits import Limits
from monitor.live import CycleReport, Live
from monitor.live_registry import PAGES, TOKEN, TOTAL, TRIALS, load_registry
from monitor.sources.ctgov import CtgovClient, Politeness
from monitor.store import Store

from ctgov_server import Fault

ALL = ["NCT06302556", "NCT06387628", "NCT06821503"]  # the server's three trials, in its listing order


def make_live(server, tmp_path, limits: Limits | None = None) -> Live:
    client = CtgovClient(
        server.url, politeness=Politeness(rate=0, retries=0, timeout=2), sleep=lambda s: None, limits=limits or Limits()
    )
    live = Live(Store.open(f"sqlite:///{tmp_path / 'monitor.db'}"), client, now=SetClock("2026-02-11T12:00:00"))
    live.store.watches.add_watch("registry", "all", live.now())
    return live


@pytest.fixture
def live(server, tmp_path):
    live = make_live(server, tmp_path)
    yield live
    live.client.close()
    live.store.close()


def asked(server) -> list[dict]:
    return [q for p, q in server.requests if p == "/api/v2/studies"]


def stored(tmp_path) -> list[str]:
    with sqlite3.connect(tmp_path / "monitor.db") as conn:
        return [k for (k,) in conn.execute("SELECT DISTINCT trial_key FROM versions ORDER BY 1")]


# --- 1. bounded ---------------------------------------------------------------------------------


def test_an_endless_registry_is_refused_past_its_total_count_naming_the_request(server, tmp_path, monitor):
    server.paging = "endless"  # a new nextPageToken on every page, for ever (empty pages past the last study)
    run = monitor("--ctgov-url", server.url, "--rate", "0", "watch", "add", "--all", "--page-size", "1")
    assert run.code == 2, run.err
    said = [line for line in run.err.splitlines() if "totalCount" in line]
    assert len(said) == 1 and "/api/v2/studies?pageSize=1&pageToken=*** (page 5): " in said[0]
    assert "the registry's totalCount of 3 and a margin of 5%" in said[0]
    assert len(asked(server)) == 5, "3 studies, 1 page of margin, refused at the next: not limits.max_pages"
    assert asked(server)[0]["countTotal"] == ["true"] and all("countTotal" not in q for q in asked(server)[1:])
    assert stored(tmp_path) == ALL, "what was stored stays"
    with sqlite3.connect(tmp_path / "monitor.db") as conn:
        state = dict(conn.execute("SELECT key, value FROM source_state WHERE key LIKE 'ctgov.load_%'"))
    assert (state[TOKEN], state[PAGES], state[TRIALS], state[TOTAL]) == ("4", "4", "3", "3"), "resumable at page 5"


def test_max_registry_studies_bounds_the_load_below_the_total_count(server, tmp_path):
    live = make_live(server, tmp_path, Limits(max_registry_studies=2))
    try:
        with pytest.raises(SourceError, match=r"more than 2 studies \(limits.max_registry_studies\)"):
            load_registry(live, CycleReport(), page_size=1)
        assert sorted(live.store.versions.latest_heads()) == ALL[:2]
        assert live.store.service.get_state(TOKEN) == "2", "the page that crossed it is not stored; resumes there"
    finally:
        live.client.close()
        live.store.close()


def test_a_resumed_load_is_bounded_by_the_total_count_its_first_page_said(live, server):
    load_registry(live, CycleReport(), page_size=1, pages=1)
    assert live.store.service.get_state(TOTAL) == "3"
    server.paging = "endless"
    with pytest.raises(SourceError, match="totalCount of 3"):
        load_registry(live, CycleReport(), page_size=1)
    assert all("countTotal" not in q for q in asked(server)[1:])


def test_the_whole_registry_is_bounded_by_its_studies_not_by_max_pages(server, tmp_path):
    """570,000 trials at 200 a page are 2,850 pages, past limits.max_pages (2,000): that bound is
    for one search or batch; the load's is the registry's totalCount."""
    live = make_live(server, tmp_path, Limits(max_pages=2))
    try:
        finished, _ = load_registry(live, CycleReport(), page_size=1)
        assert finished and sorted(live.store.versions.latest_heads()) == ALL
    finally:
        live.client.close()
        live.store.close()


# --- 2. a record whose NCT id cannot be read ------------------------------------------------------


@pytest.mark.parametrize(
    ("nct", "path"),
    [
        (42, "studies[1].protocolSection.identificationModule.nctId"),
        ("NCT123", "studies[1].protocolSection.identificationModule.nctId"),
        (None, "studies[1].protocolSection.identificationModule.nctId"),
    ],
)
def test_a_record_whose_id_cannot_be_read_is_one_problem_named_by_its_place_and_the_load_goes_on(
    live, server, nct, path
):
    bad = json.loads(server.studies["NCT06387628"])
    if nct is None:
        del bad["protocolSection"]["identificationModule"]["nctId"]
    else:
        bad["protocolSection"]["identificationModule"]["nctId"] = nct
    server.set_raw("NCT06387628", json.dumps(bad).encode(), server.updates["NCT06387628"])
    report = CycleReport()
    finished, _ = load_registry(live, report, page_size=2)
    assert finished
    assert sorted(live.store.versions.latest_heads()) == ["NCT06302556", "NCT06821503"], "the next page read too"
    assert len(report.problems) == 1, report.problems
    problem = report.problems[0]
    assert problem.startswith("registry page 1 studies[1]: ")
    assert "/api/v2/studies?pageSize=2&countTotal=true" in problem and path in problem


def test_the_next_pass_forgets_an_unreadable_study_that_the_registry_mended(live, server):
    good = server.studies["NCT06387628"]
    bad = json.loads(good)
    bad["protocolSection"]["identificationModule"]["nctId"] = 42
    server.set_raw("NCT06387628", json.dumps(bad).encode(), server.updates["NCT06387628"])
    assert load_registry(live, CycleReport(), page_size=2)[0]
    errors = [key for key, _, _ in live.store.watches.trial_errors()]
    assert errors == ["registry page 1 studies[1]"], "monitor status shows it"
    server.set_raw("NCT06387628", good, server.updates["NCT06387628"])
    live.store.service.set_state(TOKEN, "")  # the next pass, from the first page
    assert load_registry(live, CycleReport(), page_size=2)[0]
    assert live.store.watches.trial_errors() == [], "mended: no longer shown"
    assert "NCT06387628" in live.store.versions.latest_heads()


def test_a_record_that_is_not_an_object_is_skipped_and_the_command_exits_2_naming_it(server, tmp_path, monitor):
    page = {"studies": [json.loads(server.studies["NCT06302556"]), "not a study"], "totalCount": 2}
    server.faults.append(Fault("/studies", body=json.dumps(page).encode()))
    run = monitor("--ctgov-url", server.url, "--rate", "0", "watch", "add", "--all")
    assert run.code == 2
    assert "registry page 1 studies[1]: " in run.err and "studies[1]" in run.err
    assert stored(tmp_path) == ["NCT06302556"]


# --- 3. a page that is not JSON --------------------------------------------------------------------


def test_a_page_that_is_not_json_is_asked_again_with_half_the_page_size(live, server):
    server.faults.append(Fault("/studies", body=b"<html><body>502 Bad Gateway</body></html>"))
    finished, _ = load_registry(live, CycleReport(), page_size=2)
    assert finished and sorted(live.store.versions.latest_heads()) == ALL
    sizes = [(q["pageSize"][0], q.get("pageToken", [None])[0]) for q in asked(server)]
    assert sizes == [("2", None), ("1", None), ("1", "1"), ("2", "2")], "halved for the stretch that failed, then 2"


def test_a_truncated_page_is_asked_again_with_half_the_page_size(live, server):
    server.faults.append(Fault("/studies", truncate=True, skip=1))
    finished, _ = load_registry(live, CycleReport(), page_size=2)
    assert finished and sorted(live.store.versions.latest_heads()) == ALL


def test_one_study_that_is_never_json_stops_the_load_at_its_page_naming_the_request(live, server):
    server.set_raw("NCT06387628", b'{"protocolSection": <b>oops</b>}', server.updates["NCT06387628"])
    with pytest.raises(SourceError) as raised:
        load_registry(live, CycleReport(), page_size=4)
    said = str(raised.value)
    assert "/api/v2/studies?pageSize=1&pageToken=*** (page 2): an incomplete or non-JSON body" in said
    assert "even asked for one study" in said
    assert [q["pageSize"][0] for q in asked(server)] == ["4", "2", "1", "1"], "bounded halving down to 1"
    assert sorted(live.store.versions.latest_heads()) == ["NCT06302556"]
    assert live.store.service.get_state(TOKEN) == "1", "resumes at the page that failed"
