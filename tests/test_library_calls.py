"""Every command is one library call a Python user can make: the calls behind
`monitor watch add|remove`, `fetch`, `backfill`, `status`, `run --once`,
`notify test|retry`, `deliveries` and `db upgrade|prune|export`, on a real SQLite
file and the local ClinicalTrials.gov replay server."""

from __future__ import annotations

import pytest

from monitor import maintenance, outbox, status, watching
from monitor.config import load_settings
from monitor.errors import IncompleteError, NotFoundError, UsageError
from monitor.live import CycleReport
from monitor.pipeline import load, utc_now
from monitor.store import Store

from conftest import OPENING, UNKNOWN, serve_history, study


@pytest.fixture
def settings(server, db_path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no config/monitor.yaml of the project's own
    return load_settings(
        None,
        {"database": str(db_path), "ctgov.base_url": server.url, "ctgov.rate": 0, "snapshots": str(tmp_path / "s")},
    )


@pytest.fixture
def store(settings):
    store = Store.open(settings.database)
    yield store
    store.close()


def test_watch_stores_the_trial_with_its_past_versions_and_says_what_it_did(store, settings, server):
    serve_history(server)
    report = watching.watch(store, settings, ["nct06821503"])
    assert [(r.key, r.status) for r in report.results] == [("NCT06821503", "unchanged")], "the history has it"
    assert report.backfilled == 2 and report.notes == [] and report.problems == []
    assert store.watches.watched_trials() == ["NCT06821503"]
    again = watching.watch(store, settings, ["NCT06821503"])
    assert again.notes == ["NCT06821503: already watched"]


def test_watch_of_a_saved_search_sets_its_baseline_and_watches_its_trials(store, settings):
    report = watching.watch(store, settings, queries=["query.cond=lung"], backfill=False)
    assert report.notes == ["query.cond=lung: 1 trial, watched from now on"]
    assert sorted(store.watches.members("query.cond=lung")) == [r.key for r in report.results]


def test_watch_of_a_trial_the_registry_does_not_have_adds_nothing(store, settings):
    with pytest.raises(NotFoundError, match=r"NCT09999999 is not on ClinicalTrials\.gov.*nothing was added"):
        watching.watch(store, settings, ["NCT06821503", "NCT09999999"])
    assert store.watches.watched_trials() == [] and store.versions.counts()["versions"] == 0


@pytest.mark.parametrize(
    ("keys", "queries", "error"),
    [
        (["NCT0682150"], [], "NCT0682150"),
        ([], ["no-equals-sign"], "no-equals-sign"),
        ([], [], "name trials or saved searches"),
    ],
)
def test_watch_refuses_a_bad_id_or_search_before_asking_anything(store, settings, server, keys, queries, error):
    asked = len(server.requests)
    with pytest.raises(UsageError, match=error):
        watching.watch(store, settings, keys, queries)
    assert len(server.requests) == asked and store.watches.watched_trials() == []


def test_unwatch_says_which_were_removed_and_which_were_not_watched(store, settings):
    watching.watch(store, settings, ["NCT06821503"], backfill=False)
    done = watching.unwatch(store, ["NCT06821503", "NCT06302556"])
    assert (done.removed, done.missing) == (["NCT06821503"], ["NCT06302556"])
    assert store.watches.watched_trials() == [] and store.versions.counts()["versions"] == 1, "the history stays"


def test_fetch_by_id_stores_the_trials_and_a_cycle_fetches_nothing_new(store, settings, server):
    report = watching.fetch(store, settings, ["NCT06821503", "NCT06302556"])
    assert sorted(r.key for r in report.results) == ["NCT06302556", "NCT06821503"]
    watching.check_fetched(report, ["NCT06821503", "NCT06302556"])
    store.watches.add_watch("trial", "NCT06821503", utc_now())
    cycle = watching.fetch(store, settings)
    assert [r.status for r in cycle.results if r.status != "unchanged"] == []


def test_check_fetched_names_what_was_not_stored_and_an_incomplete_cycle():
    with pytest.raises(watching.FetchError, match=r"^not stored: NCT06302556; the reason is above"):
        watching.check_fetched(CycleReport(), ["NCT06302556", "nct06302556"])
    with pytest.raises(IncompleteError, match="could not finish"):
        watching.check_fetched(CycleReport(complete=False))


def test_backfill_yields_each_trial_with_the_versions_it_added(store, settings, server):
    serve_history(server)
    watching.fetch(store, settings, ["NCT06821503"])
    assert dict(watching.backfill(store, settings, ["NCT06821503"])) == {"NCT06821503": 1}
    assert [v.number for v in store.versions.history("NCT06821503")] == [1, 2]


def test_status_reports_the_daemon_counts_and_trial_errors_as_plain_values(store, settings):
    load(store, [UNKNOWN / "2026-02-02.json", UNKNOWN / "2026-03-02.json"])
    report = status.status(store, settings)
    assert report["daemon"] == {"running": False}
    assert report["trials_stored"] == 1 and report["changes_24h"]["total"] >= 1
    assert report["deliveries"] == {"pending": 0, "failed": 0}
    text = status.status_text(report)
    assert text.splitlines()[1] == "daemon          not running"
    assert "trials          0 watched, 1 stored" in text


def test_outcome_dicts_is_what_run_once_prints_as_json(store, tmp_path):
    from monitor.daemon import run_once

    config = tmp_path / "monitor.yaml"
    config.write_text(f"watches:\n  - name: unknown\n    source: files\n    snapshots: [{UNKNOWN}]\n")
    (outcome,) = status.outcome_dicts(run_once(store, load_settings(str(config))))
    assert (outcome["group"], outcome["complete"], outcome["problems"]) == ("unknown", True, [])
    assert [(r["trial"], r["status"]) for r in outcome["results"]] == [("NCT06302556", "new"), ("NCT06302556", "changed")]
    assert outcome["line"].startswith("cycle group=unknown ") and " new=1 changed=1 " in outcome["line"]


def test_the_delivery_ledger_and_retry_need_no_route_when_nothing_is_pending(store, settings):
    assert outbox.ledger(store) == []
    queued, report = outbox.retry(store, settings)
    assert (queued, report.sent, report.failed) == (0, 0, 0)
    with pytest.raises(outbox.DeliveryError, match="no notification routes are configured"):
        outbox.test_routes(settings)


def test_db_maintenance_upgrades_prunes_and_exports(store, settings, tmp_path):
    load(store, [OPENING / "2026-02-10.json", OPENING / "2026-03-10.json"])
    before, after = maintenance.upgrade_schema(settings.database)
    assert before == after, "a store opened by this version is at the head already"
    total, written, root = maintenance.export_raw(store, tmp_path / "archive")
    assert (total, written, root) == (2, 2, tmp_path / "archive")
    assert maintenance.prune_raw(store, 1) == 1
    assert maintenance.export_raw(store, tmp_path / "archive")[:2] == (1, 0)
    with pytest.raises(UsageError, match="keep_raw_versions is 0"):
        maintenance.prune_raw(store, 0)
    with pytest.raises(UsageError, match="give a folder"):
        maintenance.export_raw(store, " ")


def test_a_stopped_registry_load_is_incomplete_and_resumable(store, settings):
    with pytest.raises(IncompleteError, match="watch add --all` again to resume"):
        watching.watch_registry(store, settings, page_size=1, should_stop=lambda: True)
    assert study(OPENING / "2026-02-10.json")  # the fixtures are untouched


def test_compare_live_compares_the_registry_now_with_the_stored_version_and_stores_nothing(store, settings, server):
    watching.fetch(store, settings, ["NCT06821503"])
    server.set_study(study(OPENING / "2026-03-10.json"))
    comparison = watching.compare_live(store, settings, "nct06821503")
    assert comparison.changes and store.versions.counts()["versions"] == 1
