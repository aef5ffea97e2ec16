"""The semantic diff: what is news, what is not, and how it reads.

Built on the project's own fixtures (real records, see tests/fixtures/README.md),
edited in the ways registries and sponsors really edit them.
"""

from __future__ import annotations

import copy

import pytest

from monitor.classify import diff_records
from monitor.diff import fingerprint
from monitor.normalize import normalize_study

from conftest import NOISE, OPENING, UNKNOWN, study


@pytest.fixture
def base() -> dict:
    return study(OPENING / "2026-03-10.json")


def changes(old: dict, new: dict):
    return diff_records(normalize_study(old), normalize_study(new))


def edited(data: dict, edit) -> dict:
    new = copy.deepcopy(data)
    edit(new)
    return new


def protocol(data: dict) -> dict:
    return data["protocolSection"]


# --- what is not a change --------------------------------------------------------------

NOISE_EDITS = {
    "version_holder_moves": lambda d: d["derivedSection"]["miscInfoModule"].update(versionHolder="2030-01-01"),
    "bookkeeping_dates_move": lambda d: protocol(d)["statusModule"].update(
        lastUpdateSubmitDate="2030-01-01",
        lastUpdatePostDateStruct={"date": "2030-01-02", "type": "ACTUAL"},
        statusVerifiedDate="2030-01",
        studyFirstPostDateStruct={"date": "2030-01-03", "type": "ACTUAL"},
    ),
    "derived_section_rewritten": lambda d: d.update(
        derivedSection={"conditionBrowseModule": {"meshes": [{"id": "X"}]}}
    ),
    "sites_reordered": lambda d: protocol(d)["contactsLocationsModule"]["locations"].reverse(),
    "site_geopoint_moves": lambda d: protocol(d)["contactsLocationsModule"]["locations"][0].update(
        geoPoint={"lat": 1.0, "lon": 2.0}
    ),
    "facility_capitalisation_changes": lambda d: protocol(d)["contactsLocationsModule"]["locations"][0].update(
        facility=protocol(d)["contactsLocationsModule"]["locations"][0]["facility"].upper()
    ),
    "conditions_and_keywords_reordered": lambda d: (
        protocol(d)["conditionsModule"]["conditions"].reverse(),
        protocol(d)["conditionsModule"].get("keywords", []).reverse(),
    ),
    "key_order_changes": lambda d: d.update(dict(reversed(list(d.items())))),
    "criteria_whitespace_and_nbsp": lambda d: protocol(d)["eligibilityModule"].update(
        eligibilityCriteria=protocol(d)["eligibilityModule"]["eligibilityCriteria"]
        .replace(" ", "\u00a0", 5)
        .replace("\n", "\n\n   ")
    ),
    "criteria_bullets_change": lambda d: protocol(d)["eligibilityModule"].update(
        eligibilityCriteria=protocol(d)["eligibilityModule"]["eligibilityCriteria"].replace("* ", "- ")
    ),
    "summary_whitespace_only": lambda d: protocol(d)["descriptionModule"].update(
        briefSummary="  " + protocol(d)["descriptionModule"]["briefSummary"].replace(" ", "  ") + "\n\n"
    ),
    "outcomes_reordered": lambda d: protocol(d)["outcomesModule"]["secondaryOutcomes"].reverse(),
    "arms_and_interventions_reordered": lambda d: (
        protocol(d)["armsInterventionsModule"]["armGroups"].reverse(),
        protocol(d)["armsInterventionsModule"]["interventions"].reverse(),
    ),
}


def test_sites_that_share_an_identity_are_matched_by_content_not_by_position(base):
    sites = protocol(base)["contactsLocationsModule"]["locations"]
    sites[:] = [
        dict(site, facility="Research Site", city="Boston", state="Massachusetts", country="United States")
        for site in sites[:4]
    ]
    for site, status in zip(sites, ["RECRUITING", "NOT_YET_RECRUITING", "WITHDRAWN", "RECRUITING"], strict=True):
        site["status"] = status
    reordered = edited(base, lambda d: protocol(d)["contactsLocationsModule"]["locations"].reverse())
    assert changes(base, reordered) == []
    one_opens = edited(
        reordered, lambda d: protocol(d)["contactsLocationsModule"]["locations"][2].update(status="RECRUITING")
    )
    (change,) = changes(base, one_opens)
    assert change.summary.endswith("NOT_YET_RECRUITING -> RECRUITING")


@pytest.mark.parametrize("edit", NOISE_EDITS, ids=list(NOISE_EDITS))
def test_noise_is_not_a_change(base, edit):
    new = edited(base, NOISE_EDITS[edit])
    assert changes(base, new) == []
    assert fingerprint(normalize_study(base)) == fingerprint(normalize_study(new))


def test_consecutive_daily_downloads_that_differ_only_in_version_holder_are_not_a_change():
    old, new = study(NOISE / "2026-02-03.json"), study(NOISE / "2026-02-04.json")
    assert old != new
    assert changes(old, new) == []


# --- what is a change ------------------------------------------------------------------


def test_a_real_opening_reads_like_a_colleagues_summary():
    found = changes(study(OPENING / "2026-02-10.json"), study(OPENING / "2026-03-10.json"))
    summaries = [c.summary for c in found]
    assert summaries[0] == "Overall status NOT_YET_RECRUITING -> RECRUITING"
    assert "Start slipped 2 months: 2025-02 -> 2025-04-11 (now ACTUAL, was ESTIMATED)" in summaries
    reworded = [c for c in found if c.field == "eligibility.inclusion"]
    assert len(reworded) == 2 and all(c.change.value == "modified" for c in reworded)
    assert {c.category.value for c in found} == {"status", "dates", "eligibility", "locations"}
    assert all(c.severity.value == "major" for c in found if c.category.value != "locations")
    assert sum(1 for c in found if c.category.value == "locations") == 16


def test_a_stale_record_flipped_to_unknown_is_a_status_change():
    found = changes(study(UNKNOWN / "2026-02-02.json"), study(UNKNOWN / "2026-03-02.json"))
    assert [c.summary for c in found] == [
        "Last known status set: NOT_YET_RECRUITING",
        "Overall status NOT_YET_RECRUITING -> UNKNOWN",
    ]


def test_primary_completion_slip_reports_days_and_type(base):
    def slip(d):
        protocol(d)["statusModule"]["primaryCompletionDateStruct"] = {"date": "2025-08-01", "type": "ESTIMATED"}

    def later(d):
        protocol(d)["statusModule"]["primaryCompletionDateStruct"] = {"date": "2026-02-01", "type": "ESTIMATED"}

    (change,) = changes(edited(base, slip), edited(base, later))
    assert change.category.value == "dates"
    assert change.severity.value == "major"
    assert change.summary == "Primary completion slipped 184 days: 2025-08-01 -> 2026-02-01 (ESTIMATED)"
    assert change.old == {"date": "2025-08-01", "type": "ESTIMATED"}


def test_a_date_type_flip_alone_is_a_change(base):
    def actual(d):
        protocol(d)["statusModule"]["completionDateStruct"]["type"] = "ACTUAL"

    (change,) = changes(base, edited(base, actual))
    assert change.summary == "Completion 2028-12 now ACTUAL (was ESTIMATED)"


def test_one_site_added_to_a_big_trial_is_one_change(base):
    sites = protocol(base)["contactsLocationsModule"]["locations"]
    template = sites[0]
    sites.extend(dict(template, facility=f"Research Site {i}", city=f"City {i}") for i in range(300))

    def add_one(d):
        protocol(d)["contactsLocationsModule"]["locations"].insert(
            3, dict(template, facility="New Hope Clinic", city="Lyon", country="France", status="RECRUITING")
        )

    found = changes(base, edited(base, add_one))
    (change,) = [c for c in found if c.field == "locations"]
    new_countries = [c.summary for c in found if c.field == "countries"]
    if template["country"] != "France":  # a country entering the trial is a change of its own
        assert new_countries == ["Country new to the trial: France"]
    assert change.category.value == "locations" and change.change.value == "added"
    assert (
        change.summary
        == "Site added: New Hope Clinic, Lyon, "
        + (f"{template['state']}, " if template.get("state") else "")
        + "France (RECRUITING)"
    )


def test_sites_are_matched_by_identity_even_with_repeated_names(base):
    def duplicate_research_sites(d):
        d_sites = protocol(d)["contactsLocationsModule"]["locations"]
        d_sites[:] = [dict(s, facility="Research Site") for s in d_sites]

    old = edited(base, duplicate_research_sites)

    def close_the_second(d):
        duplicate_research_sites(d)
        protocol(d)["contactsLocationsModule"]["locations"][1]["status"] = "WITHDRAWN"

    (change,) = changes(old, edited(base, close_the_second))
    assert change.field == "locations" and change.change.value == "modified"
    assert change.summary.endswith(
        f"{protocol(base)['contactsLocationsModule']['locations'][1]['status']} -> WITHDRAWN"
    )


def test_one_added_criterion_is_one_change_that_quotes_it(base):
    def add(d):
        module = protocol(d)["eligibilityModule"]
        module["eligibilityCriteria"] = module["eligibilityCriteria"].replace(
            "Exclusion Criteria:", "* Negative SARS-CoV-2 test.\n\nExclusion Criteria:"
        )

    (change,) = changes(base, edited(base, add))
    assert (change.category.value, change.field, change.change.value) == (
        "eligibility",
        "eligibility.inclusion",
        "added",
    )
    assert change.summary == 'Inclusion criterion added: "Negative SARS-CoV-2 test."'
    assert change.severity.value == "major"


def test_enrollment_change_names_both_counts_and_types(base):
    def actual(d):
        protocol(d)["designModule"]["enrollmentInfo"] = {"count": 99, "type": "ACTUAL"}

    def estimated(d):
        protocol(d)["designModule"]["enrollmentInfo"] = {"count": 263, "type": "ESTIMATED"}

    (change,) = changes(edited(base, estimated), edited(base, actual))
    assert change.summary == "Enrollment lowered: 263 ESTIMATED -> 99 ACTUAL"


@pytest.mark.parametrize(
    ("edit", "category", "severity"),
    [
        (
            lambda d: protocol(d)["statusModule"].update(overallStatus="TERMINATED", whyStopped="Sponsor decision"),
            "status",
            "major",
        ),
        (lambda d: protocol(d)["designModule"].update(phases=["PHASE2", "PHASE3"]), "design", "major"),
        (
            lambda d: protocol(d)["armsInterventionsModule"]["armGroups"][0].update(label="Arm Z"),
            "arms_interventions",
            "minor",
        ),
        (
            # The base trial started (ACTUAL 2025-04-11): a primary outcome changed now is an outcome switch.
            lambda d: protocol(d)["outcomesModule"]["primaryOutcomes"][0].update(timeFrame="Up to 10 years"),
            "outcome_switch",
            "major",
        ),
        (
            lambda d: protocol(d)["outcomesModule"]["secondaryOutcomes"][0].update(timeFrame="Up to 10 years"),
            "outcomes",
            "minor",
        ),
        (
            lambda d: protocol(d)["sponsorCollaboratorsModule"].update(
                collaborators=[{"name": "Acme", "class": "INDUSTRY"}]
            ),
            "sponsors",
            "minor",
        ),
        (lambda d: protocol(d)["identificationModule"].update(briefTitle="A New Title"), "identification", "minor"),
        (lambda d: protocol(d)["conditionsModule"]["conditions"].append("Gastric Cancer"), "conditions", "minor"),
        (lambda d: protocol(d)["descriptionModule"].update(briefSummary="Entirely new text."), "description", "minor"),
        (
            lambda d: protocol(d)["contactsLocationsModule"].update(
                centralContacts=[{"name": "Dr New", "role": "CONTACT"}]
            ),
            "contacts",
            "minor",
        ),
        (
            lambda d: protocol(d).update(
                referencesModule={"references": [{"pmid": "123", "type": "DERIVED", "citation": "A paper."}]}
            ),
            "references",
            "minor",
        ),
        (lambda d: d.update(resultsSection={"participantFlowModule": {"groups": []}}), "results", "major"),
        (
            lambda d: d.update(
                annotationSection={
                    "annotationModule": {
                        "unpostedAnnotation": {"unpostedEvents": [{"type": "RESET", "date": "2026-01-01"}]}
                    }
                }
            ),
            "results",
            "major",
        ),
        (lambda d: protocol(d).update(ipdSharingStatementModule={"ipdSharing": "YES"}), "other", "minor"),
    ],
    ids=[
        "status",
        "design",
        "arms",
        "primary_outcome",
        "secondary_outcome",
        "sponsors",
        "identification",
        "conditions",
        "description",
        "contacts",
        "references",
        "results",
        "results_event",
        "other",
    ],
)
def test_each_part_of_the_record_has_its_category_and_severity(base, edit, category, severity):
    found = changes(base, edited(base, edit))
    assert found, "expected a change"
    assert {c.category.value for c in found} == {category}
    assert {c.severity.value for c in found} == {severity}
    for change in found:
        assert set(change.to_dict()) == {"category", "field", "change", "old", "new", "severity", "summary"}


def test_fingerprint_differs_exactly_when_there_are_changes(base):
    new = edited(base, lambda d: protocol(d)["statusModule"].update(overallStatus="COMPLETED"))
    assert fingerprint(normalize_study(base)) != fingerprint(normalize_study(new))


def test_fields_one_format_does_not_show_are_not_compared_across_formats(base):
    import dataclasses

    from monitor.model import DatePoint

    api = normalize_study(base)
    page = dataclasses.replace(
        api,
        source="page_medpath",
        start_date=DatePoint(),
        completion_date=DatePoint(),
        locations=(),
        primary_completion_date=DatePoint(),
        overall_status="COMPLETED",
    )
    found = diff_records(page, api)
    assert [c.summary for c in found] == ["Overall status COMPLETED -> RECRUITING"]
