"""Bounded memory for big cycles and loads: the first LISTED results in full, the rest counted
(monitor.results), and every report still tells the true totals."""

from __future__ import annotations

import json
import pickle

import pytest

from monitor import live as live_module
from monitor import results as results_module
from monitor.checking import Result
from monitor.config import CtgovSettings, Settings, WatchGroup, parse_schedule
from monitor.cycles import run_group
from monitor.live import Live
from monitor.render import render
from monitor.results import Results
from monitor.sources.ctgov import CtgovClient, Politeness
from monitor.store import Store

from conftest import NOISE, OPENING, study


def result(key: str, status: str = "new") -> Result:
    return Result(key, f"title of {key}", status, 1, "file.json")


def test_results_past_the_limit_are_counted_not_kept():
    found = Results([result(f"NCT0000000{i}", "new" if i % 2 else "unchanged") for i in range(7)], limit=3)
    assert [r.key for r in found] == ["NCT00000000", "NCT00000001", "NCT00000002"]
    assert (found.total, found.unlisted, found.count_of("new"), found.count_of("unchanged")) == (7, 4, 3, 4)
    assert found.keys == {f"NCT0000000{i}" for i in range(7)}
    assert found.stored == {f"NCT0000000{i}" for i in (1, 3, 5)}
    assert found.note() == "note: 4 more results not listed here"


def test_results_pickle_whole():
    found = Results([result(f"NCT0000000{i}") for i in range(5)], limit=2)
    back = pickle.loads(pickle.dumps(found))
    assert (list(back), back.total, back.count_of("new"), back.keys, back.limit) == (found, 5, 5, found.keys, 2)


def test_results_that_keep_no_keys_count_and_list_as_others_do():
    found = Results([result(f"NCT0000000{i}", "new" if i % 2 else "unchanged") for i in range(7)], limit=3, keyed=False)
    assert (found.total, found.unlisted, found.count_of("new"), found.keys, found.stored) == (7, 4, 3, None, None)
    back = pickle.loads(pickle.dumps(found.succeeded()))
    assert (back.total, back.keys) == (7, None)
    keyed = Results([result("NCT00000009")])
    with pytest.raises(ValueError, match="keep no keys"):
        keyed.extend(found)


def test_the_whole_registrys_one_shot_load_keeps_no_key_of_the_trials_it_reports(server, tmp_path):
    """Nothing asks which trials `watch add --all` stored: at 570,000 their keys were about 100 MB."""
    from monitor.watching import watch_registry

    settings = Settings(database=f"sqlite:///{tmp_path / 'monitor.db'}", ctgov=CtgovSettings(base_url=server.url, rate=0))
    store = Store.open(settings.database)
    report = watch_registry(store, settings, page_size=1)
    assert (report.results.total, report.results.count_of("new"), report.results.keys) == (3, 3, None)
    assert len(store.versions.latest_heads()) == 3
    store.close()


def test_every_failure_is_listed_past_the_limit():
    found = Results([result("NCT00000001"), result("NCT00000002"), result("NCT00000003", "failed")], limit=1)
    assert [r.status for r in found] == ["new", "failed"]
    assert [r.key for r in found.succeeded()] == ["NCT00000001"]
    assert (found.succeeded().total, found.succeeded().count_of("failed")) == (2, 0)


def test_results_added_to_results_keep_the_unlisted_counts():
    whole = Results(limit=2)
    whole += Results([result("NCT00000001"), result("NCT00000002", "changed"), result("NCT00000003")], limit=1)
    whole += [result("NCT00000004", "unchanged")]
    assert (whole.total, len(whole), whole.count_of("new", "changed")) == (4, 2, 3)
    assert whole.keys == {"NCT00000001", "NCT00000002", "NCT00000003", "NCT00000004"}


def test_a_report_of_capped_results_says_so_and_counts_them_all():
    found = Results([result(f"NCT0000000{i}") for i in range(5)], limit=2)
    text = render("results", "text", found)
    assert "note: 3 more results not listed here" in text
    assert text.endswith("5 records: 5 new")
    data = json.loads(render("results", "json", found))
    assert (data["counts"], data["unlisted"], len(data["results"])) == ({"new": 5}, 3, 2)


def test_a_cycle_counts_every_trial_it_stored_and_lists_the_first(tmp_path, monkeypatch):
    monkeypatch.setattr(results_module, "LISTED", 2)
    text = (OPENING / "2026-02-10.json").read_text()
    folder = tmp_path / "in"
    folder.mkdir()
    keys = [f"NCT9000000{i}" for i in range(5)]
    for key in keys:
        (folder / f"{key}.json").write_text(text.replace("NCT06821503", key))
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    group = WatchGroup("files", parse_schedule("every 1 hour"), snapshots=(str(folder),))
    outcome = run_group(store, Settings(), group)
    assert (len(outcome.results), outcome.count("new"), outcome.fetched) == (2, 5, 5)
    assert " new=5 " in outcome.line()
    assert outcome.results.stored == set(keys)  # the expected-event rules see every stored trial
    store.close()


def test_a_fetch_marks_its_trials_seen_in_chunks_not_all_at_its_end(server, store_url, sleeps, monkeypatch):
    monkeypatch.setattr(live_module, "SEEN_CHUNK", 2)
    client = CtgovClient(server.url, politeness=Politeness(rate=0, retries=3, timeout=2.0), sleep=sleeps)
    live = Live(Store.open(store_url), client)
    keys = ["NCT06821503", "NCT06302556", "NCT06387628"]
    for key in keys:
        live.store.watches.add_watch("trial", key, live.now())
    marked = []
    mark = live.store.watches.mark_seen_many
    monkeypatch.setattr(live.store.watches, "mark_seen_many", lambda seen: marked.append(len(seen)) or mark(seen))
    report = live.cycle()
    assert report.results.count_of("new") == 3
    assert marked == [2, 1]  # never more than a chunk of seen keys held
    assert set(live.store.watches.last_seen()) == set(keys)
    client.close()
    live.store.close()


def test_a_page_of_studies_is_let_go_as_its_studies_are_handed_on():
    page = [study(OPENING / "2026-02-10.json"), study(next(NOISE.glob("*.json")))]
    keys = [s["protocolSection"]["identificationModule"]["nctId"] for s in page]
    client = CtgovClient("http://127.0.0.1:9")
    handed = client._only_asked(keys, page, None)
    assert next(handed)["protocolSection"]["identificationModule"]["nctId"] == keys[0]
    assert page == []  # the page list no longer holds the studies: each goes once it is stored
    assert [s["protocolSection"]["identificationModule"]["nctId"] for s in handed] == keys[1:]
    client.close()


def test_fetch_exit_code_counts_a_change_past_the_listed_results(monitor, server, tmp_path, monkeypatch):
    monkeypatch.setattr(results_module, "LISTED", 1)

    def fetch(*args):
        return monitor("--ctgov-url", server.url, "--rate", "0", "--snapshots", tmp_path / "archive", "fetch", *args)

    assert fetch("NCT06302556", "NCT06821503").code == 0
    server.set_study(study(OPENING / "2026-03-10.json"))  # NCT06821503 changes, NCT06302556 does not
    run = fetch("NCT06302556", "NCT06821503", "--exit-code")
    assert "2 records: 1 changed, 1 unchanged" in run.out, run.out
    assert "note: 1 more results not listed here" in run.out
    assert run.code == 1, "a change, listed or not, is a change"


def test_run_once_in_json_counts_every_result_and_says_how_many_are_not_listed(tmp_path, cli, monkeypatch):
    monkeypatch.setattr(results_module, "LISTED", 2)
    text = (OPENING / "2026-02-10.json").read_text()
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(5):
        (folder / f"NCT9000000{i}.json").write_text(text.replace("NCT06821503", f"NCT9000000{i}"))
    config = tmp_path / "monitor.yaml"
    config.write_text(f"database: {tmp_path / 'monitor.db'}\nwatches:\n  - name: files\n    snapshots: [{folder}]\n")
    run = cli("--config", config, "run", "--once", "--format", "json")
    assert run.code == 0, run.err
    (group,) = json.loads(run.out)
    assert len(group["results"]) == 2
    assert (group["counts"], group["unlisted"]) == ({"new": 5}, 3), "a JSON reader can tell the list is capped"
