"""Display text as every normalizer cleans it (monitor.normalize.text), as a table of real cases."""

from __future__ import annotations

import json

import pytest

from monitor.normalize.text import clean, split_criteria
from monitor.sources.files import Payload

from conftest import OPENING, study


@pytest.mark.parametrize(
    ("given", "cleaned"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("Phase 2 Study", "Phase 2 Study"),
        ("  two  spaces\tand a tab  ", "two spaces and a tab"),
        ("no\u00a0break\u2003em\u3000ideographic", "no break em ideographic"),
        ("escaped \\* star and \\_underscore\\_", "escaped * star and _underscore_"),
        ("line one  \r\n  line two", "line one\nline two"),
        ("\n\nkept\n\n\n\nblank lines\n\n", "kept\n\nblank lines"),
        ("Hôpital  Européen", "Hôpital Européen"),
    ],
)
def test_clean_text(given, cleaned):
    assert clean(given) == cleaned


def test_criteria_markers_and_headings_are_taken_off():
    text = "Inclusion Criteria:\n\n* 1. Adults\n- a) Consent\n\nExclusion Criteria:\n\n  * Pregnancy  "
    assert split_criteria(text) == (["Adults", "Consent"], ["Pregnancy"])


def test_blank_eligibility_criteria_are_no_criteria_not_a_failed_trial():
    one = study(sorted(OPENING.glob("*.json"))[0])
    one["protocolSection"]["eligibilityModule"]["eligibilityCriteria"] = "   \n  "
    record = Payload("blank.json", json.dumps(one), one).snapshot().record
    assert (record.eligibility.inclusion, record.eligibility.exclusion) == ((), ())
