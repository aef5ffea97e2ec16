"""The per-trial path (monitor/checking.py): every way in (a file load, a registry fetch
or cycle, a backfill, the daemon, the CLI) stores each trial through one operation
inside one boundary.  Whatever goes wrong with one trial is recorded for that trial,
where `monitor status` shows it, and its neighbours are stored; a file of the wrong
shape is still refused before anything is stored."""

from __future__ import annotations

import ast
import copy
import json
import shutil
import sys
from datetime import UTC, datetime

import pytest
import toy_source
from toy_source import ToySource, publish

import monitor.sources.files
from monitor.checking import Checker
from monitor.live import Live
from monitor.pipeline import load
from monitor.prepare import Prepared
from monitor.sources.base import Changed
from monitor.sources.ctgov import CtgovClient, Politeness
from monitor.sources.files import Payload
from monitor.sources.registry import SOURCES
from monitor.store import Store

from conftest import OPENING, ROOT, UNKNOWN, serve_history, study

sys.setrecursionlimit(max(sys.getrecursionlimit(), 5000))  # the import graph's depth-first search

NOW = datetime(2026, 3, 20, tzinfo=UTC)
ALL = ("NCT06821503", "NCT06302556", "NCT06387628")
BAD = "NCT06302556"


@pytest.fixture
def live(server, store_url, tmp_path):
    client = CtgovClient(server.url, politeness=Politeness(rate=0, retries=0))
    live = Live(Store.open(store_url), client, now=lambda: NOW)
    yield live
    client.close()
    live.store.close()


def errors(store: Store) -> dict[str, str]:
    return {key: message for key, message, _ in store.watches.trial_errors()}


def normalize_fails_for(monkeypatch, key: str, when=lambda study: True) -> None:
    """A bug in the normalizer that only one trial's record (``when`` it holds) runs into."""
    real = monitor.sources.files.normalize_study

    def normalize_study(data):
        if data["protocolSection"]["identificationModule"]["nctId"] == key and when(data):
            raise RuntimeError("boom")
        return real(data)

    monkeypatch.setattr(monitor.sources.files, "normalize_study", normalize_study)


def test_a_bug_in_one_trials_normalize_during_a_registry_cycle_is_that_trials_problem(live, monkeypatch):
    for key in ALL:
        live.store.watches.add_watch("trial", key, NOW)
    normalize_fails_for(monkeypatch, BAD)
    report = live.cycle()
    assert sorted(r.key for r in report.results) == ["NCT06387628", "NCT06821503"]
    assert {key: live.store.versions.latest_head(key) is not None for key in ALL} == {
        "NCT06821503": True,
        "NCT06302556": False,
        "NCT06387628": True,
    }
    problem = "unexpected error (RuntimeError: boom); not stored, see the log"
    assert errors(live.store) == {BAD: problem}
    assert report.problems == [f"{BAD}: {problem}"] and report.complete
    again = live.fetch(list(ALL))
    assert again.problems == [], "a problem already recorded is reported once"


def test_a_bug_in_one_trials_normalize_during_a_backfill_is_that_trials_problem(live, server, monkeypatch):
    serve_history(server)  # NCT06821503: a made-up 2025-01-10 version, then the recorded one
    current = study(UNKNOWN / "2026-02-02.json")
    older = copy.deepcopy(current)
    older["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"] = "2025-01-10"
    server.history[BAD] = [older, current]
    for key in ("NCT06821503", BAD):
        live.store.watches.add_watch("trial", key, NOW)
        live.store.watches.set_backfill(key, "pending")

    def past(data):
        return data["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"] == "2025-01-10"

    normalize_fails_for(monkeypatch, BAD, when=past)  # only its past version trips the bug
    report = live.cycle()
    assert live.store.versions.history("NCT06821503")[0].date == "2025-01-10", "the neighbour's history is stored"
    assert live.store.watches.backfill_state("NCT06821503") == "done"
    problem = "backfill failed unexpectedly (RuntimeError: boom); see the log"
    assert errors(live.store) == {BAD: problem}
    assert report.problems == [f"{BAD}: {problem}"]
    assert live.store.versions.latest_head(BAD) is not None, "its current record is still stored"
    assert live.store.watches.backfill_state(BAD) == "pending", "tried again next cycle"
    assert live.cycle().problems == [], "and reported once"
    assert errors(live.store) == {BAD: problem}


def test_a_bug_in_one_toy_trials_normalize_is_that_trials_problem(monkeypatch, tmp_path):
    monkeypatch.setitem(SOURCES, "toy", ToySource)
    monkeypatch.setattr(toy_source, "SERVED", {})
    monkeypatch.setattr(toy_source, "UPDATED", {})
    monkeypatch.setattr(toy_source, "DAY", [1])
    real = toy_source.normalize_toy
    monkeypatch.setattr(toy_source, "normalize_toy", lambda raw: 1 / 0 if "TOY-0002" in raw else real(raw))
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    for key in ("TOY-0001", "TOY-0002", "TOY-0003"):
        publish(key, f"Toy {key}", "RECRUITING", "2026-02-01", day=2)
        store.watches.add_watch("trial", key, NOW)
    report = Live(store, ToySource(), now=lambda: NOW).cycle()
    assert [r.key for r in report.results] == ["TOY-0001", "TOY-0003"]
    assert list(errors(store)) == ["TOY-0002"]
    assert "ZeroDivisionError" in errors(store)["TOY-0002"]
    store.close()


def test_a_bug_in_one_trials_diff_during_a_file_load_is_a_failed_result_and_the_others_are_stored(
    monkeypatch, monitor, db_path
):
    assert monitor("load", OPENING / "2026-02-10.json", UNKNOWN / "2026-02-02.json").code == 0
    import monitor.checking as checking

    real = checking.diff_records

    def diff_records(old, new, *args):
        if new.key == "NCT06821503":
            raise RuntimeError("boom")
        return real(old, new, *args)

    monkeypatch.setattr(checking, "diff_records", diff_records)
    run = monitor("load", OPENING / "2026-03-10.json", UNKNOWN / "2026-03-02.json")
    assert "NCT06302556      changed" in run.out
    assert "NCT06821503      failed" in run.out and "2 records: 1 changed, 1 failed" in run.out
    assert run.code == 2, "a trial not stored is an error of the command, the others stay stored"
    assert run.err == "error: not stored: NCT06821503; the reason is above and in `monitor status`; the others were stored\n"
    status = monitor("status").out
    assert "error           NCT06821503: unexpected error (RuntimeError: boom); not stored, see the log" in status
    store = Store.open(f"sqlite:///{db_path}")
    assert (store.versions.latest_head("NCT06821503").number, store.versions.latest_head("NCT06302556").number) == (1, 2)


def test_a_bug_in_one_trial_of_a_library_load_is_listed_with_the_skipped_inputs(monkeypatch, tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    load(store, [OPENING / "2026-02-10.json"])
    import monitor.checking as checking

    monkeypatch.setattr(checking, "diff_records", lambda *a: {}["boom"])
    problems: list[str] = []
    results = load(store, [OPENING / "2026-03-10.json", UNKNOWN / "2026-02-02.json"], problems=problems)
    assert [(r.key, r.status) for r in results] == [("NCT06302556", "new"), ("NCT06821503", "failed")]
    assert problems == ["NCT06821503: unexpected error (KeyError: 'boom'); not stored, see the log"]


def test_a_file_of_the_wrong_shape_is_still_refused_and_the_store_is_byte_identical(monitor, db_path, tmp_path):
    assert monitor("load", OPENING / "2026-02-10.json").code == 0
    before = db_path.read_bytes()
    bad = tmp_path / "bad.json"
    bad.write_text('{"protocolSection": {"identificationModule": {"nctId": 12}}}')
    shutil.copy(OPENING / "2026-03-10.json", tmp_path / "good.json")
    run = monitor("load", tmp_path / "good.json", bad)
    assert run.code == 2 and run.err.startswith(f"error: {bad}") and run.err.count("\n") == 1
    assert db_path.read_bytes() == before


# --- the seam with the worker pool: Checker.check(key, answer, prepared) ---------------------------


class Unreadable:
    """An answer that must not be normalized again: a worker prepared it."""

    origin = "test://answer"

    def __init__(self, raw: str) -> None:
        self.raw = raw

    def snapshot(self):
        raise AssertionError("normalized again in the parent")


def test_a_record_a_worker_prepared_is_stored_without_normalizing_it_again(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    answer = Payload("test://answer", (OPENING / "2026-02-10.json").read_text(), study(OPENING / "2026-02-10.json"))
    record = answer.snapshot().record
    result = Checker(store, lambda: NOW).check(record.key, Unreadable(answer.raw), Prepared(record))
    assert (result.status, result.version, result.seen) == ("new", 1, ("2025-02-17", "NOT_YET_RECRUITING"))


def test_a_workers_failure_is_raised_inside_the_boundary_and_recorded_for_its_trial(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    heard: list[tuple[str, str]] = []
    checker = Checker(store, lambda: NOW, on_problem=lambda key, message: heard.append((key, message)))
    failed = Prepared(error=ValueError("bad date"))
    assert checker.check("NCT06821503", Unreadable(""), failed) is None
    problem = "unexpected error (ValueError: bad date); not stored, see the log"
    assert heard == [("NCT06821503", problem)] and errors(store) == {"NCT06821503": problem}
    assert checker.check("NCT06821503", Unreadable(""), failed) is None
    assert len(heard) == 1, "heard once: the same problem again is not news"


def test_a_record_of_another_trial_is_refused_for_the_trial_asked_for(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    answer = Payload("test://answer", (OPENING / "2026-02-10.json").read_text(), study(OPENING / "2026-02-10.json"))
    checker = Checker(store, lambda: NOW)
    assert checker.check("NCT06302556", answer) is None
    assert checker.failures == {"NCT06302556": "the record of NCT06302556 normalizes to NCT06821503; not stored"}
    assert store.versions.latest_head("NCT06821503") is None


# --- the plan is the source's: Source.due -------------------------------------------------------------


class Probed(ToySource):
    """The toy registry without a change query: the cycle falls back to probing its ids."""

    def changed_since(self, watermark):
        return Changed("")

    def known(self, keys, on_problem=None):  # the probe: each record's last-update date and status
        served = {k: json.loads(toy_source.SERVED[k]) for k in keys if k in toy_source.SERVED}
        return {k: (record["updated"], record["status"]) for k, record in served.items()}


@pytest.fixture
def toys(monkeypatch):
    monkeypatch.setattr(toy_source, "SERVED", {})
    monkeypatch.setattr(toy_source, "UPDATED", {})
    monkeypatch.setattr(toy_source, "DAY", [1])
    for key in ("TOY-0001", "TOY-0002"):
        publish(key, f"Toy {key}", "RECRUITING", "2026-02-01", day=2)


def test_a_source_without_a_change_query_is_probed_and_only_moved_trials_are_fetched(toys, tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    for key in ("TOY-0001", "TOY-0002", "TOY-0404"):
        store.watches.add_watch("trial", key, NOW)
    clock = [NOW]
    live = Live(store, Probed(), now=lambda: clock[0])
    first = live.cycle()  # the first cycle is a full refresh: every watched trial in full
    assert sorted(r.key for r in first.results) == ["TOY-0001", "TOY-0002"]
    assert first.problems == ["TOY-0404: not found on the Toy Registry"]
    publish("TOY-0002", "Toy TOY-0002", "COMPLETED", "2026-02-10", day=3)
    second = live.cycle()
    assert (second.probed, [(r.key, r.status) for r in second.results]) == (2, [("TOY-0002", "changed")])
    clock[0] = datetime(2026, 4, 1, tzinfo=UTC)  # past full_refresh_days: everything is read again
    third = live.cycle()
    assert (third.probed, sorted(r.key for r in third.results)) == (0, ["TOY-0001", "TOY-0002"])
    store.close()


def test_the_polling_cycle_imports_no_clinicaltrials_gov_module():
    tree = ast.parse((ROOT / "monitor" / "live.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert sorted(m for m in imported if m and "ctgov" in m) == []


def test_the_package_has_no_import_cycles_even_counting_imports_inside_functions():
    """Every import of our own modules, at the top or inside a function, makes an edge."""
    package = ROOT / "monitor"
    names = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p for p in package.rglob("*.py")
    }
    edges: dict[str, set[str]] = {}
    for name, path in names.items():
        edges[name] = set()
        tree = ast.parse(path.read_text())
        typing_only = [n for n in tree.body if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)]
        skipped = {id(n) for block in typing_only for n in ast.walk(block)}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level and id(node) not in skipped:
                for target in [node.module] + [f"{node.module}.{a.name}" for a in node.names]:
                    while target and target not in names:
                        target = target.rpartition(".")[0]
                    if target and target != name and target.startswith("monitor."):
                        edges[name].add(target)
    cycles = [cycle for cycle in _strongly_connected(edges) if len(cycle) > 1]
    assert cycles == []


def _strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_a_snapshot_groups_trial_that_fails_is_counted_failed_and_the_group_goes_on(monkeypatch, tmp_path):
    from monitor.config import load_settings
    from monitor.cycles import run_group

    folder = tmp_path / "folder"
    folder.mkdir()
    shutil.copy(OPENING / "2026-02-10.json", folder / "opening.json")
    shutil.copy(UNKNOWN / "2026-02-02.json", folder / "unknown.json")
    config = tmp_path / "monitor.yaml"
    config.write_text(
        f"database: sqlite:///{tmp_path / 'monitor.db'}\nwatches:\n  - name: folder\n    snapshots: [{folder}]\n"
    )
    settings = load_settings(str(config))
    store = Store.open(settings.database)
    import monitor.checking as checking

    real = checking.ingest
    monkeypatch.setattr(
        checking, "ingest", lambda store, s, *a, **k: 1 / 0 if s.record.key == BAD else real(store, s, *a, **k)
    )
    outcome = run_group(store, settings, settings.group("folder"), now=lambda: NOW)
    assert ([r.key for r in outcome.results], outcome.failed) == (["NCT06821503"], 1)
    assert outcome.problems == [
        f"{BAD}: unexpected error (ZeroDivisionError: division by zero); not stored, see the log"
    ]
    assert " failed=1 " in outcome.line() and list(errors(store)) == [BAD]
