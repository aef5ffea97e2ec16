"""Field deltas -> categorised, ranked changes with a colleague's summary (pure)."""

from __future__ import annotations

from datetime import date
from typing import Any

from monitor.diff import Delta, field_deltas
from monitor.model import Category, Change, ChangeKind, Severity, TrialRecord
from monitor.outcomes import flag_switches

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

LABELS = {
    "overall_status": "Overall status",
    "why_stopped": "Why stopped",
    "last_known_status": "Last known status",
    "start_date": "Start",
    "primary_completion_date": "Primary completion",
    "completion_date": "Completion",
    "study_type": "Study type",
    "phases": "Phase",
    "brief_title": "Brief title",
    "official_title": "Official title",
    "acronym": "Acronym",
    "organization": "Organization",
    "nct_id": "NCT id",
    "org_study_id": "Org study id",
    "responsible_party": "Responsible party",
    "brief_summary": "Brief summary",
    "detailed_description": "Detailed description",
    "eligibility.minimum_age": "Minimum age",
    "eligibility.maximum_age": "Maximum age",
    "eligibility.sex": "Sex",
    "eligibility.std_ages": "Age groups",
    "eligibility.study_population": "Study population",
    "secondary_ids": "Secondary id",
    "conditions": "Condition",
    "keywords": "Keyword",
    "collaborators": "Collaborator",
    "officials": "Investigator",
    "central_contacts": "Central contact",
    "primary_outcomes": "Primary outcome",
    "secondary_outcomes": "Secondary outcome",
    "other_outcomes": "Other outcome",
    "eligibility.inclusion": "Inclusion criterion",
    "eligibility.exclusion": "Exclusion criterion",
    "arms": "Arm",
    "interventions": "Intervention",
    "references": "Reference",
    "locations": "Site",
}
QUOTE_LIMIT = 200


def diff_records(old: TrialRecord, new: TrialRecord) -> list[Change]:
    """The meaningful changes from ``old`` to ``new``, most important first."""
    changes = flag_switches(old, new, [classify(delta) for delta in field_deltas(old, new)])
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


# --- summaries ---------------------------------------------------------------------


def quote(text: Any) -> str:
    text = " ".join(str(text).split())
    if len(text) > QUOTE_LIMIT:
        text = text[: QUOTE_LIMIT - 1].rstrip() + "…"
    return f'"{text}"'


def summarize(delta: Delta) -> str:
    field = delta.field
    special = _SPECIAL.get(field)
    if special:
        return special(delta)
    if field.endswith("_date"):
        return _date_summary(delta)
    if field in ("design_info", "results", "other"):
        return _bag_summary(delta)
    label = LABELS.get(field, field.replace("_", " ").capitalize())
    if delta.key is not None:
        return _item_summary(label, delta)
    return _scalar_summary(label, delta)


def _scalar_summary(label: str, delta: Delta) -> str:
    if delta.field in ("brief_summary", "detailed_description", "eligibility.study_population"):
        return f"{label} {_text_edit(delta.old, delta.new)}"
    return _value_summary(label, delta)


def _value_summary(label: str, delta: Delta) -> str:
    """``X set: new``, ``X removed (was old)`` or ``X old -> new``."""
    if delta.change == ChangeKind.ADDED:
        return f"{label} set: {_show(delta.new)}"
    if delta.change == ChangeKind.REMOVED:
        return f"{label} removed (was {_show(delta.old)})"
    return f"{label} {_show(delta.old)} -> {_show(delta.new)}"


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    if value is None:
        return "none"
    if isinstance(value, str) and len(value) > 40:
        return quote(value)
    return str(value)


def _text_edit(old: str | None, new: str | None) -> str:
    if not old:
        return "added"
    if not new:
        return "removed"
    import difflib

    a, b = old.split(), new.split()
    changed = sum(
        max(i2 - i1, j2 - j1)
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
        if tag != "equal"
    )
    return f"edited ({changed} of {max(len(a), len(b))} words changed)"


def _item_name(field: str, item: dict | str | None) -> str:
    if item is None:
        return "?"
    if isinstance(item, str):
        return quote(item)
    if field in ("eligibility.inclusion", "eligibility.exclusion"):
        return quote(item)
    if field == "arms":
        return quote(item["label"]) + (f" ({item['type']})" if item.get("type") else "")
    if field == "interventions":
        return (f"{item['type'].replace('_', ' ').title()}: " if item.get("type") else "") + item["name"]
    if field.endswith("_outcomes"):
        return quote(item["measure"]) + (f" ({item['time_frame']})" if item.get("time_frame") else "")
    if field == "locations":
        return _site(item) + (f" ({item['status']})" if item.get("status") else "")
    if field == "site_contacts":
        return item["site"]
    if field in ("officials", "central_contacts"):
        return (item.get("name") or item.get("email") or "?") + (f" ({item['role']})" if item.get("role") else "")
    if field == "collaborators":
        return item["name"]
    if field == "references":
        pmid = f"PMID {item['pmid']}" if item.get("pmid") else quote(item.get("citation") or "")
        return pmid + (f" ({item['type']})" if item.get("type") else "")
    return quote(item)


def _site(item: dict) -> str:
    return ", ".join(p for p in (item.get("facility"), item.get("city"), item.get("state"), item.get("country")) if p)


def _item_summary(label: str, delta: Delta) -> str:
    field = delta.field
    if delta.change == ChangeKind.ADDED:
        return f"{label} added: {_item_name(field, delta.new)}"
    if delta.change == ChangeKind.REMOVED:
        return f"{label} removed: {_item_name(field, delta.old)}"
    if field == "locations":
        return _site_summary(delta)
    if isinstance(delta.old, str) or field in ("eligibility.inclusion", "eligibility.exclusion"):
        return f"{label} reworded: {quote(delta.old)} -> {quote(delta.new)}"
    old_name, new_name = _item_name(field, delta.old), _item_name(field, delta.new)
    if field == "site_contacts":
        return f"Site contacts changed at {new_name}"
    parts = [p.replace("_", " ") for p in delta.parts if p != "type" or field != "references"]
    what = ", ".join(parts) if parts else "details"
    if old_name != new_name and field.endswith("_outcomes"):
        return f"{label} reworded: {old_name} -> {new_name}"
    if field.endswith("_outcomes") and delta.parts == ("time_frame",):
        old_frame, new_frame = quote(delta.old["time_frame"]), quote(delta.new["time_frame"])
        return f"{label} {quote(delta.new['measure'])} time frame {old_frame} -> {new_frame}"
    if old_name != new_name:
        return f"{label} changed: {old_name} -> {new_name}"
    return f"{label} {new_name} changed: {what}"


def _site_summary(delta: Delta) -> str:
    old, new = delta.old, delta.new
    place = _site(new)
    if _site(old) != place and old.get("status") == new.get("status"):
        return f"Site renamed: {_site(old)} -> {place}"
    if _site(old) != place:
        return f"Site renamed: {_site(old)} -> {place}; status {old.get('status')} -> {new.get('status')}"
    return f"Site {place}: {old.get('status') or 'no status'} -> {new.get('status') or 'no status'}"


def _enrollment_summary(delta: Delta) -> str:
    old, new = delta.old or {}, delta.new or {}
    old_n, new_n = old.get("count"), new.get("count")
    old_t, new_t = old.get("type"), new.get("type")
    if old_n is None and new_n is None:
        return "Enrollment removed"
    if old_n is None:
        return f"Enrollment set: {new_n}" + (f" {new_t}" if new_t else "")
    if new_n is None:
        return f"Enrollment removed (was {old_n})"
    if old_n == new_n:
        return f"Enrollment {new_n} now {new_t or 'untyped'} (was {old_t or 'untyped'})"
    direction = "raised" if new_n > old_n else "lowered"
    diff = new_n - old_n
    if old_t != new_t:
        return f"Enrollment {direction}: {old_n} {old_t or ''} -> {new_n} {new_t or ''}".replace("  ", " ").strip()
    return f"Enrollment {direction} {old_n} -> {new_n} ({diff:+d}" + (f", {new_t})" if new_t else ")")


def _months(text: str) -> int:
    year, month = text.split("-")[:2]
    return int(year) * 12 + int(month)


def _date_summary(delta: Delta) -> str:
    label = LABELS[delta.field]
    old, new = delta.old or {}, delta.new or {}
    old_d, new_d, old_t, new_t = old.get("date"), new.get("date"), old.get("type"), new.get("type")
    if not old_d and new_d:
        return f"{label} date set: {new_d}" + (f" ({new_t})" if new_t else "")
    if old_d and not new_d:
        return f"{label} date removed (was {old_d})"
    if old_d == new_d:
        return f"{label} {new_d} now {new_t or 'untyped'} (was {old_t or 'untyped'})"
    if len(old_d) == 10 and len(new_d) == 10:
        days = (date.fromisoformat(new_d) - date.fromisoformat(old_d)).days
        amount = f"{abs(days)} day{'s' if abs(days) != 1 else ''}"
    else:
        days = _months(new_d) - _months(old_d)
        amount = f"{abs(days)} month{'s' if abs(days) != 1 else ''}"
    if days > 0:
        verb = f"slipped {amount}"
    elif days < 0:
        verb = f"moved {amount} earlier"
    else:
        verb = "made more precise"
    if old_t != new_t:
        kind = f"now {new_t or 'untyped'}, was {old_t or 'untyped'}"
    else:
        kind = new_t or "untyped"
    return f"{label} {verb}: {old_d} -> {new_d} ({kind})"


def _bag_summary(delta: Delta) -> str:
    key = delta.key or ""
    if delta.field == "results":
        if key == "results_first_posted":
            return f"Results first posted {delta.new}" if delta.new else "Results first-posted date removed"
        if key == "results_delay_submitted":
            return (
                f"Certification to delay results submitted {delta.new}"
                if delta.new
                else "Certification to delay results withdrawn"
            )
        if key.startswith("section "):
            name = key.removeprefix("section ")
            verb = {"added": "posted", "removed": "removed", "modified": "changed"}[delta.change.value]
            return f"Results {name} {verb}"
        if key.startswith("event "):
            return f"Results submission event {key.removeprefix('event ')}" + (" added" if delta.new else " removed")
        return f"Results {key} " + (
            f"{delta.old} -> {delta.new}" if delta.old is not None and delta.new is not None else delta.change.value
        )
    label = key.replace("_", " ")
    if delta.field == "design_info":
        label = f"Design {label}"
    elif key.startswith("document "):
        return f"Document {key.removeprefix('document ')} {delta.change.value}"
    else:
        label = label[:1].upper() + label[1:]
    return _value_summary(label, delta)


def _healthy_summary(delta: Delta) -> str:
    if delta.new is True:
        return "Healthy volunteers now accepted"
    if delta.new is False:
        return "Healthy volunteers no longer accepted" if delta.old else "Healthy volunteers: not accepted"
    return "Healthy-volunteer answer removed"


def _sponsor_summary(delta: Delta) -> str:
    old = (delta.old or {}).get("name")
    new = (delta.new or {}).get("name")
    if old == new:
        return f"Lead sponsor {new} class {(delta.old or {}).get('class')} -> {(delta.new or {}).get('class')}"
    return f"Lead sponsor {old or 'none'} -> {new or 'none'}"


_SPECIAL = {
    "enrollment": _enrollment_summary,
    "eligibility.healthy_volunteers": _healthy_summary,
    "lead_sponsor": _sponsor_summary,
}
