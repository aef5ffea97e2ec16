"""Change reports over the real transitions named in issue 11, rendered as a
reader gets them from ``monitor diff`` (text and Markdown, kept under
tests/expected/reports/ for a reviewer to read) and checked for what they must
say.  Regenerate with ``UPDATE_EXPECTED=1 python -m pytest tests/test_reports.py``.
"""

from __future__ import annotations

import json
import os

import pytest

from monitor.aggregate import View
from monitor.classify import diff_records
from monitor.normalize import normalize_study
from monitor.pipeline import Comparison
from monitor.render import render

from conftest import ROOT, SHARED, needs_shared

pytestmark = needs_shared
EXPECTED = ROOT / "tests" / "expected" / "reports"
NAMED = [
    ("NCT06203210", "2026-02-04->2026-02-09"),
    ("NCT06203210", "2026-02-09->2026-03-09"),
    ("NCT07227597", "2026-02-04->2026-03-09"),
    ("NCT04736173", "2026-02-02->2026-03-09"),
    ("NCT06989112", "2026-02-02->2026-02-10"),
    ("NCT07099898", "2026-02-04->2026-03-09"),
    ("NCT07098338", "2026-02-02->2026-02-09"),
    ("NCT05009069", "2026-02-02->2026-02-27"),
]


def comparison(trial: str, days: str) -> Comparison:
    old_day, new_day = days.split("->")
    load = lambda day: normalize_study(json.loads((SHARED / "versions" / trial / f"{day}.json").read_text()))  # noqa: E731
    old, new = load(old_day), load(new_day)
    return Comparison(
        new.key,
        old,
        new,
        {"version": 1, "date": old.last_update_posted, "source": None},
        {"version": 2, "date": new.last_update_posted, "source": None},
        diff_records(old, new),
    )


def check(name: str, text: str) -> None:
    path = EXPECTED / name
    if os.environ.get("UPDATE_EXPECTED"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    assert path.exists(), f"{path} is missing: run with UPDATE_EXPECTED=1 and read what it wrote"
    assert text + "\n" == path.read_text()


@pytest.mark.parametrize(("trial", "days"), NAMED, ids=[f"{t}:{d}" for t, d in NAMED])
@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_a_named_real_transition_reads_as_expected(trial, days, fmt):
    suffix = {"text": "txt", "markdown": "md"}[fmt]
    check(f"{trial}_{days.replace('->', '_')}.{suffix}", render("comparison", fmt, comparison(trial, days)))


def report(trial: str, days: str, view: View | None = None) -> list[str]:
    return render("comparison", "text", comparison(trial, days), view).splitlines()


def test_a_reopening_with_453_site_and_contact_changes_fits_in_40_lines_and_its_json_keeps_every_one():
    assert len(report("NCT06203210", "2026-02-04->2026-02-09")) <= 40
    data = json.loads(render("comparison", "json", comparison("NCT06203210", "2026-02-04->2026-02-09")))
    members = [m for c in data["changes"] for m in c.get("items", [c])]
    assert sum(1 for m in members if m["field"] == "locations") == 230
    assert sum(1 for m in members if m["field"] == "site_contacts") == 218
    sites = [c for c in data["changes"] if c["field"] == "locations"]
    assert [c["summary"] for c in sites] == [
        "176 sites no status -> RECRUITING",
        "54 sites no status -> NOT_YET_RECRUITING",
    ]
    assert all(c["count"] == len(c["items"]) for c in sites)


def test_full_lists_every_member():
    full = report("NCT06203210", "2026-02-04->2026-02-09", View(full=True))
    assert len(full) > 450


def test_encoding_damage_in_facility_names_is_not_a_rename():
    lines = report("NCT06203210", "2026-02-04->2026-02-09", View(full=True))
    assert not [line for line in lines if "renamed" in line or "None" in line]
    assert not [line for line in report("NCT06203210", "2026-02-09->2026-03-09") if "Pital" in line]


def test_one_time_frame_edit_in_25_outcomes_is_one_line_that_still_names_the_outcome_switch():
    lines = [line for line in report("NCT07227597", "2026-02-04->2026-03-09") if "months" in line and "  [" in line]
    assert lines == [
        '  [outcome_switch] Time frame "approximately 59 months" -> "approximately 58 months" '
        "in 25 outcomes (3 primary, 22 secondary); outcome switch after the ACTUAL start 2026-01-29 "
        "(3 primary outcomes)  [high: outcome-switch]"
    ]


def test_capitals_in_arm_descriptions_are_not_news():
    assert not [c for c in comparison("NCT07227597", "2026-02-04->2026-03-09").changes if c.field == "arms"]


def test_two_hospitals_in_one_city_are_one_site_removed_and_one_added_and_countries_leaving_are_said():
    changes = comparison("NCT04736173", "2026-02-02->2026-03-09").changes
    manila = [(c.change.value, c.summary) for c in changes if "Manila" in c.summary]
    assert manila == [
        ("added", "Site added: St Luke's Medical Center, Manila, Philippines"),
        ("removed", "Site removed: Makati Medical Centre, Manila, Philippines"),
    ]
    assert "  [locations] Countries left the trial: Greece, Mexico" in report("NCT04736173", "2026-02-02->2026-03-09")


def test_a_postal_code_change_is_reported():
    summaries = [c.summary for c in comparison("NCT06989112", "2026-02-02->2026-02-10").changes]
    assert "Site Research Site, Madison, Wisconsin, United States: postal code 53705 -> 53792" in summaries


def test_sites_added_in_new_countries_are_summed_up_by_country():
    lines = report("NCT07099898", "2026-02-04->2026-03-09")
    assert any(
        line.startswith("  [locations] 43 sites added in 15 countries, 9 of them new to the trial: Spain 10")
        for line in lines
    )


def test_a_results_paper_shows_its_citation_and_link():
    (change,) = comparison("NCT05009069", "2026-02-02->2026-02-27").changes
    assert change.summary.startswith('Reference added: Tang W et al. "Randomized Parallel-Group Phase II Study')
    assert change.summary.endswith("(2026), https://pubmed.ncbi.nlm.nih.gov/41529226/")


def test_a_reworded_primary_outcome_description_is_quoted():
    changes = comparison("NCT07098338", "2026-02-02->2026-02-09").changes
    (orr,) = [c for c in changes if c.field == "primary_outcomes"]
    assert orr.change.value == "modified" and "determined by the Investigator at local site" in orr.summary


@pytest.mark.parametrize(("trial", "days"), NAMED, ids=[f"{t}:{d}" for t, d in NAMED])
def test_no_python_literal_reaches_the_reader(trial, days):
    text = render("comparison", "text", comparison(trial, days), View(full=True))
    for literal in ("None", "True", "False", "['", "{'"):
        assert literal not in text


def test_filters_keep_only_the_chosen_categories_and_severity():
    lines = report("NCT07227597", "2026-02-04->2026-03-09", View(categories=("locations",)))
    assert {line.split("]")[0].strip() for line in lines if line.startswith("  [")} == {"[locations"}
    lines = report("NCT07227597", "2026-02-04->2026-03-09", View(min_severity="major"))
    assert "MINOR" not in lines and "MAJOR" in lines


def test_two_versions_with_the_same_registry_date_are_told_apart_by_the_day_they_were_seen():
    comp = comparison("NCT05009069", "2026-02-02->2026-02-27")
    comp.old_label.update(seen="2026-02-02")
    comp.new_label.update(seen="2026-02-27")
    header = render("comparison", "text", comp).splitlines()[1]
    assert header.startswith("v1 (registry 2026-01-22, seen 2026-02-02) -> v2 (registry 2026-01-22, seen 2026-02-27)")
