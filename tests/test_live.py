"""Following live trials, against a real HTTP server on 127.0.0.1 that answers like
ClinicalTrials.gov from recorded records.  Every fault test checks what is stored
afterwards, not just that nothing raised."""

from __future__ import annotations

import copy
import json

import pytest

from monitor.archive import SnapshotArchive
from monitor.errors import SourceError
from monitor.live import LAST_FULL, Live
from monitor.sources.ctgov import CtgovClient, Politeness, TokenBucket
from monitor.store import Store

from conftest import NOISE, OPENING, UNKNOWN, Sleeps, serve_history, study
from ctgov_server import Fault


@pytest.fixture
def live(server, store_url, tmp_path, sleeps):
    client = CtgovClient(
        server.url, politeness=Politeness(rate=0, retries=3, backoff=1.0, timeout=2.0), sleep=sleeps, jitter=lambda: 1.0
    )
    live = Live(Store.open(store_url), client, SnapshotArchive(tmp_path / "snapshots"))
    yield live
    client.close()
    live.store.close()


def watch(live: Live, *keys: str) -> None:
    from monitor.clock import utc_now

    for key in keys:
        live.store.watches.add_watch("trial", key, utc_now())


ALL = ("NCT06821503", "NCT06302556", "NCT06387628")


# --- the cycle and what it costs --------------------------------------------------------


def test_first_cycle_fetches_every_watched_trial_in_one_batch(live, server):
    watch(live, *ALL)
    report = live.cycle()
    assert sorted(r.key for r in report.results) == sorted(ALL)
    assert {r.status for r in report.results} == {"new"}
    assert report.requests == 2, "the version, then one page of full records"
    (path, params) = server.requests[-1]
    assert path == "/api/v2/studies" and sorted(params["filter.ids"][0].split(",")) == sorted(ALL)
    assert live.store.versions.counts()["versions"] == 3
    assert len(live.archive.files("NCT06821503")) == 1


def test_a_cycle_when_the_registry_has_not_changed_is_one_request_and_writes_nothing(live, server):
    watch(live, *ALL)
    live.cycle()
    before = live.store.versions.counts()
    report = live.cycle()
    assert report.skipped and report.requests == 1
    assert server.requests[-1][0] == "/api/v2/version"
    assert live.store.versions.counts() == before


def test_when_the_registry_moved_but_our_trials_did_not_only_the_probe_is_added(live, server):
    watch(live, *ALL)
    live.cycle()
    before = live.store.versions.counts()
    server.data_timestamp = "2026-01-02T00:00:00"
    report = live.cycle()
    assert report.requests == 2 and report.probed == 3 and report.fetched == 0
    assert server.requests[-1][1]["fields"] == ["NCTId,LastUpdatePostDate,OverallStatus"]
    assert live.store.versions.counts() == before


def test_a_changed_trial_is_fetched_alone_and_its_changes_stored(live, server):
    watch(live, *ALL)
    live.cycle()
    server.set_study(study(OPENING / "2026-03-10.json"))
    report = live.cycle()
    assert report.requests == 3, "version, probe, one page with the changed trial"
    assert server.requests[-1][1]["filter.ids"] == ["NCT06821503"]
    (result,) = report.results
    assert result.status == "changed" and result.version == 2
    assert result.changes[0].summary == "Overall status NOT_YET_RECRUITING -> RECRUITING"
    assert [v.number for v in live.store.versions.history("NCT06821503")] == [1, 2]


def test_a_record_turned_unknown_without_a_new_date_is_caught_by_the_probe(live, server):
    watch(live, *ALL)
    live.cycle()
    server.set_study(study(UNKNOWN / "2026-03-02.json"))  # same last-update date, status UNKNOWN
    report = live.cycle()
    assert [r.key for r in report.results] == ["NCT06302556"]
    assert report.results[0].changes[-1].summary == "Overall status NOT_YET_RECRUITING -> UNKNOWN"


def test_a_redated_record_with_nothing_new_is_fetched_once_and_not_news(live, server):
    watch(live, *ALL)
    live.cycle()
    redated = study(OPENING / "2026-02-10.json")
    redated["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"] = "2026-02-20"
    server.set_study(redated)
    (result,) = live.cycle().results
    assert result.status == "unchanged"
    server.data_timestamp += "!"
    assert live.cycle().fetched == 0, "the new date was remembered: no second fetch"
    assert live.store.versions.counts()["versions"] == 3


def test_the_user_agent_names_registry_monitor(live, server):
    import monitor

    assert live.client.http.headers["User-Agent"].startswith(f"registry-monitor/{monitor.__version__}")


# --- politeness and faults ---------------------------------------------------------------


def test_429_with_retry_after_is_honoured_and_then_stored(live, server, sleeps):
    watch(live, "NCT06821503")
    server.faults.append(Fault("/api/v2/studies", status=429, retry_after="7"))
    report = live.cycle()
    assert report.complete and report.results[0].status == "new"
    assert sleeps == [7.0]


def test_server_errors_are_retried_with_growing_jittered_backoff(live, server, sleeps):
    watch(live, "NCT06821503")
    server.faults.append(Fault("/api/v2/studies", status=503, times=2))
    report = live.cycle()
    assert report.complete and live.store.versions.counts()["versions"] == 1
    assert sleeps == [1.0, 2.0]


def test_a_timeout_is_retried(live, server):
    watch(live, "NCT06821503")
    server.faults.append(Fault("/api/v2/studies", status=200, delay=3.0, truncate=False, body=None))
    report = live.cycle()
    assert report.complete and live.store.versions.counts()["versions"] == 1
    assert server.count("/api/v2/studies") == 2


@pytest.mark.parametrize(
    "fault",
    [
        Fault("/api/v2/studies", status=200, truncate=True, times=10),
        Fault("/api/v2/studies", status=200, body=b"<html><body>Service Unavailable</body></html>", times=10),
        Fault("/api/v2/studies", status=500, times=10),
    ],
    ids=["truncated_json", "html_error_page", "persistent_500"],
)
def test_a_failed_cycle_records_no_false_change_and_the_next_one_recovers(live, server, fault):
    watch(live, *ALL)
    live.cycle()
    server.set_study(study(OPENING / "2026-03-10.json"))
    before = live.store.versions.counts()
    server.faults.append(fault)
    report = live.cycle()
    assert not report.complete
    assert report.problems[-1].startswith("ClinicalTrials.gov: ClinicalTrials.gov did not answer")
    assert live.store.versions.counts() == before
    assert live.store.versions.latest_version("NCT06821503").number == 1
    server.faults.clear()
    (result,) = live.cycle().results
    assert result.status == "changed" and live.store.versions.latest_version("NCT06821503").number == 2


def test_one_refused_id_does_not_sink_its_batch_and_is_reported_once(live, server):
    watch(live, *ALL, "NCT00000001")
    server.refused = {"NCT00000001"}
    report = live.cycle()
    assert sorted(r.key for r in report.results) == sorted(ALL)
    assert report.problems == ["NCT00000001: refused by ClinicalTrials.gov (invalid NCT id NCT00000001)"]
    server.data_timestamp += "!"
    assert live.cycle().problems == [], "reported once"


def test_an_unknown_trial_is_reported_once_and_the_rest_carry_on(live, server):
    watch(live, "NCT06821503", "NCT09999999")
    report = live.cycle()
    assert [r.key for r in report.results] == ["NCT06821503"]
    assert report.problems == ["NCT09999999: not found on ClinicalTrials.gov"]
    server.data_timestamp += "!"
    assert live.cycle().problems == []


def test_a_server_that_cannot_be_reached_is_a_clear_error(db_path, sleeps):
    client = CtgovClient(
        "http://127.0.0.1:9/api/v2", politeness=Politeness(rate=0, retries=1, backoff=0.01), sleep=sleeps
    )
    with pytest.raises(SourceError, match=r"did not answer http://127.0.0.1:9/api/v2/version after 2 tries: conn"):
        client.data_timestamp()


def test_the_token_bucket_spaces_requests_at_the_rate():
    clock = [0.0]
    waits = Sleeps()

    def sleep(seconds):
        waits.append(seconds)
        clock[0] += seconds

    bucket = TokenBucket(rate=2.0, burst=1, clock=lambda: clock[0], sleep=sleep)
    for _ in range(4):
        bucket.take()
    assert waits == [0.5, 0.5, 0.5]


# --- history backfill -----------------------------------------------------------------------


def test_backfill_stores_past_versions_in_date_order_before_the_current_one(live, server):
    serve_history(server)
    server.set_study(study(OPENING / "2026-03-10.json"))
    watch(live, "NCT06821503")
    live.cycle()
    assert live.store.versions.counts()["versions"] == 1
    assert live.backfill("NCT06821503") == 2
    history = live.store.versions.history("NCT06821503")
    assert [v.date for v in history] == ["2025-01-10", "2025-02-17", "2026-03-10"]
    assert history[1].changes[0].summary == "Enrollment raised 40 -> 72 (+32, ESTIMATED)"
    assert history[2].changes[0].summary == "Overall status NOT_YET_RECRUITING -> RECRUITING"
    assert live.backfill("NCT06821503") == 0, "a second backfill adds nothing"


@pytest.mark.parametrize(
    "body",
    [b'{"versions": []}', b'{"changes": [{"version": "one", "date": "yesterday"}]}', b"<html>moved</html>"],
    ids=["renamed_key", "wrong_types", "not_json"],
)
def test_an_unexpected_history_shape_fails_closed_and_the_trial_is_still_watched(live, server, body):
    server.history["NCT06821503"] = []
    server.faults.append(Fault("/api/int/studies/NCT06821503/history", status=200, body=body, times=10))
    watch(live, "NCT06821503")
    live.store.watches.set_backfill("NCT06821503", "pending")
    report = live.cycle()
    assert report.problems and "version history unavailable" in report.problems[0]
    assert live.store.watches.backfill_state("NCT06821503") == "failed"
    assert [r.key for r in report.results] == ["NCT06821503"], "the current record is still fetched"


# --- saved searches ------------------------------------------------------------------------


def test_trials_entering_and_leaving_a_saved_search_are_events_and_entering_ones_are_watched(live, server):
    from monitor.clock import utc_now

    query = "query.cond=lung"
    live.store.watches.add_watch("query", query, utc_now())
    first = live.cycle()
    assert first.membership == [], "the first run sets the baseline"
    baseline = set(live.store.watches.members(query))
    assert baseline and baseline <= set(live.store.watches.watched_trials())
    newcomer = copy.deepcopy(study(NOISE / "2026-02-03.json"))
    newcomer["protocolSection"]["identificationModule"]["nctId"] = "NCT07777777"
    newcomer["protocolSection"]["conditionsModule"]["conditions"] = ["Lung Cancer"]
    # it enters the search through an update, posted today (after the data timestamp the first cycle read)
    newcomer["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"] = utc_now().date().isoformat()
    server.set_study(newcomer)
    leaver = sorted(baseline)[0]
    server.remove_study(leaver)
    report = live.cycle()  # between full refreshes: the change query within the search
    events = {(key, e.change.value) for key, e in report.membership}
    assert events == {("NCT07777777", "added")}, "a trial leaving is seen by the full refresh (below)"
    entered = next(e for k, e in report.membership if k == "NCT07777777")
    assert entered.category.value == "membership"
    assert entered.summary.startswith("Entered saved search 'query.cond=lung': ")
    assert "NCT07777777" in live.store.watches.watched_trials()
    assert "NCT07777777" in {r.key for r in report.results}
    assert [e.summary for e in live.store.versions.events("NCT07777777")] == [entered.summary]
    live.store.service.set_state(f"ctgov.{LAST_FULL}", "2000-01-01T00:00:00+00:00")  # the full refresh is due
    refresh = live.cycle()  # pages the search in full
    assert {(key, e.change.value) for key, e in refresh.membership} == {(leaver, "removed")}


# --- the commands ------------------------------------------------------------------------------


@pytest.fixture
def live_cli(monitor, server, tmp_path):
    def run(*args):
        return monitor("--ctgov-url", server.url, "--rate", "0", "--snapshots", tmp_path / "archive", *args)

    return run


def test_watch_add_backfills_fetches_and_lists(live_cli, server, db_path):
    server.history["NCT06821503"] = [study(OPENING / "2026-02-10.json")]
    server.set_study(study(OPENING / "2026-03-10.json"))
    run = live_cli("watch", "add", "NCT06821503", "--query", "query.cond=lung", "--format", "json")
    assert run.code == 0, run.err
    results = {r["trial"]: r for r in json.loads(run.out.split("\n", 1)[1])["results"]}
    assert results["NCT06821503"]["status"] == "changed", "history first, then the current record"
    assert "NCT06302556" in results, "the saved search's trials are fetched"
    listing = live_cli("watch", "list").out
    assert "\nNCT06821503  " in listing and "query  query.cond=lung  (1 trial)" in listing
    history = json.loads(live_cli("history", "NCT06821503", "--format", "json").out)
    assert [v["date"] for v in history["versions"]] == ["2025-02-17", "2026-03-10"]


def test_fetch_without_ids_runs_one_cycle(live_cli, server):
    live_cli("watch", "add", "NCT06821503", "--no-backfill")
    assert "1 record: 1 unchanged" in live_cli("fetch").out, "the first cycle fetches everything in full"
    assert "has not changed since the last cycle" in live_cli("fetch").out
    server.set_study(study(OPENING / "2026-03-10.json"))
    run = live_cli("fetch", "--exit-code")
    assert run.code == 1
    assert "NCT06821503      changed   v2" in run.out


def test_diff_live_compares_the_registry_with_the_store_and_stores_nothing(live_cli, server):
    live_cli("fetch", "NCT06821503")
    server.set_study(study(OPENING / "2026-03-10.json"))
    run = live_cli("diff", "NCT06821503", "--live", "--format", "json")
    assert run.code == 0
    data = json.loads(run.out)
    assert data["old"]["version"] == 1 and data["new"]["version"] is None
    assert data["changes"][0]["summary"] == "Overall status NOT_YET_RECRUITING -> RECRUITING"
    assert json.loads(live_cli("history", "NCT06821503", "--format", "json").out)["versions"][-1]["version"] == 1


def test_watch_remove_keeps_the_history(live_cli):
    live_cli("watch", "add", "NCT06821503", "--no-backfill")
    assert live_cli("watch", "remove", "NCT06821503").out == "NCT06821503: no longer watched\n"
    assert "nothing is watched" in live_cli("watch", "list").out
    assert live_cli("history", "NCT06821503").code == 0
    missing = live_cli("watch", "remove", "NCT06821503")
    assert missing.code == 2 and missing.err.startswith("error: NCT06821503 was not watched")


def test_an_unreachable_registry_is_one_error_line_and_the_store_is_untouched(monitor, db_path, tmp_path):
    monitor("load", OPENING / "2026-02-10.json")
    before = db_path.read_bytes()
    run = monitor("--ctgov-url", "http://127.0.0.1:9/api/v2", "--retries", "0", "diff", "NCT06821503", "--live")
    assert run.code == 2
    assert run.err.startswith(
        "error: ClinicalTrials.gov did not answer http://127.0.0.1:9/api/v2/studies/NCT06821503 after 1 try: connection"
    )
    assert run.err.count("\n") == 1
    assert db_path.read_bytes() == before


def test_a_bad_saved_search_is_refused_before_anything_is_stored(live_cli, db_path):
    run = live_cli("watch", "add", "--query", "pageSize=5")
    assert run.code == 2
    assert (
        run.err
        == "error: 'pageSize=5': pageSize is not a search parameter (use query.*, filter.*, postFilter.*, aggFilters)\n"
    )
    assert not db_path.exists()


def test_verbose_logging_names_each_retry_and_its_wait(live, server, sleeps, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="monitor.sources.ctgov")
    watch(live, "NCT06821503")
    server.faults.append(Fault("/api/v2/studies", status=429, retry_after="7"))
    live.cycle()
    assert "HTTP 429 from the registry, waiting 7 s (retry 1 of 3)" in caplog.messages


def test_a_backfill_whose_first_trial_has_a_bad_past_version_still_backfills_the_others(live_cli, server):
    """One bad trial never stops the others: the first trial's history failing stopped the
    command there, and the trials after it were never asked for."""
    live_cli("fetch", "NCT06821503", "NCT06302556")
    bad = copy.deepcopy(study(OPENING / "2026-02-10.json"))
    bad["protocolSection"]["identificationModule"]["briefTitle"] = 999
    server.history["NCT06821503"] = [bad]
    older = copy.deepcopy(study(UNKNOWN / "2026-02-02.json"))
    older["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"] = "2020-01-01"
    older["protocolSection"]["identificationModule"]["briefTitle"] = "An older title"
    server.history["NCT06302556"] = [older]
    run = live_cli("backfill", "NCT06821503", "NCT06302556")
    assert run.code == 2
    assert "identificationModule.briefTitle: expected a string, got the number 999" in run.err
    assert "NCT06302556: 1 past version added" in run.out, "the trial after the bad one is backfilled"
    assert run.err.count("error: ") == 1 and "NCT06821503" in run.err.splitlines()[-1]
