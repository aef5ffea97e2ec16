"""Every real successive version in ../shared/data/ctgov/versions/ gives the
categories a careful reader sees when comparing the two files.

Each row was checked against the protocol modules that differ in the raw JSON,
leaving out bookkeeping (last-update and first-posted dates, statusVerifiedDate,
derivedSection, versionHolder).  Site contacts live inside
``contactsLocationsModule.locations``, so a raw "locations" difference can be a
``contacts`` change.
"""

from __future__ import annotations

import json
from itertools import pairwise

import pytest

from monitor.classify import diff_records
from monitor.normalize import normalize_study

from conftest import SHARED, needs_shared

pytestmark = needs_shared

TRANSITIONS = [
    ("NCT04736173", "2026-02-02->2026-03-09", ["locations"]),
    ("NCT04743661", "2026-02-04->2026-02-09", ["dates"]),
    ("NCT04895709", "2026-02-10->2026-02-25", ["contacts", "locations", "other"]),
    ("NCT05009069", "2026-02-02->2026-02-27", ["references"]),  # a DERIVED reference added by the registry
    ("NCT05063149", "2026-02-04->2026-03-09", ["references"]),  # a citation reformatted
    (
        "NCT05280470",
        "2026-02-04->2026-03-09",
        ["arms_interventions", "description", "results"],
    ),  # + a certification to delay results (dispFirstSubmitDate)
    ("NCT05329766", "2026-02-02->2026-02-27", []),  # only lastUpdate dates moved
    ("NCT05537740", "2026-02-03->2026-02-10", ["references"]),  # a seeAlso link removed
    ("NCT05537740", "2026-02-10->2026-02-23", ["locations"]),
    ("NCT05568095", "2026-02-02->2026-03-04", ["locations"]),
    ("NCT06203210", "2026-02-04->2026-02-09", ["contacts", "eligibility", "locations", "status"]),
    ("NCT06203210", "2026-02-09->2026-03-09", ["locations"]),
    ("NCT06242470", "2026-02-04->2026-02-09", ["locations"]),
    (
        "NCT06302556",
        "2026-02-02->2026-03-02",
        ["status"],
    ),  # went stale: UNKNOWN with lastKnownStatus, no new update date
    ("NCT06330064", "2026-02-04->2026-02-13", ["locations"]),
    ("NCT06362252", "2026-02-04->2026-02-09", ["contacts", "locations"]),
    ("NCT06612645", "2026-02-04->2026-03-09", ["dates"]),
    ("NCT06627647", "2026-02-02->2026-02-13", ["locations"]),
    ("NCT06657144", "2026-02-03->2026-02-09", ["locations"]),
    ("NCT06657144", "2026-02-09->2026-02-20", ["contacts", "locations"]),
    ("NCT06657144", "2026-02-20->2026-03-02", ["locations"]),
    ("NCT06692738", "2026-02-02->2026-02-25", ["locations"]),
    ("NCT06821503", "2026-02-10->2026-03-10", ["dates", "eligibility", "locations", "status"]),
    ("NCT06825494", "2026-02-10->2026-03-13", []),  # only one site geoPoint moved
    ("NCT06868277", "2026-02-02->2026-03-02", ["locations"]),
    ("NCT06911827", "2026-02-10->2026-02-25", ["dates", "locations", "status"]),
    ("NCT06989112", "2026-02-02->2026-02-10", ["locations"]),
    ("NCT06989112", "2026-02-10->2026-03-12", ["locations"]),
    ("NCT06996782", "2026-02-02->2026-02-24", ["locations"]),
    ("NCT07098338", "2026-02-02->2026-02-09", ["arms_interventions", "dates", "description", "locations", "outcomes"]),
    ("NCT07099898", "2026-02-04->2026-03-09", ["contacts", "dates", "enrollment", "locations"]),
    ("NCT07115043", "2026-02-02->2026-02-09", ["locations"]),
    ("NCT07161414", "2026-02-02->2026-02-23", ["locations"]),
    ("NCT07205718", "2026-02-03->2026-02-09", ["locations"]),
    (
        "NCT07227597",
        "2026-02-04->2026-03-09",  # arm descriptions differ only in capitals (I-DxD -> I-DXd): not news
        ["contacts", "dates", "eligibility", "locations", "outcome_switch", "outcomes", "references", "status"],
    ),
    ("NCT07268053", "2026-02-04->2026-03-09", ["dates", "locations", "status"]),
]


def record(trial: str, day: str):
    return normalize_study(json.loads((SHARED / "versions" / trial / f"{day}.json").read_text()))


def transition(trial: str, days: str):
    old, new = days.split("->")
    return diff_records(record(trial, old), record(trial, new))


@pytest.mark.parametrize(("trial", "days", "categories"), TRANSITIONS, ids=[f"{t}:{d}" for t, d, _ in TRANSITIONS])
def test_real_version_transition_gives_the_categories_a_reader_sees(trial, days, categories):
    assert sorted({c.category.value for c in transition(trial, days)}) == categories


def test_every_real_transition_is_in_the_table():
    index = json.loads((SHARED / "versions" / "INDEX.json").read_text())["trials"]
    pairs = {(t, f"{a['snapshotDate']}->{b['snapshotDate']}") for t, vs in index.items() for a, b in pairwise(vs)}
    assert pairs == {(t, d) for t, d, _ in TRANSITIONS}


def test_sites_added_removed_and_reopened_are_counted_by_identity_not_position():
    # Matched by facility, city, state, country and, between same-named sites, postal code, the two files
    # differ by 11 sites added, 1 removed and 21 status changes (PROVENANCE.md's rougher count, without
    # postal codes, says "about ... 20").
    found = transition("NCT06868277", "2026-02-02->2026-03-02")
    kinds = [c.change.value for c in found if c.field == "locations"]
    assert (kinds.count("added"), kinds.count("removed"), kinds.count("modified")) == (11, 1, 21)


def test_a_trial_reopening_reports_every_site_but_one_status_change():
    found = transition("NCT06203210", "2026-02-04->2026-02-09")
    status = [c for c in found if c.category.value == "status"]
    assert [c.summary for c in status] == ["Overall status ACTIVE_NOT_RECRUITING -> RECRUITING"]
    assert found[0] == status[0], "the most important change comes first"


def test_facility_names_that_change_only_in_encoding_are_not_a_change():
    found = transition("NCT06203210", "2026-02-09->2026-03-09")
    assert not [c for c in found if "Pital" in c.summary or "renamed" in c.summary]
    assert {c.category.value for c in found} == {"locations"}


def test_dates_report_the_slip_in_days():
    found = transition("NCT07099898", "2026-02-04->2026-03-09")
    summaries = [c.summary for c in found]
    assert "Primary completion slipped 422 days: 2026-09-02 -> 2027-10-29 (ESTIMATED)" in summaries
    assert "Enrollment raised 300 -> 420 (+120, ESTIMATED)" in summaries
