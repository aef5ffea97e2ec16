"""The `monitor` command on a real SQLite file: load, diff, history, show,
exit codes, and a database left as it was by every bad input."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys

import pytest

from conftest import FIXTURES, OPENING, ROOT, SEEDS, UNKNOWN


def db_digest(path) -> str:
    """The database's content (not its bytes, which SQLite may touch on open)."""
    with sqlite3.connect(path) as conn:
        return hashlib.sha256("\n".join(conn.iterdump()).encode()).hexdigest()


def test_loading_the_seeds_stores_one_version_each(monitor):
    run = monitor("load", SEEDS)
    assert run.code == 0
    assert run.out.strip().endswith("5 records: 5 new")
    assert "ORG-2024-0530" in run.out


def test_loading_one_file_counts_one_record_in_the_singular(monitor):
    assert monitor("load", OPENING / "2026-02-10.json").out.strip().endswith("1 record: 1 new")


def test_loading_the_same_files_twice_adds_no_version(monitor, db_path):
    monitor("load", SEEDS, OPENING)
    before = db_digest(db_path)
    run = monitor("load", SEEDS, OPENING)
    assert run.code == 0
    assert "7 records: 7 unchanged" in run.out
    assert db_digest(db_path) == before


def test_a_changed_record_is_a_new_version_with_its_changes(monitor):
    monitor("load", OPENING / "2026-02-10.json")
    run = monitor("load", OPENING / "2026-03-10.json", "--format", "json")
    (result,) = json.loads(run.out)["results"]
    assert (result["trial"], result["status"], result["version"]) == ("NCT06821503", "changed", 2)
    assert result["changes"][0]["summary"] == "Overall status NOT_YET_RECRUITING -> RECRUITING"


def test_an_older_record_loaded_after_a_newer_one_is_not_stored(monitor):
    monitor("load", OPENING / "2026-03-10.json")
    run = monitor("load", OPENING / "2026-02-10.json", "--format", "json")
    (result,) = json.loads(run.out)["results"]
    assert result["status"] == "stale" and result["version"] is None


def test_a_folder_of_versions_is_stored_in_registry_date_order(monitor):
    run = monitor("load", OPENING, "--exit-code")
    assert run.code == 1, "changes were found and --exit-code was given"
    history = json.loads(monitor("history", "NCT06821503", "--format", "json").out)
    assert [v["date"] for v in history["versions"]] == ["2025-02-17", "2026-03-10"]
    assert history["versions"][1]["summary"].startswith("20 changes (4 major): Overall status")


def test_diff_of_a_stored_trial_prints_one_json_object(monitor):
    monitor("load", OPENING)
    run = monitor("diff", "NCT06821503", "--format", "json")
    assert run.code == 0
    data = json.loads(run.out)
    assert set(data) == {"trial", "old", "new", "changes"}
    assert data["trial"] == "NCT06821503"
    assert data["old"]["version"] == 1 and data["new"]["version"] == 2
    assert data["new"]["record"]["overall_status"] == "RECRUITING"
    assert {c["category"] for c in data["changes"]} == {"status", "dates", "eligibility", "locations"}


def test_diff_picks_versions_by_number_or_date(monitor):
    monitor("load", OPENING)
    same = json.loads(monitor("diff", "NCT06821503", "--from", "2", "--to", "2", "--format", "json").out)
    assert same["changes"] == []
    by_date = json.loads(monitor("diff", "NCT06821503", "--from", "2025-03-01", "--format", "json").out)
    assert by_date["old"]["version"] == 1
    assert monitor("diff", "NCT06821503", "--from", "7").code == 2


def test_diff_of_two_files_stores_nothing(monitor, db_path):
    run = monitor("diff", OPENING / "2026-02-10.json", OPENING / "2026-03-10.json", "--format", "markdown")
    assert run.code == 0
    assert "Overall status NOT_YET_RECRUITING -> RECRUITING" in run.out
    assert not db_path.exists()


def test_diff_exit_code_is_1_only_with_changes(monitor):
    noise = FIXTURES / "ctgov" / "noise" / "NCT06387628"
    assert monitor("diff", noise / "2026-02-03.json", noise / "2026-02-04.json", "--exit-code").code == 0
    assert monitor("diff", UNKNOWN / "2026-02-02.json", UNKNOWN / "2026-03-02.json", "--exit-code").code == 1


def test_show_prints_the_normalized_record(monitor):
    monitor("load", SEEDS)
    data = json.loads(monitor("show", "NCT06518668", "--format", "json").out)
    assert data["nct_id"] == "NCT06518668" and data["overall_status"] == "RECRUITING"
    assert json.loads(monitor("show", "ORG-2024-0530", "--format", "json").out)["org_study_id"] == "2024-0530"
    assert "Overall status: RECRUITING" in monitor("show", "NCT06518668").out


def test_show_reads_in_words_never_python_literals(monitor):
    monitor("load", SEEDS)
    text = monitor("show", "NCT06518668").out
    assert "interventions=NKX019, Cyclophosphamide LD" in text and "Healthy volunteers: no" in text
    for literal in ("['", "None", "True", "False", "{'"):
        assert literal not in text
    assert "Primary completion:" not in text  # a date with nothing in it is left out, not an empty heading


def test_show_names_each_field_by_its_label_in_the_field_table(monitor):
    monitor("load", OPENING / "2026-02-10.json")
    lines = monitor("show", "NCT06821503").out.splitlines()
    for line in (
        "NCT id: NCT06821503",
        "Overall status: NOT_YET_RECRUITING",
        "Phases: PHASE1, PHASE2",
        "Conditions: Advanced Pancreatic Cancer",
        "Interventions: (4)",
        "Enrollment:",
        "  Count: 72",
        "Start:",
        "  Date: 2025-02",
        "Eligibility:",
        "  Inclusion criteria: (10)",
        "  Exclusion criteria: (28)",
        "  Minimum age: 18 Years",
        "  Healthy volunteers: no",
        "Last update posted: 2025-02-17",
    ):
        assert line in lines, line
    names = [line.split(":")[0] for line in lines if line and not line.startswith(" ")]
    assert not [name for name in names if "_" in name], names  # no JSON key is shown as it is


def test_status_says_when_the_next_run_is_in_a_whole_sentence(monitor):
    monitor("load", SEEDS)
    assert "next run      when the daemon runs" in monitor("run", "--once").out + monitor("status").out


def test_history_lists_every_version(monitor):
    monitor("load", UNKNOWN)
    run = monitor("history", "nct06302556")
    assert run.code == 0
    assert "v1" in run.out and "first version" in run.out
    assert "2 changes (2 major): Last known status set: NOT_YET_RECRUITING; +1 more" in run.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["diff", "NCT0651866"], "error: NCT0651866 is not an NCT id (NCT followed by 8 digits)"),
        (["history", "NCT99999999"], "error: NCT99999999 is not in the store"),
        (["show", "hello"], "error: hello is not a trial key"),
        (["load", "no/such/folder"], "error: no/such/folder: no such file or folder"),
        (["diff", "NCT06821503", "--to", "yesterday"], "error: 'yesterday' is not a version number or a date"),
        (["diff", "a", "b", "c"], "error: diff takes one trial id, one file, or two files"),
        (["load", "--format", "yaml", "seeds"], "error: Invalid value for '--format'"),
        (["frobnicate"], "error: No such command 'frobnicate'"),
    ],
)
def test_bad_usage_is_one_error_line_and_exit_2(monitor, args, message):
    monitor("load", OPENING)
    run = monitor(*args)
    assert run.code == 2
    assert run.err.startswith(message)
    assert run.err.count("\n") == 1


def test_a_bad_file_among_good_ones_leaves_the_database_as_it_was(monitor, db_path, tmp_path):
    monitor("load", SEEDS)
    before = db_digest(db_path)
    folder = tmp_path / "incoming"
    shutil.copytree(OPENING, folder)
    (folder / "zz_garbled.json").write_text('{"protocolSection": {"identificationModule"')
    run = monitor("load", SEEDS, folder)
    assert run.code == 2
    assert "zz_garbled.json: broken JSON" in run.err and "nothing was stored" in run.err
    assert db_digest(db_path) == before


def test_a_bad_input_on_a_fresh_machine_creates_no_database(monitor, db_path, tmp_path):
    (tmp_path / "junk.txt").write_text("not a trial")
    assert monitor("load", tmp_path / "junk.txt").code == 2
    assert not db_path.exists()


def test_a_database_that_cannot_be_opened_is_a_clear_error(monitor, tmp_path):
    not_a_db = tmp_path / "notes.db"
    not_a_db.write_text("these are my notes, not a database " * 100)
    from monitor.cli import main

    assert main(["--db", str(not_a_db), "load", str(SEEDS)]) == 2
    assert not_a_db.read_text().startswith("these are my notes")


def test_the_installed_command_runs_as_a_subprocess(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "--db", str(tmp_path / "m.db"), "load", str(SEEDS), "--format", "json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["counts"] == {"new": 5}
    bad = subprocess.run(
        [sys.executable, "-m", "monitor", "diff", "NCT123"], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert bad.returncode == 2
    assert bad.stderr == "error: NCT123 is not an NCT id (NCT followed by 8 digits)\n"


def test_diff_and_history_filter_by_category_and_severity_and_list_in_full(monitor):
    monitor("load", OPENING)
    text = monitor("diff", "NCT06821503", "--category", "locations", "--category", "status").out
    categories = {line.split("]")[0].strip() for line in text.splitlines() if line.startswith("  [")}
    assert categories == {"[locations", "[status"}
    major = json.loads(monitor("diff", "NCT06821503", "--min-severity", "major", "--format", "json").out)
    assert major["changes"] and {c["severity"] for c in major["changes"]} == {"major"}
    full = monitor("diff", "NCT06821503", "--full").out
    default = monitor("diff", "NCT06821503").out
    assert "more (--full lists them)" in default and "more (--full lists them)" not in full
    assert len(full.splitlines()) > len(default.splitlines())
    history = monitor("history", "NCT06821503", "--min-severity", "major").out
    assert "[status] Overall status NOT_YET_RECRUITING -> RECRUITING" in history and "[locations]" not in history
    bad = monitor("diff", "NCT06821503", "--category", "nonsense")
    assert bad.code == 2
