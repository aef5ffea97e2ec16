"""What one `load` stores: all or nothing, copies of one trial in registry-date order, each
distinct content once, and the rules that decide whether a record is a new version."""

from __future__ import annotations

import copy
import gc
import json
from pathlib import Path

from conftest import OPENING, UNKNOWN, study

OLD, NEW = study(OPENING / "2026-02-10.json"), study(OPENING / "2026-03-10.json")  # 2025-02-17, 2026-03-10


def database_bytes(db_path: Path) -> bytes:
    """The database file's bytes (and its WAL's), once connections left open are closed."""
    gc.collect()
    wal = db_path.with_name(db_path.name + "-wal")
    return db_path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def write(path: Path, payload) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))
    return path


def with_status(payload: dict, status: str) -> dict:
    payload = copy.deepcopy(payload)
    payload["protocolSection"]["statusModule"]["overallStatus"] = status
    return payload


def with_phases(payload: dict, phases: list[str], posted: str | None = None) -> dict:
    payload = copy.deepcopy(payload)
    payload["protocolSection"]["designModule"]["phases"] = phases
    if posted:
        payload["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"] = posted
    return payload


def history(monitor, key="NCT06821503") -> list[dict]:
    return json.loads(monitor("history", key, "--format", "json").out)["versions"]


def forty(payload: dict) -> dict:
    payload = copy.deepcopy(payload)
    payload["protocolSection"]["designModule"]["enrollmentInfo"]["count"] = "forty"
    return payload


def test_one_bad_file_in_a_folder_means_nothing_is_stored(monitor, db_path, tmp_path):
    monitor("load", OPENING / "2026-02-10.json")
    before = database_bytes(db_path)
    folder = tmp_path / "incoming"
    write(folder / "a_new_trial.json", study(UNKNOWN / "2026-02-02.json"))
    write(folder / "b_newer_version.json", forty(NEW))
    run = monitor("load", folder)
    assert run.code == 2 and run.out == ""
    assert run.err == (
        f"error: {folder / 'b_newer_version.json'}: protocolSection.designModule.enrollmentInfo.count: "
        'expected a whole number of participants, got the string "forty"; nothing was stored\n'
    )
    assert database_bytes(db_path) == before
    assert monitor("show", "NCT06302556").code == 2, "the valid new trial was not stored either"


def test_skip_bad_stores_the_good_files_and_lists_the_bad_ones(monitor, tmp_path):
    monitor("load", OPENING / "2026-02-10.json")
    folder = tmp_path / "incoming"
    write(folder / "a_new_trial.json", study(UNKNOWN / "2026-02-02.json"))
    write(folder / "b_newer_version.json", forty(NEW))
    (folder / "c_notes.txt").write_text("call the site on Monday\n")
    run = monitor("load", "--skip-bad", folder)
    assert run.code == 2
    assert "NCT06302556" in run.out and "new" in run.out
    lines = run.err.splitlines()
    assert [line.split(":")[0] for line in lines] == ["skipped", "skipped", "error"]
    assert "b_newer_version.json: protocolSection.designModule.enrollmentInfo.count" in lines[0]
    assert "c_notes.txt: not a trial page" in lines[1]
    assert lines[2] == "error: 2 bad input(s) not stored (listed above); the others were stored"
    assert len(history(monitor, "NCT06302556")) == 1
    assert len(history(monitor)) == 1, "the bad newer version of NCT06821503 was not stored"


def test_skip_bad_with_only_good_files_is_a_plain_load(monitor):
    run = monitor("load", "--skip-bad", OPENING)
    assert run.code == 0 and run.err == ""
    assert len(history(monitor)) == 2


def test_identical_copies_in_one_studies_page_are_stored_once(monitor, tmp_path):
    page = write(tmp_path / "page.json", {"studies": [OLD, OLD, OLD]})
    run = monitor("load", page, "--format", "json")
    assert run.code == 0, run.err
    assert [r["status"] for r in json.loads(run.out)["results"]] == ["new", "unchanged", "unchanged"]
    assert len(history(monitor)) == 1


def test_copies_that_differ_in_an_export_are_stored_in_registry_date_order(monitor, tmp_path):
    export = write(tmp_path / "export.json", [NEW, OLD])  # newest first, as a website export may list them
    assert monitor("load", export).code == 0
    versions = history(monitor)
    assert [v["date"] for v in versions] == ["2025-02-17", "2026-03-10"]
    assert versions[1]["summary"].startswith("20 changes (4 major): Overall status")


def test_a_folder_is_stored_in_registry_date_order_not_file_name_order(monitor, tmp_path):
    folder = tmp_path / "versions"
    write(folder / "a.json", NEW)  # file names sort the newest first
    write(folder / "b.json", OLD)
    run = monitor("load", folder, "--format", "json")
    assert run.code == 0
    assert [r["status"] for r in json.loads(run.out)["results"]] == ["new", "changed"]
    versions = history(monitor)
    assert [(v["date"], v["source"]) for v in versions] == [
        ("2025-02-17", str(folder / "b.json")),
        ("2026-03-10", str(folder / "a.json")),
    ]
    assert versions[1]["summary"].startswith("20 changes (4 major): Overall status NOT_YET_RECRUITING -> RECRUITING")


def test_different_copies_with_one_registry_date_are_one_problem_not_versions(monitor, db_path, tmp_path):
    page = write(tmp_path / "page.json", {"studies": [with_status(OLD, s) for s in ("RECRUITING", "WITHDRAWN")]})
    run = monitor("load", page)
    assert run.code == 2
    assert run.err == (
        f"error: NCT06821503: two different copies with the same registry date (2025-02-17) twice in {page}; "
        "which one is the trial's record cannot be told; nothing was stored\n"
    )
    assert monitor("show", "NCT06821503").code == 2, "no copy was stored"


def test_same_date_copies_served_on_different_days_are_versions_in_that_order(monitor, tmp_path):
    later = with_status(OLD, "UNKNOWN")  # the registry turns a stale record UNKNOWN without a new update date
    later["derivedSection"]["miscInfoModule"]["versionHolder"] = "2026-03-01"
    assert monitor("load", write(tmp_path / "page.json", {"studies": [later, OLD]})).code == 0
    versions = history(monitor)
    assert len(versions) == 2 and "UNKNOWN" in versions[1]["summary"]


def test_the_order_of_phases_is_not_a_change(monitor, tmp_path):
    monitor("load", write(tmp_path / "a.json", with_phases(OLD, ["PHASE1", "PHASE2"])))
    run = monitor("load", write(tmp_path / "b.json", with_phases(OLD, ["PHASE2", "PHASE1"], "2025-03-01")))
    assert "unchanged" in run.out
    assert len(history(monitor)) == 1


def test_a_phase_added_is_a_change(monitor, tmp_path):
    monitor("load", write(tmp_path / "a.json", with_phases(OLD, ["PHASE1"])))
    run = monitor("load", write(tmp_path / "b.json", with_phases(OLD, ["PHASE1", "PHASE2"], "2025-03-01")))
    assert "changed" in run.out and "Phase" in run.out
    assert len(history(monitor)) == 2


def test_a_registry_re_serving_an_older_version_adds_nothing(monitor, tmp_path):
    """A -> B -> A with one update date: the third is identical to version 1, so nothing is added
    (README: a version identical to a stored one adds nothing)."""
    monitor("load", write(tmp_path / "a.json", OLD))
    assert "changed" in monitor("load", write(tmp_path / "b.json", with_status(OLD, "UNKNOWN"))).out
    served_again = copy.deepcopy(OLD)
    served_again["derivedSection"]["miscInfoModule"]["versionHolder"] = "2026-04-01"  # other bytes, same record
    run = monitor("load", write(tmp_path / "a_again.json", served_again), "--format", "json")
    (result,) = json.loads(run.out)["results"]
    assert (result["status"], result["version"]) == ("unchanged", 1)
    assert len(history(monitor)) == 2




def city_renamed(payload: dict, posted: str | None = None) -> dict:
    """The registry renames a site's city and re-geocodes it 5 km away (noise whose comparison form
    differs), re-dated when ``posted`` is given."""
    payload = copy.deepcopy(payload)
    site = payload["protocolSection"]["contactsLocationsModule"]["locations"][0]
    site["city"], site["geoPoint"] = "Peking", {"lat": 39.95, "lon": 116.40}
    if posted:
        payload["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"] = posted
    return payload


def test_a_noise_only_copy_on_the_same_registry_date_is_not_a_version(monitor, tmp_path):
    monitor("load", write(tmp_path / "a.json", OLD))
    run = monitor("load", write(tmp_path / "b.json", city_renamed(OLD)), "--format", "json")
    assert run.code == 0 and "but for noise" in run.out
    assert len(history(monitor)) == 1


def test_a_noise_only_copy_with_a_new_registry_date_is_kept_without_changes(monitor, tmp_path):
    monitor("load", write(tmp_path / "a.json", OLD))
    run = monitor("load", write(tmp_path / "b.json", city_renamed(OLD, "2025-03-01")), "--format", "json")
    assert run.code == 0 and '"refreshed"' in run.out
    assert [len(v.get("changes") or []) for v in history(monitor)] == [0, 0]
