"""Materiality (pure): how much a change or an event matters to a reader,
``high``, ``medium``, ``low`` or ``noise``, from a small rule table.

The rules are tried in order; the first that matches gives the level, and its
name travels with the change (``materiality_rule``), so a reader can see why.
The configuration can give any rule another level (``materiality:`` mapping a
rule name to a level); the order and the conditions stay.

=====================  =======  ===================================================
rule                   level    matches
=====================  =======  ===================================================
stopped-phase3         high     status to TERMINATED, SUSPENDED or WITHDRAWN, Phase 3
stopped                high     status to TERMINATED, SUSPENDED or WITHDRAWN
outcome-switch         high     an outcome switch (:mod:`monitor.outcomes`)
results-overdue        high     the ``results-overdue`` expected event fired
enrollment-cut         high     enrollment lowered by more than 30%
completion-slip        high     primary completion slipped more than 180 days
expected               medium   another expected event fired
status                 medium   any other overall-status change
results                medium   results posted or changed, delay certifications
eligibility            medium   an eligibility criterion, age, sex or volunteers
primary-outcome        medium   a primary outcome changed (before the start)
dates                  medium   any other start or completion date change
enrollment             medium   any other enrollment change
design                 medium   study type, phases, design details
membership             medium   a trial entering or leaving a saved search
resolved               low      an expected event stopped being true
site                   low      a site added, removed, renamed or its status
contacts               noise    central, site and investigator contacts
other                  low      anything else
=====================  =======  ===================================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date

from monitor.expected import day
from monitor.model import Category, Change, ChangeKind

LEVELS = ("noise", "low", "medium", "high")
RANK = {level: i for i, level in enumerate(LEVELS)}
STOPPED = {"TERMINATED", "SUSPENDED", "WITHDRAWN"}

Match = Callable[[Change, tuple[str, ...]], bool]


def _stopped(change: Change, phases) -> bool:
    return change.field == "overall_status" and change.new in STOPPED


def _enrollment_cut(change: Change, phases) -> bool:
    if change.field != "enrollment" or not isinstance(change.old, dict) or not isinstance(change.new, dict):
        return False
    old, new = change.old.get("count"), change.new.get("count")
    return bool(old) and new is not None and new < old * 0.7


def _slip_days(change: Change) -> int | None:
    old, new = day((change.old or {}).get("date")), day((change.new or {}).get("date"))
    return (new - old).days if isinstance(old, date) and isinstance(new, date) else None


def _completion_slip(change: Change, phases) -> bool:
    dated = isinstance(change.old, dict) and isinstance(change.new, dict)
    days = _slip_days(change) if change.field == "primary_completion_date" and dated else None
    return days is not None and days > 180


def _fired(change: Change) -> bool:
    return change.category == Category.EXPECTED and change.change == ChangeKind.ADDED


def _category(*categories: Category) -> Match:
    return lambda change, phases: change.category in categories


RULES: tuple[tuple[str, str, Match], ...] = (
    ("stopped-phase3", "high", lambda c, phases: _stopped(c, phases) and "PHASE3" in phases),
    ("stopped", "high", _stopped),
    ("outcome-switch", "high", _category(Category.OUTCOME_SWITCH)),
    ("results-overdue", "high", lambda c, phases: _fired(c) and c.field == "results-overdue"),
    ("enrollment-cut", "high", _enrollment_cut),
    ("completion-slip", "high", _completion_slip),
    ("expected", "medium", lambda c, phases: _fired(c)),
    ("status", "medium", lambda c, phases: c.field == "overall_status"),
    ("results", "medium", _category(Category.RESULTS)),
    ("eligibility", "medium", _category(Category.ELIGIBILITY)),
    ("primary-outcome", "medium", lambda c, phases: c.field == "primary_outcomes"),
    ("dates", "medium", _category(Category.DATES)),
    ("enrollment", "medium", _category(Category.ENROLLMENT)),
    ("design", "medium", _category(Category.DESIGN)),
    ("membership", "medium", _category(Category.MEMBERSHIP)),
    ("resolved", "low", _category(Category.EXPECTED)),
    ("site", "low", _category(Category.LOCATIONS)),
    ("contacts", "noise", _category(Category.CONTACTS)),
    ("other", "low", lambda c, phases: True),
)
RULE_NAMES = tuple(name for name, _, _ in RULES)


class Materiality:
    """The rule table with the configuration's levels on top."""

    def __init__(self, overrides: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        self.levels = {name: level for name, level, _ in RULES} | dict(overrides)

    def assess(self, change: Change, phases: Iterable[str] = ()) -> tuple[str, str]:
        """``(level, rule)`` of a change; ``phases`` are the trial's (for the Phase 3 rule)."""
        phases = tuple(phases)
        for name, _, matches in RULES:
            if matches(change, phases):
                return self.levels[name], name
        raise AssertionError("the last rule matches everything")

    def rank(self, change: Change, phases: Iterable[str] = ()) -> int:
        return RANK[self.assess(change, phases)[0]]

    def top(self, changes: Iterable[Change], phases: Iterable[str] = ()) -> tuple[str, str] | None:
        """``(level, rule)`` of the most material of ``changes`` (None when there are none)."""
        phases = tuple(phases)
        judged = [self.assess(c, phases) for c in changes]
        return max(judged, key=lambda j: RANK[j[0]]) if judged else None

    def annotate(self, data: dict, change: Change, phases: Iterable[str] = ()) -> dict:
        """A change's JSON with ``materiality`` and ``materiality_rule``."""
        level, rule = self.assess(change, phases)
        return {**data, "materiality": level, "materiality_rule": rule}


DEFAULT = Materiality()
