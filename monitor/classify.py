"""Field deltas -> categorised, ranked changes with a colleague's summary (pure)."""

from __future__ import annotations

from monitor.diff import Delta, field_deltas
from monitor.fields import FIELDS
from monitor.model import Category, Change, Severity, TrialRecord
from monitor.outcomes import flag_switches
from monitor.summaries import summarize

ORDER = list(Category)


def diff_records(old: TrialRecord, new: TrialRecord, new_projected: tuple[dict, dict] | None = None) -> list[Change]:
    """The meaningful changes from ``old`` to ``new``, most important first
    (``new_projected``: ``project(new)``, when the caller has it)."""
    changes = flag_switches(old, new, [classify(delta) for delta in field_deltas(old, new, new_projected)])
    return sorted(changes, key=lambda c: (c.severity != Severity.MAJOR, ORDER.index(c.category), c.field, c.summary))


def classify(delta: Delta) -> Change:
    """The delta's category and severity, as the field table (monitor.fields) declares them."""
    declared = FIELDS[delta.field]
    assert declared.severity is not None
    return Change(
        category=declared.category,
        field=delta.field,
        change=delta.change,
        old=delta.old,
        new=delta.new,
        severity=declared.severity,
        summary=summarize(delta),
    )
