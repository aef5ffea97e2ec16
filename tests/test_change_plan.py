"""The change-driven cycle: which plan runs (probe every id, or ask what changed since the
watermark), what it asks, and that it misses nothing, against the local registry server."""

from __future__ import annotations

import copy
import json
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, date, datetime

import pytest

from monitor.clock import SetClock
from monitor.errors import ParseError, SourceError
from monitor.limits import Limits
from monitor.live import LAST_FULL, CycleReport, Live
from monitor.live_plan import PER_DAY, WATERMARK, choose_plan
from monitor.sources.ctgov import CtgovClient, Politeness
from monitor.sources.ctgov_changes import changed_since, since_expression
from monitor.store import Store
from monitor.store.watches import WatchStore

from conftest import OPENING, ROOT, UNKNOWN, study
from ctgov_server import Fault

TODAY = date(2026, 11, 23)


@pytest.mark.parametrize(
    ("watched", "watermark", "per_day", "searches", "kind", "says"),
    [
        (3, "2026-11-22", 5_000, None, "ids", "1 probe request vs about 10 change-query pages"),
        (900, "2026-11-22", 1, None, "ids", "1 probe request vs about 1 change-query page"),
        (570_000, None, 3_000, None, "ids", "570 probe requests: no watermark yet"),
        (570_000, "2026-11-22", 3_000, None, "changes", "about 6 change-query pages registry-wide since 2026-11-22"),
        (10_000, "2026-11-22", 5_000, None, "ids", "10 probe requests vs about 10"),  # a tie keeps the probe
        (10_000, "2026-11-22", 3_000, None, "changes", "about 6 change-query pages registry-wide"),
        (570_000, "2026-11-16", 3_000, None, "changes", "about 24 change-query pages"),  # a week without a cycle
        (4_000, "2026-11-22", 5_000, {"query.cond=cancer": 4_000}, "ids", "4 probe requests vs about 4"),
        (4_000, "2026-11-22", 100, {"query.cond=cancer": 4_000}, "changes", "1 change-query page registry-wide"),
    ],
)
def test_the_cheaper_plan_runs_and_says_why(watched, watermark, per_day, searches, kind, says):
    plan = choose_plan(watched, watermark, TODAY, per_day, searches)
    assert plan.kind == kind
    assert says in plan.reason


def test_saved_searches_that_change_little_are_asked_within_themselves():
    searches = {"query.cond=a": 2_000, "query.cond=b": 7_000}
    plan = choose_plan(9_000, "2026-11-22", TODAY, 5_000, searches, within_per_day=100)
    assert plan.kind == "changes" and plan.searches == tuple(searches)
    assert "about 2 change-query pages within the saved searches since 2026-11-22 vs 9 probe" in plan.reason


def test_the_whole_registry_always_asks_what_changed():
    plan = choose_plan(0, "2026-11-22", TODAY, registry_wide_only=True)
    assert plan.kind == "changes" and plan.since == "2026-11-22"
    assert (
        plan.reason
        == "about 10 change-query pages registry-wide since 2026-11-22 (the whole registry is watched: no id probe)"
    )


def test_a_registry_day_of_3000_updates_over_570000_trials_costs_ten_requests():
    """1 (version) + 6 change-query pages (the watermark day again, and the new day) + 3 full batches."""
    plan = choose_plan(570_000, "2026-11-22", TODAY, per_day=3_000)
    pages = int(plan.reason.split("about ")[1].split()[0])
    assert 1 + pages + 3_000 // 1_000 == 10
    probe = choose_plan(570_000, None, TODAY)
    assert 1 + int(probe.reason.split()[0]) + 3 == 574


# --- against the registry server -------------------------------------------------------------



@pytest.fixture
def clock():
    return SetClock("2026-02-11T12:00:00")


@pytest.fixture
def live(server, store_url, clock):
    client = CtgovClient(server.url, politeness=Politeness(rate=0, retries=1, timeout=2), sleep=lambda s: None)
    live = Live(Store.open(store_url), client, now=clock)
    yield live
    client.close()
    live.store.close()


# Trials the registry does not have, watched alongside the three it has: a watch set over
# 1,000 trials, where the change query (one page) is cheaper than the probe (three requests).
MANY = [f"NCT9{n:07d}" for n in range(2_000)]
REAL = ["NCT06821503", "NCT06302556", "NCT06387628"]


def settled(live: Live, scope: str, watermark: str) -> None:
    """The three real trials stored and seen, the others asked for (not found), the full refresh done,
    the watermark set."""
    live.fetch(REAL + MANY)
    live.store.service.set_state(f"ctgov.{LAST_FULL}.{scope}", live.now().isoformat())
    live.store.service.set_state(f"{WATERMARK}.{scope}", watermark)
    live.store.service.set_state(PER_DAY, "10")


def advanced(server) -> list[str]:
    return [params["filter.advanced"][0] for path, params in server.requests if "filter.advanced" in params]


def test_a_small_watch_set_keeps_the_id_probe(live, server):
    live.fetch(REAL)
    live.store.service.set_state(f"ctgov.{LAST_FULL}.small", live.now().isoformat())
    live.store.service.set_state(f"{WATERMARK}.small", "2026-02-10")
    server.data_timestamp += "moved"
    report = live.cycle(trials=REAL, scope="small")
    assert report.plan == "ids" and "1 probe request vs" in report.plan_reason
    assert report.probed == 3 and not advanced(server)
    assert "filter.ids" in server.requests[-1][1]


def test_a_large_watch_set_asks_what_changed_and_misses_an_update_posted_on_the_watermark_day(live, server):
    settled(live, "big", "2026-02-10")
    late = study(UNKNOWN / "2026-02-02.json")  # published late: dated the watermark day, after we looked
    late["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"] = "2026-02-10"
    late["protocolSection"]["statusModule"]["overallStatus"] = "RECRUITING"
    server.set_study(late)
    before = len(server.requests)
    report = live.cycle(trials=REAL + MANY, scope="big")
    assert report.complete, report.problems
    assert report.plan == "changes" and "1 change-query page registry-wide since 2026-02-10" in report.plan_reason
    asked = server.requests[before:]
    assert [p for p, q in asked] == ["/api/v2/version", "/api/v2/studies", "/api/v2/studies"]
    assert asked[1][1]["filter.advanced"] == ["AREA[LastUpdatePostDate]RANGE[2026-02-10,MAX]"]
    assert asked[2][1]["filter.ids"] == ["NCT06302556"], "only the trial whose date moved is fetched"
    assert [(r.key, r.status) for r in report.results] == [("NCT06302556", "changed")]
    assert not report.problems, "trials the change query does not mention are not reported missing"
    assert live.store.service.get_state(f"{WATERMARK}.big") == "2026-02-10"


def test_the_watermark_advances_and_an_unchanged_day_fetches_nothing(live, server, clock):
    clock.at = datetime(2025, 2, 18, tzinfo=UTC)
    settled(live, "big", "2025-02-16")
    report = live.cycle(trials=REAL + MANY, scope="big")
    assert report.plan == "changes" and report.results == [], report.problems
    assert report.complete, report.problems
    assert live.store.service.get_state(f"{WATERMARK}.big") == "2025-02-17", "the latest date the registry answered"
    server.set_study(study(OPENING / "2026-03-10.json"))
    clock.at = datetime(2026, 3, 11, tzinfo=UTC)
    live.store.service.set_state(f"ctgov.{LAST_FULL}.big", clock().isoformat())  # the weekly full refresh is not due
    report = live.cycle(trials=REAL + MANY, scope="big")
    assert report.plan == "changes", report.plan_reason
    assert advanced(server)[-1] == since_expression("2025-02-17")
    assert [(r.key, r.status) for r in report.results] == [("NCT06821503", "changed")]
    assert live.store.service.get_state(f"{WATERMARK}.big") == "2026-03-10"


@pytest.mark.parametrize("dated", ["9999-12-31", "2026-02-12"])
def test_a_record_dated_in_the_future_does_not_move_the_watermark(live, server, clock, dated):
    """A registry answer dated 9999-12-31 (today is 2026-02-11) used to become the watermark: every
    later change query asked from that day on and missed every change, silently."""
    settled(live, "big", "2026-02-10")
    odd = study(UNKNOWN / "2026-02-02.json")
    odd["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"] = dated
    server.set_study(odd)
    report = live.cycle(trials=REAL + MANY, scope="big")
    assert report.plan == "changes", report.plan_reason
    assert live.store.service.get_state(f"{WATERMARK}.big") == "2026-02-10"
    server.set_study(study(OPENING / "2026-03-10.json"))  # a real change, posted later
    clock.at = datetime(2026, 3, 11, tzinfo=UTC)
    live.store.service.set_state(f"ctgov.{LAST_FULL}.big", clock().isoformat())
    report = live.cycle(trials=REAL + MANY, scope="big")
    assert ("NCT06821503", "changed") in [(r.key, r.status) for r in report.results], report.problems
    assert live.store.service.get_state(f"{WATERMARK}.big") == "2026-03-10"


HOSTILE = [
    (b'{"studies": {}}', "studies: expected a list"),
    (b'{"studies": [{"protocolSection": {"identificationModule": {"nctId": "NCT06821503"}}}]}', "statusModule"),
    (
        b'{"studies": [{"protocolSection": {"identificationModule": {"nctId": "NCT06821503"}, "statusModule": '
        b'{"lastUpdatePostDateStruct": {"date": 20260210}}}}]}',
        "studies[0].protocolSection.statusModule.lastUpdatePostDateStruct.date: expected a string",
    ),
    (
        b'{"studies": [{"protocolSection": {"identificationModule": {"nctId": "NCT6821503"}, "statusModule": '
        b'{"lastUpdatePostDateStruct": {"date": "2026-02-10"}}}}]}',
        "identificationModule.nctId",
    ),
    (b'{"studies": [], "nextPageToken": 7}', "nextPageToken: expected a string"),
]


@pytest.mark.parametrize(("body", "path"), HOSTILE)
def test_a_change_answer_of_the_wrong_shape_is_refused_and_nothing_is_stored(live, server, body, path):
    settled(live, "big", "2026-02-03")
    counts = live.store.versions.counts()
    server.set_study(study(OPENING / "2026-03-10.json"))
    server.faults.append(Fault("/studies", body=body))
    report = live.cycle(trials=REAL + MANY, scope="big")
    assert not report.complete and report.plan == "changes"
    assert len(report.problems) == 1 and path in report.problems[0] and "nothing stored" in report.problems[0]
    assert live.store.versions.counts() == counts
    assert live.store.service.get_state(f"{WATERMARK}.big") == "2026-02-03", "the watermark stays: the next cycle asks again"
    with pytest.raises(ParseError) as refused:  # the same answer to the client: exit 2
        server.faults.append(Fault("/studies", body=body))
        changed_since(live.client, "2026-02-03")
    assert refused.value.exit_code == 2


@pytest.mark.parametrize(("paging", "says"), [("endless", "after 4 pages"), ("loop", "twice")])
def test_the_change_query_page_loop_is_bounded(server, paging, says):
    client = CtgovClient(server.url, politeness=Politeness(rate=0, retries=0), limits=Limits(max_pages=4))
    server.paging = paging
    with pytest.raises(SourceError, match=says):
        changed_since(client, "2026-01-01")
    assert server.count("/studies") <= 4
    client.close()


def test_the_change_query_keeps_the_saved_search_and_its_own_advanced_filter(server):
    client = CtgovClient(server.url, politeness=Politeness(rate=0, retries=0))
    found = changed_since(client, "2026-02-03", "query.cond=lupus")
    params = server.requests[-1][1]
    assert params["query.cond"] == ["lupus"] and params["pageSize"] == ["1000"]
    assert params["filter.advanced"] == ["AREA[LastUpdatePostDate]RANGE[2026-02-03,MAX]"]
    assert set(found) <= {"NCT06821503", "NCT06387628"}
    changed_since(client, "2026-02-03", "query.cond=lupus&filter.advanced=AREA[Phase]PHASE3")
    assert server.requests[-1][1]["filter.advanced"] == [
        "(AREA[Phase]PHASE3) AND AREA[LastUpdatePostDate]RANGE[2026-02-03,MAX]"
    ]
    client.close()


# --- the whole registry ------------------------------------------------------------------------


def versions(db) -> list[tuple[str, int]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT trial_key, count(*) FROM versions GROUP BY trial_key ORDER BY 1").fetchall()


ALL_ARGS = ("watch", "add", "--all", "--page-size", "1")


def monitor_all(db, server) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "--db", str(db), "--ctgov-url", server.url, "--rate", "0", *ALL_ARGS],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigterm_stops_the_first_load_of_the_whole_registry_and_the_next_run_resumes(server, tmp_path):
    db = tmp_path / "monitor.db"
    server.faults.append(Fault("/studies", hang=True, skip=1))  # the second page never comes
    process = monitor_all(db, server)
    deadline = time.monotonic() + 60
    while server.count("/studies") < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 143, err
    assert err.splitlines()[-1] == (
        "error: stopped by SIGTERM between two trials; what was stored stays: "
        "run `monitor watch add --all` again to resume"
    )
    assert versions(db) == [("NCT06302556", 1)], "the first page is stored, and only it"
    server.requests.clear()
    process = monitor_all(db, server)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "3 trials read" in out or "2 trials read" in out
    first = next(params for path, params in server.requests if path == "/api/v2/studies")
    assert first.get("pageToken") == ["1"], "the load resumes at the page it stopped in"
    assert versions(db) == [("NCT06302556", 1), ("NCT06387628", 1), ("NCT06821503", 1)]


def test_after_the_first_load_a_cycle_asks_only_what_changed_registry_wide(server, tmp_path, clock):
    client = CtgovClient(server.url, politeness=Politeness(rate=0, retries=0))
    live = Live(Store.open(f"sqlite:///{tmp_path / 'monitor.db'}"), client, now=clock)
    from monitor.live_registry import first_load

    report = first_load(live, CycleReport(), page_size=2)
    assert report.plan == "load" and report.probed == 3 and len(report.results) == 3
    assert live.store.service.get_state(WATERMARK) == "2025-02-17"
    newcomer = copy.deepcopy(study(OPENING / "2026-03-10.json"))
    newcomer["protocolSection"]["identificationModule"]["nctId"] = "NCT07000001"
    server.set_study(newcomer)
    clock.at = datetime(2026, 2, 12, tzinfo=UTC)  # the next day: the weekly reconciliation is not due
    report = live.cycle()
    assert report.plan == "changes", report.plan_reason
    assert sorted((r.key, r.status) for r in report.results) == [("NCT07000001", "new")]
    assert not any("filter.ids" in q and len(q["filter.ids"][0]) > 11 for _, q in server.requests[-3:])
    client.close()
    live.store.close()


def test_a_reconciliation_does_not_normalize_an_identical_record(live, server, monkeypatch):
    live.fetch(REAL)
    import monitor.checking as checking

    def refuse(*args, **kwargs):
        raise AssertionError("normalized an identical record")

    monkeypatch.setattr(checking, "ingest", refuse)
    report = live.fetch(REAL)
    assert {r.status for r in report.results} == {"unchanged"} and not report.problems
    assert all("same raw payload" in r.note for r in report.results)
    assert json.loads(live.store.versions.raw_payload("NCT06821503", 1))  # still the one stored version


def test_the_weekly_reconciliation_of_the_whole_registry_lists_ids_and_dates_and_reports_a_deleted_trial(
    server, tmp_path, clock, monkeypatch
):
    from monitor.live_registry import first_load

    client = CtgovClient(server.url, politeness=Politeness(rate=0, retries=0))
    live = Live(Store.open(f"sqlite:///{tmp_path / 'monitor.db'}"), client, now=clock)
    first_load(live, CycleReport(), page_size=2)
    counts = live.store.versions.counts()
    server.remove_study("NCT06302556")
    moved = study(OPENING / "2026-02-10.json")  # a status-only move: the same last-update date
    moved["protocolSection"]["statusModule"]["overallStatus"] = "SUSPENDED"
    server.set_study(moved)
    clock.at = datetime(2026, 2, 19, 12, tzinfo=UTC)  # eight days on: the full refresh (7 days) is due
    server.requests.clear()
    report = live.cycle()
    assert report.plan == "reconcile" and report.complete, report.problems
    listing = [q for p, q in server.requests if p == "/api/v2/studies" and "filter.ids" not in q]
    assert [(q["fields"], q["pageSize"]) for q in listing] == [(["NCTId,LastUpdatePostDate,OverallStatus"], ["1000"])]
    assert [r.key for r in report.results] == ["NCT06821503"], "only the trial whose status moved is fetched"
    assert report.problems == ["NCT06302556: not found on ClinicalTrials.gov (no longer in its listing)"]
    assert live.store.versions.counts()["versions"] == counts["versions"] + 1
    assert live.store.service.get_state(f"ctgov.{LAST_FULL}") == clock().isoformat()
    client.close()
    live.store.close()


def test_which_plan_ran_is_logged_and_in_the_cycle_line(live, server, caplog):
    from monitor.cycles import GroupOutcome

    live.fetch(REAL)
    live.store.service.set_state(f"ctgov.{LAST_FULL}.small", live.now().isoformat())
    with caplog.at_level("INFO", logger="monitor.live_plan"):
        report = live.cycle(trials=REAL, scope="small")
    assert "plan=ids: 1 probe request: no watermark yet (the first cycle)" in caplog.text
    assert GroupOutcome("lupus", plan=report.plan).line().endswith("seconds=0.00 plan=ids")


def test_a_load_page_with_one_record_of_the_wrong_shape_stores_the_others_and_names_it(server, tmp_path, monitor):
    """The bad record is refused with its path and never stored; the page's others are (the
    daemon's load of the whole registry refused that page whole every cycle: it never ended)."""
    good = study(OPENING / "2026-02-10.json")
    bad = copy.deepcopy(study(OPENING / "2026-02-10.json"))
    bad["protocolSection"]["identificationModule"]["nctId"] = "NCT09999999"
    bad["protocolSection"]["designModule"]["phases"] = "PHASE2"
    server.faults.append(Fault("/studies", body=json.dumps({"studies": [good, bad]}).encode()))
    run = monitor("--ctgov-url", server.url, "--rate", "0", "watch", "add", "--all")
    assert run.code == 2
    assert "NCT09999999: " in run.err and "studies[1].protocolSection.designModule.phases: expected a list" in run.err
    with sqlite3.connect(tmp_path / "monitor.db") as conn:
        assert conn.execute("SELECT DISTINCT trial_key FROM versions").fetchall() == [("NCT06821503",)]


def test_a_load_page_with_a_record_whose_id_cannot_be_read_stores_the_others_and_names_its_place(
    server, tmp_path, monitor
):
    good = study(OPENING / "2026-02-10.json")
    bad = copy.deepcopy(good)
    bad["protocolSection"]["identificationModule"]["nctId"] = 42
    server.faults.append(Fault("/studies", body=json.dumps({"studies": [good, bad]}).encode()))
    run = monitor("--ctgov-url", server.url, "--rate", "0", "watch", "add", "--all")
    assert run.code == 2
    assert "registry page 1 studies[1]: " in run.err
    assert "studies[1].protocolSection.identificationModule.nctId" in run.err
    with sqlite3.connect(tmp_path / "monitor.db") as conn:
        assert conn.execute("SELECT DISTINCT trial_key FROM versions").fetchall() == [("NCT06821503",)]


def test_a_full_refresh_reads_what_was_seen_a_bounded_number_of_times(live, server, monkeypatch):
    """The full refresh's watermark read `last_seen()` (two whole-table queries) once per watched
    trial: 10,000 watched trials were 20,000 queries of 10,000 rows each, every week."""
    live.fetch(REAL)
    calls = []
    real = WatchStore.last_seen
    monkeypatch.setattr(WatchStore, "last_seen", lambda self, *keys: calls.append(1) or real(self, *keys))
    server.data_timestamp += "moved"
    report = live.cycle(trials=REAL + MANY[:50], scope="full")  # no full refresh yet: this one is full
    assert report.complete, report.problems
    assert len(calls) <= 3, f"last_seen() read {len(calls)} times for {len(REAL) + 50} watched trials"


def test_after_a_full_refresh_the_watermark_is_the_day_of_the_registry_data_timestamp(live, server, clock):
    """A full refresh read every watched trial after /version answered: the next change query asks from
    that day, not from the latest record date (days or years older), so it stays one page."""
    server.data_timestamp = "2026-02-11T09:00:00"
    live.store.service.set_state(PER_DAY, "10")
    live.cycle(trials=REAL + MANY, scope="big")
    assert live.store.service.get_state(f"{WATERMARK}.big") == "2026-02-11"
    clock.at = datetime(2026, 2, 12, 12, tzinfo=UTC)
    server.data_timestamp = "2026-02-12T09:00:00"
    report = live.cycle(trials=REAL + MANY, scope="big")
    assert report.plan == "changes" and "since 2026-02-11" in report.plan_reason, report.plan_reason
    assert live.store.service.get_state(f"{WATERMARK}.big") == "2026-02-12"


def test_a_first_load_in_slices_keeps_the_day_it_started_as_its_watermark():
    from monitor.live_plan import stamp_day

    assert stamp_day("2026-02-11T09:00:00") == "2026-02-11"
    assert stamp_day("2026-02-11T09:00:00moved") == "2026-02-11"
    assert stamp_day("") is None and stamp_day(None) is None and stamp_day("soon") is None


def test_a_trial_newly_watched_in_a_large_group_is_fetched_though_the_change_query_does_not_answer_it(live, server):
    """The change query answers only trials updated since the watermark: a trial added to the watch set,
    last updated long before, used to wait for the weekly full refresh."""
    live.fetch(REAL[:2])
    live.store.service.set_state(f"ctgov.{LAST_FULL}.big", live.now().isoformat())
    live.store.service.set_state(f"{WATERMARK}.big", "2026-02-10")
    live.store.service.set_state(PER_DAY, "10")
    server.data_timestamp += "moved"
    report = live.cycle(trials=REAL + MANY, scope="big")
    assert report.plan == "changes", report.plan_reason
    assert (REAL[2], "new") in [(r.key, r.status) for r in report.results], report.problems
