"""Sources are plugins keyed by the word users write: a toy registry
(tests/toy_source.py) is added with one registry line and no other module
touched; it is watched, stored, diffed and shown like ClinicalTrials.gov."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import toy_source
from toy_source import ToySource, publish

from monitor.config import Schedule, WatchGroup, load_settings
from monitor.cycles import run_group
from monitor.errors import ConfigError, UsageError
from monitor.sources.ctgov_source import CtgovSource
from monitor.sources.files_source import FilesSource
from monitor.sources.registry import SOURCES, by_source, check_key, source_named, source_of
from monitor.store import Store

NOW = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def toy(monkeypatch):
    """The toy registry, registered with one line, serving nothing yet."""
    monkeypatch.setitem(SOURCES, "toy", ToySource)  # the one registry line
    monkeypatch.setattr(toy_source, "SERVED", {})
    monkeypatch.setattr(toy_source, "UPDATED", {})
    monkeypatch.setattr(toy_source, "DAY", [1])
    return toy_source


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(text)
    return path


TOY_CONFIG = """\
watches:
  - name: toys
    source: toy
    trials: [TOY-0001, toy-0002]
"""


def test_a_toy_registry_is_stored_diffed_and_shown_like_any_other(toy, tmp_path, db_path, monitor):
    settings = load_settings(str(write_config(tmp_path, TOY_CONFIG)))
    group = settings.group("toys")
    assert (group.source, group.trials) == ("toy", ("TOY-0001", "TOY-0002"))
    store = Store.open(f"sqlite:///{db_path}")
    publish("TOY-0001", "Toy trial of CAR-NK in lupus", "RECRUITING", "2026-02-01", day=2)
    publish("TOY-0002", "Another toy trial", "RECRUITING", "2026-02-01", day=2)
    first = run_group(store, settings, group, now=lambda: NOW)
    assert (first.count("new"), first.probed, first.problems) == (2, 0, [])  # the registry said what changed

    publish("TOY-0001", "Toy trial of CAR-NK in lupus", "TERMINATED", "2026-02-20", day=3)
    second = run_group(store, settings, group, now=lambda: NOW)
    assert [(r.key, r.status) for r in second.results] == [("TOY-0001", "changed")]
    store.close()

    versions = json.loads(monitor("history", "toy-0001", "--format", "json").out)["versions"]
    assert [(v["version"], v["date"]) for v in versions] == [(1, "2026-02-01"), (2, "2026-02-20")]
    shown = monitor("diff", "TOY-0001")
    assert shown.code == 0 and "RECRUITING" in shown.out and "TERMINATED" in shown.out
    changes = json.loads(monitor("diff", "TOY-0001", "--format", "json").out)["changes"]
    assert [(c["field"], c["old"], c["new"]) for c in changes] == [("overall_status", "RECRUITING", "TERMINATED")]


def test_an_unmoved_watermark_ends_the_cycle_without_asking_for_records(toy, tmp_path, db_path):
    settings = load_settings(str(write_config(tmp_path, TOY_CONFIG)))
    store = Store.open(f"sqlite:///{db_path}")
    publish("TOY-0001", "Toy", "RECRUITING", "2026-02-01", day=2)
    run_group(store, settings, settings.group("toys"), now=lambda: NOW)
    again = run_group(store, settings, settings.group("toys"), now=lambda: NOW)
    assert (again.fetched, again.results, again.problems) == (0, [], [])
    assert store.service.get_state("toy.data_timestamp.toys") == "2"
    store.close()


def test_one_bad_toy_record_never_stops_the_others(toy, tmp_path, db_path, monitor):
    settings = load_settings(str(write_config(tmp_path, TOY_CONFIG)))
    store = Store.open(f"sqlite:///{db_path}")
    publish("TOY-0001", "Toy", "RECRUITING", "2026-02-01", day=2)
    toy.SERVED["TOY-0002"] = json.dumps({"id": "TOY-0002", "title": "Bad", "status": 7, "updated": "2026-02-01"})
    toy.UPDATED["TOY-0002"] = 2
    outcome = run_group(store, settings, settings.group("toys"), now=lambda: NOW)
    assert [r.key for r in outcome.results] == ["TOY-0001"]
    assert outcome.problems == ["TOY-0002: toy://registry/TOY-0002: status: expected a string, got 7"]
    assert store.versions.latest_version("TOY-0002") is None
    store.close()
    assert "TOY-0002" in monitor("status").out


def test_fetch_asks_each_key_of_its_own_registry(toy, monitor):
    publish("TOY-0001", "Toy", "RECRUITING", "2026-02-01", day=2)
    run = monitor("fetch", "toy-0001", "--format", "json")
    assert run.code == 0, run.err
    assert [(r["trial"], r["status"]) for r in json.loads(run.out)["results"]] == [("TOY-0001", "new")]
    missing = monitor("fetch", "TOY-0009")
    assert (missing.code, missing.err) == (
        2,
        "warning: TOY-0009: not found on the Toy Registry\n"
        "error: not stored: TOY-0009; the reason is above and in `monitor status`\n",
    )


@pytest.mark.parametrize(
    ("typed", "key", "source"),
    [
        ("NCT06518668", "NCT06518668", CtgovSource),
        (" nct06518668 ", "NCT06518668", CtgovSource),
        ("ORG-2024-0530", "ORG-2024-0530", FilesSource),
        ("TITLE-0123456789", "TITLE-0123456789", FilesSource),
        ("toy-0001", "TOY-0001", ToySource),
    ],
)
def test_a_keys_registry_is_found_by_asking_the_sources(toy, typed, key, source):
    assert check_key(typed) == key
    assert source_of(key) is source


def test_keys_are_grouped_by_their_registry_in_order(toy):
    assert by_source(["TOY-0002", "NCT06518668", "TOY-0001"]) == {
        "toy": ["TOY-0002", "TOY-0001"],
        "ctgov": ["NCT06518668"],
    }


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("NCT123", "NCT123 is not an NCT id (NCT followed by 8 digits)"),
        ("TOY-1", "TOY-1 is not a toy id (TOY- and four digits)"),
        (
            "hello",
            "hello is not a trial key: use an NCT id (NCT followed by 8 digits), a key shown by `monitor load` "
            "such as ORG-2024-0530 or a toy id (TOY- and four digits)",
        ),
    ],
)
def test_a_wrong_key_says_what_each_registry_expects(toy, typed, error):
    with pytest.raises(UsageError) as raised:
        check_key(typed)
    assert raised.value.message == error


def test_no_two_sources_claim_one_key():
    keys = ["NCT06518668", "ORG-2024-0530", "TITLE-0123456789", "ISRCTN12345678", "EUCT-2023-123456-12-00"]
    for key in keys:
        claims = []
        for source in SOURCES.values():
            try:
                claims += [source.name] if source.parse_key(key) else []
            except UsageError:
                claims.append(source.name)
        assert len(claims) <= 1, (key, claims)


# --- watch groups name their source ------------------------------------------------------------


@pytest.mark.parametrize(
    ("group", "source"),
    [
        ("trials: [NCT06518668]", "ctgov"),
        ("queries: ['query.cond=lupus']", "ctgov"),
        ("snapshots: [seeds/]", "files"),
        ("source: ctgov\n    trials: [NCT06518668]", "ctgov"),
        ("source: files\n    snapshots: [seeds/]", "files"),
    ],
)
def test_a_groups_source_is_named_or_inferred_from_its_keys(tmp_path, monkeypatch, group, source):
    (tmp_path / "seeds").mkdir()
    monkeypatch.chdir(tmp_path)
    path = write_config(tmp_path, f"watches:\n  - name: g\n    {group}\n")
    assert load_settings(str(path)).group("g").source == source


def test_a_group_built_in_python_infers_its_source():
    hourly = Schedule("every 1 hour", 3600)
    assert WatchGroup("a", hourly, trials=("NCT06518668",)).source == "ctgov"
    assert WatchGroup("b", hourly, snapshots=("seeds/",)).source == "files"


@pytest.mark.parametrize(
    ("group", "error"),
    [
        (
            "source: ctgvo\n    trials: [NCT06518668]",
            "3: watches[0].source: 'ctgvo' is not a source (known: ctgov, files)",
        ),
        ("source: files\n    trials: [NCT06518668]", "3: watches[0].source: the source files does not read trials or queries (the source ctgov does)"),
        ("source: toy\n    trials: [TOY-1]", "4: watches[0].trials[0]: 'TOY-1' is not a toy id (TOY- and four digits)"),
        ("source: toy\n    queries: [x]", "4: watches[0].queries[0]: the Toy Registry has no saved searches"),
        ("source: toy\n    trials: [NCT06518668]", "4: watches[0].trials[0]: 'NCT06518668' is not a toy id"),
    ],
)
def test_a_wrong_source_is_a_line_numbered_error(toy, tmp_path, group, error):
    if "ctgvo" in group:
        del SOURCES["toy"]  # the known ones are listed
    path = write_config(tmp_path, f"watches:\n  - name: g\n    {group}\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(str(path))
    assert raised.value.message.startswith(f"{path}:{error}")


def test_the_source_registry_names_every_source_by_its_word():
    assert {"ctgov", "files"} <= set(SOURCES)
    assert all(source.name == name for name, source in SOURCES.items())
    with pytest.raises(UsageError) as raised:
        source_named("nosuch")
    assert raised.value.message == f"'nosuch' is not a source (one of: {', '.join(SOURCES)})"


def test_diff_live_and_backfill_ask_the_keys_own_registry(toy, monitor):
    publish("TOY-0001", "Toy", "RECRUITING", "2026-02-01", day=2)
    assert monitor("fetch", "TOY-0001").code == 0
    publish("TOY-0001", "Toy", "COMPLETED", "2026-02-20", day=3)
    live = monitor("diff", "TOY-0001", "--live", "--format", "json")
    assert [(c["field"], c["new"]) for c in json.loads(live.out)["changes"]] == [("overall_status", "COMPLETED")]
    assert len(json.loads(monitor("history", "TOY-0001", "--format", "json").out)["versions"]) == 1, "nothing stored"
    backfill = monitor("backfill", "TOY-0001")
    assert backfill.code == 2
    assert backfill.err == (
        "error: TOY-0001: version history unavailable (the Toy Registry keeps no version history); "
        "the trial is still watched\n"
    )


# --- the files source: snapshot files as a registry ---------------------------------------------

VERSIONS = Path(__file__).parent / "fixtures" / "ctgov" / "NCT06821503"


def test_the_files_source_knows_the_trials_in_its_files_and_their_versions_oldest_first():
    files = FilesSource([VERSIONS])
    assert files.known(["NCT06821503", "NCT00000000"]) == {"NCT06821503": ("2026-03-10", "RECRUITING")}
    assert [s.record.last_update_posted for s in files.history("NCT06821503")] == ["2025-02-17", "2026-03-10"]
    assert [key for key, _ in files.records(["NCT06821503"])] == ["NCT06821503", "NCT06821503"]


def test_a_snapshot_files_key_is_not_fetched_from_any_registry(monitor):
    run = monitor("fetch", "ORG-2024-0530")
    assert (run.code, run.err) == (
        2,
        "warning: ORG-2024-0530: the key of a snapshot file: `monitor load FILE` reads it; no registry has it\n"
        "error: not stored: ORG-2024-0530; the reason is above and in `monitor status`\n",
    )
    assert run.out == "0 records\n", "nothing stored is said without a dangling colon"


def test_a_trial_added_to_a_group_is_fetched_though_the_registry_says_it_did_not_change(toy, tmp_path, db_path):
    store = Store.open(f"sqlite:///{db_path}")
    publish("TOY-0001", "Toy", "RECRUITING", "2026-02-01", day=2)
    publish("TOY-0002", "Another", "RECRUITING", "2026-02-01", day=2)
    one = load_settings(str(write_config(tmp_path, TOY_CONFIG.replace(", toy-0002", ""))))
    assert [r.key for r in run_group(store, one, one.group("toys"), now=lambda: NOW).results] == ["TOY-0001"]
    both = load_settings(str(write_config(tmp_path, TOY_CONFIG)))
    assert [r.key for r in run_group(store, both, both.group("toys"), now=lambda: NOW).results] == ["TOY-0002"]
    store.close()


def test_a_cycle_over_every_watch_asks_each_registry_only_for_its_own_trials(toy, db_path):
    from monitor.live import Live

    store = Store.open(f"sqlite:///{db_path}")
    for key in ("TOY-0001", "NCT06518668"):
        store.watches.add_watch("trial", key, NOW)
    publish("TOY-0001", "Toy", "RECRUITING", "2026-02-01", day=2)
    report = Live(store, ToySource(), now=lambda: NOW).cycle()
    assert ([r.key for r in report.results], report.problems) == (["TOY-0001"], [])
    store.close()


def test_watch_add_asks_the_keys_own_registry(toy, monitor):
    publish("TOY-0001", "Toy", "RECRUITING", "2026-02-01", day=2)
    missing = monitor("watch", "add", "TOY-0009")
    assert (missing.code, missing.err) == (2, "error: TOY-0009 is not on the Toy Registry; nothing was added\n")
    added = monitor("watch", "add", "toy-0001", "--format", "json")
    assert added.code == 0, added.err
    assert [(r["trial"], r["status"]) for r in json.loads(added.out)["results"]] == [("TOY-0001", "new")]
    assert "TOY-0001" in monitor("watch", "list").out


def test_backfill_of_a_snapshot_file_key_says_there_is_no_history_to_fetch(monitor):
    run = monitor("backfill", "ORG-2024-0530")  # was exit 0, "0 past versions added"
    assert run.code == 2
    assert run.err == (
        "error: ORG-2024-0530 is the key of a snapshot file: no registry keeps its history; "
        "`monitor load FILE...` stores its versions\n"
    )


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("A" * 5000, "error: '" + "A" * 60 + "…' is not a trial key: "),  # not 5,000 characters back
        ("", "error: '' is not a trial key: "),
        ("NCT\x1b[31m06821503", "error: 'NCT\\x1b[31m06821503' is not an NCT id"),  # no escape reaches the terminal
        ("\x1b]0;owned\x07", "error: '\\x1b]0;owned\\x07' is not a trial key: "),
        ("NCT0651866", "error: NCT0651866 is not an NCT id"),  # a plain mistake reads as before
    ],
)
@pytest.mark.parametrize("command", ["history", "fetch"])
def test_a_key_that_cannot_be_shown_as_typed_is_quoted_and_shortened_in_its_error(monitor, typed, shown, command):
    run = monitor(command, typed)
    assert run.code == 2 and run.err.startswith(shown), run.err
    assert len(run.err.splitlines()) == 1 and "\x1b" not in run.err and len(run.err) < 300
