"""Notification messages rendered over every real version transition in
../shared/data/ctgov/versions/, checked against expected output kept in
tests/expected/messages/ for a reviewer to read.

After a deliberate change to the messages, regenerate them with
``UPDATE_EXPECTED=1 python -m pytest tests/test_messages.py`` and read the diff.
"""

from __future__ import annotations

import json
import os

import pytest

from monitor.classify import diff_records
from monitor.messages import digest_message, event_message, trial_context
from monitor.normalize import normalize_study

from conftest import ROOT, SHARED, needs_shared
from test_real_versions import TRANSITIONS

EXPECTED = ROOT / "tests" / "expected" / "messages"
EVERY_FORMAT = {"NCT06821503", "NCT06203210", "NCT07099898"}  # also rendered as Markdown and HTML

pytestmark = needs_shared


def records(trial: str, days: str):
    old, new = days.split("->")
    load = lambda day: normalize_study(json.loads((SHARED / "versions" / trial / f"{day}.json").read_text()))  # noqa: E731
    return load(old), load(new)


def check(name: str, text: str) -> None:
    path = EXPECTED / name
    if os.environ.get("UPDATE_EXPECTED"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} is missing: run with UPDATE_EXPECTED=1 and read what it wrote"
    assert text == path.read_text()


CASES = [
    (t, d, fmt) for t, d, _ in TRANSITIONS for fmt in (["text", "markdown", "html"] if t in EVERY_FORMAT else ["text"])
]


@pytest.mark.parametrize(("trial", "days", "fmt"), CASES, ids=[f"{t}:{d}:{f}" for t, d, f in CASES])
def test_a_real_transition_renders_as_expected(trial, days, fmt):
    old, new = records(trial, days)
    changes = diff_records(old, new)
    message = event_message(new.key, new.title, changes, fmt, 2, 1)
    suffix = {"text": "txt", "markdown": "md", "html": "html"}[fmt]
    check(f"{trial}_{days.replace('->', '_')}.{suffix}", f"Subject: {message.title}\n\n{message.body}")


def test_a_digest_of_several_real_transitions_renders_as_expected():
    contexts = []
    for trial, days, _ in TRANSITIONS[:6]:
        old, new = records(trial, days)
        changes = diff_records(old, new)
        if changes:
            contexts.append(trial_context(new.key, new.title, changes))
    message = digest_message("daily-email", "daily", contexts, "text")
    check("digest_daily.txt", f"Subject: {message.title}\n\n{message.body}")


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_category_headings_are_words_never_the_enum_name(fmt):
    from monitor.model import Category, Change, ChangeKind, Severity

    changes = [
        Change(Category.OUTCOME_SWITCH, "primary_outcomes", ChangeKind.ADDED, None, "OS", Severity.MAJOR, "switch"),
        Change(Category.ARMS_INTERVENTIONS, "arms", ChangeKind.ADDED, None, "A", Severity.MINOR, "arm added"),
    ]
    body = event_message("NCT00000001", "T", changes, fmt, 2, 1).body
    assert "outcome switch" in body.lower() and "arms and interventions" in body.lower()
    for raw in ("OUTCOME_SWITCH", "outcome_switch", "ARMS_INTERVENTIONS", "arms_interventions"):
        assert raw not in body
