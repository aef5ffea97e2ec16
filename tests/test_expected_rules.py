"""The expected-event rules, as tables: real records that must and must not
make each rule fire at a fixed "today" (the newest last-update date of the real
data set), and small records of our own at the edges of each rule."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date

import pytest

from monitor.expected import RULES, Thresholds, evaluate
from monitor.model import DatePoint, Enrollment, Site
from monitor.normalize.ctgov import normalize_study

from conftest import OPENING, SHARED, needs_shared, study

TODAY = date(2026, 3, 12)  # the newest lastUpdatePostDate in ../shared/data/ctgov/records/


def real(nct: str):
    return normalize_study(json.loads((SHARED / "records" / f"{nct}.json").read_text()))


REAL_CASES = [
    # (rule, trial, the summary when it must fire, or None when it must not)
    (
        "completion-passed",
        "NCT04040387",
        "Primary completion 2024-08-24 passed 565 days ago; still ENROLLING_BY_INVITATION",
    ),
    ("completion-passed", "NCT03352193", "Primary completion 2025-10 passed 132 days ago; still RECRUITING"),
    ("completion-passed", "NCT05878938", "Primary completion 2024-09-09 passed 549 days ago; still NOT_YET_RECRUITING"),
    ("completion-passed", "NCT05714891", None),  # ACTIVE_NOT_RECRUITING, primary completion 2026-08-31 ahead
    ("completion-passed", "NCT00000410", None),  # COMPLETED
    (
        "results-overdue",
        "NCT05412966",
        "Results not posted 840 days after the one-year deadline (primary completion 2022-11-23, ACTUAL)",
    ),
    ("results-overdue", "NCT02519556", None),  # completed 2016-08, before the Final Rule
    ("results-overdue", "NCT02733926", None),  # answers neither FDA-regulated drug nor device
    ("results-overdue", "NCT05714891", None),  # primary completion still ESTIMATED
    ("verification-stale", "NCT05838768", "Status last verified 2023-05 (1016 days ago); still RECRUITING"),
    ("verification-stale", "NCT02733926", "Status last verified 2019-07 (2416 days ago); still UNKNOWN"),
    ("verification-stale", "NCT05714891", None),  # verified 2025-01
    ("verification-stale", "NCT04442932", None),  # WITHDRAWN: a final status needs no verifying
    ("inconsistent", "NCT00124774", "COMPLETED with an ESTIMATED enrollment (50)"),
    ("inconsistent", "NCT05838768", "RECRUITING with the start date still ESTIMATED (2023-06-16)"),
    ("inconsistent", "NCT00000410", None),
    ("inconsistent", "NCT05999253", None),
]


@needs_shared
@pytest.mark.parametrize(("rule", "nct", "summary"), REAL_CASES, ids=[f"{r}-{n}" for r, n, _ in REAL_CASES])
def test_each_rule_fires_on_the_real_records_where_it_must_and_only_there(rule, nct, summary):
    assert RULES[rule](real(nct), TODAY, Thresholds()) == summary


# RECRUITING, start 2025-04-11 (ACTUAL), primary completion 2027-12 (ESTIMATED); verification left out.
OWN = replace(normalize_study(study(OPENING / "2026-03-10.json")), status_verified=None)
ENDED = replace(
    OWN,
    start_date=DatePoint("2023-01-05", "ACTUAL"),
    overall_status="COMPLETED",
    enrollment=Enrollment(24, "ACTUAL"),
    primary_completion_date=DatePoint("2024-01-10", "ACTUAL"),
    completion_date=DatePoint("2024-02-01", "ACTUAL"),
    phases=("PHASE2",),
    other=(("oversight isFdaRegulatedDrug", True),),
)

OWN_CASES = [
    # (what, record, today, the rules that fire)
    ("a recruiting trial before its completion", OWN, date(2027, 12, 31), []),
    ("month-precision date: 30 days of grace after the month's end", OWN, date(2028, 1, 30), []),
    ("31 days past the month's end", OWN, date(2028, 1, 31), ["completion-passed"]),
    (
        "an ACTUAL primary completion is not a missed one",
        replace(OWN, primary_completion_date=DatePoint("2027-12-01", "ACTUAL")),
        date(2028, 6, 1),
        [],
    ),
    ("completed, results within the year and grace", ENDED, date(2025, 2, 8), []),
    ("completed, results one year and 31 days late", ENDED, date(2025, 2, 9), ["results-overdue"]),
    ("results posted", replace(ENDED, results=(("results_first_posted", "2025-01-05"),)), date(2026, 1, 1), []),
    (
        "a certification to delay results",
        replace(ENDED, results=(("results_delay_submitted", "2024-12-20"),)),
        date(2026, 1, 1),
        [],
    ),
    ("Phase 1 only is not covered", replace(ENDED, phases=("PHASE1",)), date(2026, 1, 1), []),
    ("observational is not covered", replace(ENDED, study_type="OBSERVATIONAL"), date(2026, 1, 1), []),
    (
        "no FDA answer but a US site",
        replace(ENDED, other=(), locations=(Site("Mayo Clinic", "Rochester", "Minnesota", "United States"),)),
        date(2026, 1, 1),
        ["results-overdue"],
    ),
    ("no FDA answer and no US site", replace(ENDED, other=()), date(2026, 1, 1), []),
    ("verified 730 days ago is not stale yet", replace(OWN, status_verified="2024-03-12"), date(2026, 3, 12), []),
    ("verified 731 days ago", replace(OWN, status_verified="2024-03-11"), date(2026, 3, 12), ["verification-stale"]),
    (
        "ACTUAL enrollment while not yet recruiting",
        replace(
            OWN,
            overall_status="NOT_YET_RECRUITING",
            start_date=DatePoint("2026-05", "ESTIMATED"),
            enrollment=Enrollment(12, "ACTUAL"),
        ),
        date(2026, 3, 12),
        ["inconsistent"],
    ),
    (
        "a start in the future while recruiting",
        replace(OWN, start_date=DatePoint("2026-06-01", "ESTIMATED")),
        date(2026, 3, 12),
        ["inconsistent"],
    ),
    (
        "an ACTUAL date in the future",
        replace(OWN, start_date=DatePoint("2026-04-01", "ACTUAL")),
        date(2026, 3, 12),
        ["inconsistent"],
    ),
    (
        "an ACTUAL month-precision date in the current month",
        replace(OWN, start_date=DatePoint("2026-03", "ACTUAL")),
        date(2026, 3, 12),
        [],
    ),
    (
        "COMPLETED with an ESTIMATED completion date",
        replace(ENDED, completion_date=DatePoint("2024-03", "ESTIMATED")),
        date(2024, 6, 1),
        ["inconsistent"],
    ),
    (
        "WITHDRAWN with participants",
        replace(ENDED, overall_status="WITHDRAWN", primary_completion_date=DatePoint("2024-01", "ESTIMATED")),
        date(2024, 6, 1),
        ["inconsistent"],
    ),
    (
        "primary completion before the start",
        replace(OWN, primary_completion_date=DatePoint("2025-01-01", "ESTIMATED")),
        date(2025, 1, 15),
        ["inconsistent"],
    ),
]


@pytest.mark.parametrize(("what", "record", "today", "fired"), OWN_CASES, ids=[c[0] for c in OWN_CASES])
def test_each_rule_at_its_edges(what, record, today, fired):
    assert [f.rule for f in evaluate(record, today)] == fired


def test_thresholds_come_from_the_configuration():
    stale = replace(OWN, status_verified="2025-01-01")
    assert evaluate(stale, date(2026, 3, 12)) == []
    (found,) = evaluate(stale, date(2026, 3, 12), Thresholds(verification_days=365))
    assert found.summary == "Status last verified 2025-01-01 (435 days ago); still RECRUITING"


def shifted(record, **dates):
    """``record`` with some of its dates replaced: ``name=(date, type)`` (``status_verified=(date, None)``)."""
    verified = dates.pop("status_verified", None)
    points = {name: replace(getattr(record, name), date=value, type=kind) for name, (value, kind) in dates.items()}
    return replace(record, **points, **({"status_verified": verified[0]} if verified else {}))


@pytest.mark.parametrize(
    "thresholds", [Thresholds(), Thresholds(completion_grace_days=3, results_grace_days=5, verification_days=40)]
)
def test_next_due_is_the_first_day_the_rules_true_for_an_unchanged_record_differ(thresholds):
    """The daily pass may skip a trial until its due day: on every day before it the rules true are
    today's, on it they differ (checked day by day over two and a half years)."""
    from datetime import timedelta

    from monitor.expected_events import next_due

    base = normalize_study(study(OPENING / "2026-03-10.json"))
    today = date(2026, 3, 12)
    records = [
        base,
        shifted(base, primary_completion_date=("2026-04-02", "ESTIMATED")),
        shifted(base, primary_completion_date=("2026-05", "ESTIMATED"), status_verified=("2026-01", None)),
        shifted(base, start_date=("2026-06", "ESTIMATED"), primary_completion_date=("2025-12-01", "ACTUAL")),
        shifted(base, start_date=("2026-04-20", "ACTUAL"), completion_date=("2027-02", "ACTUAL")),
        replace(shifted(base, primary_completion_date=("2025-11-30", "ACTUAL")), overall_status="COMPLETED"),
    ]
    turned = 0
    for record in records:
        now = {f.rule for f in evaluate(record, today, thresholds)}
        due = next_due(record, today, thresholds)
        for offset in range(1, 900):
            when = today + timedelta(days=offset)
            rules = {f.rule for f in evaluate(record, when, thresholds)}
            if due is None or when < due:
                assert rules == now, (record.start_date, record.primary_completion_date, when, due)
            else:
                assert when == due and rules != now, (when, due)
                turned += 1
                break
    assert turned >= 4, "most of these records turn within the window"
