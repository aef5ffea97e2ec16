"""Outcome switching: a primary outcome added, removed or reworded (measure or
time frame) after the ACTUAL start is flagged ``outcome_switch``, major, with
the start date; the same change before the start is an ordinary change."""

from __future__ import annotations

import json
from dataclasses import replace

from monitor.classify import diff_records
from monitor.model import DatePoint, Outcome
from monitor.normalize.ctgov import normalize_study

from conftest import OPENING, SHARED, needs_shared, study


def version(nct: str, day: str):
    return normalize_study(json.loads((SHARED / "versions" / nct / f"{day}.json").read_text()))


def switches(old, new) -> list[str]:
    return [c.summary for c in diff_records(old, new) if c.category.value == "outcome_switch"]


@needs_shared
def test_time_frames_of_primary_outcomes_reworded_after_the_start_are_switches():
    # NCT07227597 started 2026-01-29 (ACTUAL); the version posted 2026-02-20 shortened every time frame.
    old, new = version("NCT07227597", "2026-02-04"), version("NCT07227597", "2026-03-09")
    found = [c for c in diff_records(old, new) if c.field == "primary_outcomes"]
    assert [(c.category.value, c.severity.value) for c in found] == [("outcome_switch", "major")] * 3
    assert switches(old, new)[2] == (
        'Outcome switch after the ACTUAL start 2026-01-29: Primary outcome "Objective Response Rate (ORR)": '
        'time frame "Up to approximately 59 months" -> "Up to approximately 58 months"'
    )
    assert all(c.category.value == "outcomes" for c in diff_records(old, new) if c.field == "secondary_outcomes")


@needs_shared
def test_the_same_rewording_before_the_start_is_no_switch():
    old, new = version("NCT07227597", "2026-02-04"), version("NCT07227597", "2026-03-09")
    not_started = replace(new, start_date=DatePoint("2026-03-01", "ESTIMATED"))
    started_later = replace(new, start_date=DatePoint("2026-02-20", "ACTUAL"))  # the day it was posted
    assert switches(old, not_started) == [] and switches(old, started_later) == []
    assert {c.category.value for c in diff_records(old, not_started) if c.field == "primary_outcomes"} == {"outcomes"}


@needs_shared
def test_a_primary_outcome_description_edited_after_the_start_is_no_switch():
    # NCT07098338 started 2025-08-07; the version posted 2026-02-05 edited the ORR description only.
    assert switches(version("NCT07098338", "2026-02-02"), version("NCT07098338", "2026-02-09")) == []


STARTED = normalize_study(study(OPENING / "2026-03-10.json"))  # ACTUAL start 2025-04-11, posted 2026-03-10
PRIMARY, SECONDARY = STARTED.primary_outcomes[0], STARTED.secondary_outcomes[0]


def test_a_primary_outcome_added_after_the_start_is_a_switch():
    extra = Outcome("Overall survival", "Up to 2 years")
    new = replace(STARTED, primary_outcomes=(*STARTED.primary_outcomes, extra))
    assert switches(STARTED, new) == [
        'Outcome switch after the ACTUAL start 2025-04-11: Primary outcome added: "Overall survival" (Up to 2 years)'
    ]


def test_a_primary_and_a_secondary_outcome_trading_places_is_one_switch_each_way():
    new = replace(
        STARTED,
        primary_outcomes=(SECONDARY, *STARTED.primary_outcomes[1:]),
        secondary_outcomes=(PRIMARY, *STARTED.secondary_outcomes[1:]),
    )
    changes = diff_records(STARTED, new)
    assert sorted(switches(STARTED, new)) == [
        f'Outcome switch after the ACTUAL start 2025-04-11: primary outcome moved to secondary: "{PRIMARY.measure}"',
        f'Outcome switch after the ACTUAL start 2025-04-11: secondary outcome promoted to primary: "{SECONDARY.measure}"',
    ]
    assert [c for c in changes if c.field == "secondary_outcomes"] == [], "the secondary side is the same event"


def test_trading_places_before_the_start_is_an_ordinary_change():
    before = replace(STARTED, start_date=DatePoint("2026-06", "ESTIMATED"))
    new = replace(before, primary_outcomes=(SECONDARY,), secondary_outcomes=(PRIMARY,))
    assert switches(before, new) == []
    assert {c.field for c in diff_records(before, new)} == {"primary_outcomes", "secondary_outcomes"}
