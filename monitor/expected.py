"""Expected events: what should have happened to a trial and did not (pure).

A diff only sees what a sponsor changed; these rules see what did *not*
change when it should have.  Each rule is a pure function of a record and
"today" (the caller's clock, never the wall clock), returning a
:class:`Finding` (true now, with a sentence) or None:

``completion-passed``
    The primary completion date, still ESTIMATED (or untyped), is more than
    ``completion_grace_days`` (30) in the past, and the overall status is still
    NOT_YET_RECRUITING, RECRUITING, ENROLLING_BY_INVITATION or
    ACTIVE_NOT_RECRUITING.
``results-overdue``
    The FDAAA 801 results clock, as an *indicator*: an interventional trial,
    not Phase 1 only, whose primary completion is ACTUAL, on or after
    2017-01-18 (the Final Rule) and more than 365 + ``results_grace_days`` (30)
    days ago, with no results posted and no certification to delay results,
    that studies an FDA-regulated drug or device (as the record answers), or,
    for records that do not answer (older ones), has a site in the United
    States.
    Whether a trial is an "applicable clinical trial" is a legal question the
    record cannot settle.
``verification-stale``
    The status was last verified more than ``verification_days`` (730, the
    point at which ClinicalTrials.gov shows an active trial as UNKNOWN) ago,
    and the trial is not in a final status (COMPLETED, TERMINATED, WITHDRAWN).
``inconsistent``
    The status and the dates or enrollment disagree (sub-checks, see
    :data:`INCONSISTENCIES`).

Month-precision dates (``2024-03``) count as the last day of their month, so a
date passes only once its whole month has.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from pydantic import ConfigDict
from pydantic.dataclasses import dataclass as settings_dataclass

from monitor.model import TrialRecord
from monitor.settingtypes import Whole

ONGOING = ("NOT_YET_RECRUITING", "RECRUITING", "ENROLLING_BY_INVITATION", "ACTIVE_NOT_RECRUITING")
FINAL = ("COMPLETED", "TERMINATED", "WITHDRAWN")
FINAL_RULE = date(2017, 1, 18)  # FDAAA 801 Final Rule: trials completing on or after it


@settings_dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class Thresholds:
    """The rules' settings (``expected:`` in the configuration); a huge value turns a rule off."""

    completion_grace_days: Whole(0, 1_000_000) = 30
    results_grace_days: Whole(0, 1_000_000) = 30
    verification_days: Whole(1, 1_000_000) = 730


DEFAULT = Thresholds()


@dataclass(frozen=True)
class Finding:
    rule: str
    key: str
    summary: str


def day(text: str | None) -> date | None:
    """A registry date as a day; ``YYYY-MM`` is the last day of its month."""
    if not text:
        return None
    try:
        if len(text) == 7:
            year, month = int(text[:4]), int(text[5:7])
            return date(year, month, calendar.monthrange(year, month)[1])
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def _status(record: TrialRecord) -> str:
    return record.overall_status or "no status"


def completion_passed(record: TrialRecord, today: date, t: Thresholds = DEFAULT) -> str | None:
    point = record.primary_completion_date
    when = day(point.date)
    if when is None or point.type == "ACTUAL" or record.overall_status not in ONGOING:
        return None
    late = (today - when).days
    if late <= t.completion_grace_days:
        return None
    return f"Primary completion {point.date} passed {late} days ago; still {record.overall_status}"


def results_overdue(record: TrialRecord, today: date, t: Thresholds = DEFAULT) -> str | None:
    point = record.primary_completion_date
    when = day(point.date)
    if record.study_type != "INTERVENTIONAL" or point.type != "ACTUAL" or when is None or when < FINAL_RULE:
        return None
    if record.phases and set(record.phases) <= {"EARLY_PHASE1", "PHASE1"}:
        return None
    results = dict(record.results)
    if "results_first_posted" in results or "results_delay_submitted" in results:
        return None
    other = dict(record.other)
    flags = (other.get("oversight isFdaRegulatedDrug"), other.get("oversight isFdaRegulatedDevice"))
    if True not in flags and (False in flags or not any(s.country == "United States" for s in record.locations)):
        return None  # not FDA-regulated, or (no answer and) no site in the United States
    late = (today - when).days - 365
    if late <= t.results_grace_days:
        return None
    return f"Results not posted {late} days after the one-year deadline (primary completion {point.date}, ACTUAL)"


def verification_stale(record: TrialRecord, today: date, t: Thresholds = DEFAULT) -> str | None:
    when = day(record.status_verified)
    if when is None or record.overall_status in FINAL:
        return None
    age = (today - when).days
    if age <= t.verification_days:
        return None
    return f"Status last verified {record.status_verified} ({age} days ago); still {_status(record)}"


def _completed_estimated(record: TrialRecord, today: date) -> str | None:
    if record.overall_status != "COMPLETED":
        return None
    for label, point in (
        ("primary completion", record.primary_completion_date),
        ("completion", record.completion_date),
    ):
        if point.date and point.type == "ESTIMATED":
            return f"COMPLETED with an ESTIMATED {label} date ({point.date})"
    return None


def _estimated_enrollment_ended(record: TrialRecord, today: date) -> str | None:
    if record.overall_status in ("COMPLETED", "TERMINATED") and record.enrollment.type == "ESTIMATED":
        return f"{record.overall_status} with an ESTIMATED enrollment ({record.enrollment.count})"
    return None


def _withdrawn_with_participants(record: TrialRecord, today: date) -> str | None:
    count = record.enrollment.count
    if record.overall_status == "WITHDRAWN" and record.enrollment.type == "ACTUAL" and count:
        return f"WITHDRAWN (no participant enrolled) with an ACTUAL enrollment of {count}"
    return None


def _estimated_start_under_way(record: TrialRecord, today: date) -> str | None:
    under_way = ("RECRUITING", "ENROLLING_BY_INVITATION", "ACTIVE_NOT_RECRUITING", "COMPLETED", "TERMINATED")
    if record.overall_status in under_way and record.start_date.date and record.start_date.type == "ESTIMATED":
        return f"{record.overall_status} with the start date still ESTIMATED ({record.start_date.date})"
    return None


def _actual_enrollment_not_started(record: TrialRecord, today: date) -> str | None:
    if record.overall_status == "NOT_YET_RECRUITING" and record.enrollment.type == "ACTUAL":
        return f"ACTUAL enrollment of {record.enrollment.count} while NOT_YET_RECRUITING"
    return None


def _future_start_under_way(record: TrialRecord, today: date) -> str | None:
    start = day(record.start_date.date)
    if record.start_date.type == "ACTUAL":
        return None  # an ACTUAL date in the future is its own sub-check
    under_way = ("RECRUITING", "ENROLLING_BY_INVITATION", "ACTIVE_NOT_RECRUITING", "COMPLETED")
    if (
        start is not None
        and start > today
        and record.overall_status in under_way
        and not _this_month(record.start_date.date, today)
    ):
        return f"Start {record.start_date.date} is in the future while {record.overall_status}"
    return None


def _actual_date_in_future(record: TrialRecord, today: date) -> str | None:
    for label, point in (
        ("start", record.start_date),
        ("primary completion", record.primary_completion_date),
        ("completion", record.completion_date),
    ):
        when = day(point.date)
        # A month-precision ACTUAL date may be the current month.
        if point.type == "ACTUAL" and when is not None and when > today and not _this_month(point.date, today):
            return f"ACTUAL {label} date {point.date} is in the future"
    return None


def _this_month(text: str | None, today: date) -> bool:
    return bool(text) and len(text) == 7 and text == today.isoformat()[:7]


def _completion_before_start(record: TrialRecord, today: date) -> str | None:
    start, end = day(record.start_date.date), day(record.primary_completion_date.date)
    if start is not None and end is not None and end < start and len(record.start_date.date or "") == 10:
        return f"Primary completion {record.primary_completion_date.date} is before the start {record.start_date.date}"
    return None


INCONSISTENCIES: dict[str, Callable[[TrialRecord, date], str | None]] = {
    "completed-with-estimated-date": _completed_estimated,
    "estimated-enrollment-ended": _estimated_enrollment_ended,
    "withdrawn-with-participants": _withdrawn_with_participants,
    "actual-enrollment-not-yet-recruiting": _actual_enrollment_not_started,
    "estimated-start-under-way": _estimated_start_under_way,
    "future-start-under-way": _future_start_under_way,
    "actual-date-in-future": _actual_date_in_future,
    "completion-before-start": _completion_before_start,
}


def inconsistent(record: TrialRecord, today: date, t: Thresholds = DEFAULT) -> str | None:
    found = [text for check in INCONSISTENCIES.values() if (text := check(record, today))]
    return "; ".join(found) or None


RULES: dict[str, Callable[[TrialRecord, date, Thresholds], str | None]] = {
    "completion-passed": completion_passed,
    "results-overdue": results_overdue,
    "verification-stale": verification_stale,
    "inconsistent": inconsistent,
}


def evaluate(record: TrialRecord, today: date, t: Thresholds = DEFAULT, rules=None) -> list[Finding]:
    """The rules true for ``record`` on ``today`` (all rules, or those named)."""
    found = []
    for name in rules or RULES:
        summary = RULES[name](record, today, t)
        if summary:
            found.append(Finding(name, record.key, summary))
    return found
