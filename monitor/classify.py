"""Field deltas -> categorised, ranked changes with a colleague's summary (pure)."""

from __future__ import annotations

from monitor.diff import Delta, field_deltas
from monitor.model import Category, Change, Severity, TrialRecord
from monitor.outcomes import flag_switches
from monitor.summaries import summarize

CATEGORY_OF = {
    "overall_status": Category.STATUS,
    "why_stopped": Category.STATUS,
    "last_known_status": Category.STATUS,
    "enrollment": Category.ENROLLMENT,
    "start_date": Category.DATES,
    "primary_completion_date": Category.DATES,
    "completion_date": Category.DATES,
    "study_type": Category.DESIGN,
    "phases": Category.DESIGN,
    "design_info": Category.DESIGN,
    "arms": Category.ARMS_INTERVENTIONS,
    "interventions": Category.ARMS_INTERVENTIONS,
    "primary_outcomes": Category.OUTCOMES,
    "secondary_outcomes": Category.OUTCOMES,
    "other_outcomes": Category.OUTCOMES,
    "locations": Category.LOCATIONS,
    "countries": Category.LOCATIONS,
    "site_contacts": Category.CONTACTS,
    "central_contacts": Category.CONTACTS,
    "officials": Category.CONTACTS,
    "lead_sponsor": Category.SPONSORS,
    "collaborators": Category.SPONSORS,
    "responsible_party": Category.SPONSORS,
    "nct_id": Category.IDENTIFICATION,
    "org_study_id": Category.IDENTIFICATION,
    "secondary_ids": Category.IDENTIFICATION,
    "brief_title": Category.IDENTIFICATION,
    "official_title": Category.IDENTIFICATION,
    "acronym": Category.IDENTIFICATION,
    "organization": Category.IDENTIFICATION,
    "conditions": Category.CONDITIONS,
    "keywords": Category.CONDITIONS,
    "brief_summary": Category.DESCRIPTION,
    "detailed_description": Category.DESCRIPTION,
    "references": Category.REFERENCES,
    "results": Category.RESULTS,
    "other": Category.OTHER,
}
MAJOR = {Category.STATUS, Category.ENROLLMENT, Category.DATES, Category.ELIGIBILITY, Category.DESIGN, Category.RESULTS}
ORDER = list(Category)


def diff_records(old: TrialRecord, new: TrialRecord, new_projected: tuple[dict, dict] | None = None) -> list[Change]:
    """The meaningful changes from ``old`` to ``new``, most important first
    (``new_projected``: ``project(new)``, when the caller has it)."""
    changes = flag_switches(old, new, [classify(delta) for delta in field_deltas(old, new, new_projected)])
    return sorted(changes, key=lambda c: (c.severity != Severity.MAJOR, ORDER.index(c.category), c.field, c.summary))


def category_of(field: str) -> Category:
    if field.startswith("eligibility."):
        return Category.ELIGIBILITY
    return CATEGORY_OF[field]


def classify(delta: Delta) -> Change:
    category = category_of(delta.field)
    major = category in MAJOR or delta.field == "primary_outcomes"
    return Change(
        category=category,
        field=delta.field,
        change=delta.change,
        old=delta.old,
        new=delta.new,
        severity=Severity.MAJOR if major else Severity.MINOR,
        summary=summarize(delta),
    )
