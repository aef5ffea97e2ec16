"""Outcome switching (pure): a primary outcome added, removed or reworded (its
measure or its time frame) after the trial's ACTUAL start, or a primary and a
secondary outcome trading places then.

Such a change keeps its summary, prefixed with the start date, and becomes
category ``outcome_switch``, severity major.  "After the start" means the new
version was posted (its last-update date) after the ACTUAL start date; a
month-precision start counts as the last day of its month, so a change within
the start month is not called a switch.  A change of an outcome's description
only is not a switch.
"""

from __future__ import annotations

from dataclasses import replace

from monitor.expected import day
from monitor.model import Category, Change, ChangeKind, Severity, TrialRecord
from monitor.normalize.text import comparable, identity


def started_before_posting(new: TrialRecord) -> bool:
    start = new.start_date
    started, posted = day(start.date), day(new.last_update_posted)
    return start.type == "ACTUAL" and started is not None and posted is not None and started < posted


def _reworded(change: Change) -> bool:
    if change.change != ChangeKind.MODIFIED:
        return True
    old, new = change.old or {}, change.new or {}
    return any(comparable(old.get(k) or "") != comparable(new.get(k) or "") for k in ("measure", "time_frame"))


def _measure(item) -> str:
    return identity((item or {}).get("measure") or "")


def flag_switches(old: TrialRecord, new: TrialRecord, changes: list[Change]) -> list[Change]:
    """``changes`` with the outcome switches among them flagged."""
    if not started_before_posting(new) or not any(c.field == "primary_outcomes" for c in changes):
        return changes
    start = f"after the ACTUAL start {new.start_date.date}"
    was_secondary = {identity(o.measure) for o in old.secondary_outcomes}
    now_secondary = {identity(o.measure) for o in new.secondary_outcomes}
    traded: set[str] = set()
    flagged = []
    for change in changes:
        if change.field != "primary_outcomes" or not _reworded(change):
            flagged.append(change)
            continue
        summary = f"Outcome switch {start}: {change.summary}"
        if change.change == ChangeKind.REMOVED and _measure(change.old) in now_secondary:
            traded.add(_measure(change.old))
            summary = f'Outcome switch {start}: primary outcome moved to secondary: "{change.old["measure"]}"'
        elif change.change == ChangeKind.ADDED and _measure(change.new) in was_secondary:
            traded.add(_measure(change.new))
            summary = f'Outcome switch {start}: secondary outcome promoted to primary: "{change.new["measure"]}"'
        flagged.append(replace(change, category=Category.OUTCOME_SWITCH, severity=Severity.MAJOR, summary=summary))
    # The secondary side of a trade is the same event: told once, by the switch.
    return [
        c
        for c in flagged
        if not (
            c.field == "secondary_outcomes"
            and c.change != ChangeKind.MODIFIED
            and _measure(c.new if c.change == ChangeKind.ADDED else c.old) in traded
        )
    ]
