"""One field delta -> one sentence a colleague would write (pure).

No Python literal ever reaches the text: values go through :func:`plain`
(``yes``/``no``, ``none``, lists joined), counts through :func:`plural`.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from monitor.diff import Delta
from monitor.fields import FIELDS
from monitor.model import ChangeKind
from monitor.normalize.text import loose, name_form

PUBMED = "https://pubmed.ncbi.nlm.nih.gov/"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 record``, ``25 outcome changes``, ``2 countries``."""
    if n == 1:
        return f"1 {word}"
    if many is None:
        many = word[:-1] + "ies" if word.endswith("y") and word[-2:-1] not in "aeiou" else word + "s"
    return f"{n} {many}"


def plain(value: Any) -> str:
    """A value as a reader writes it: ``yes``/``no``, ``none``, lists joined."""
    if value is None:
        return "none"
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if isinstance(value, list | tuple):
        return ", ".join(plain(v) for v in value) or "none"
    if isinstance(value, dict):
        return "; ".join(f"{k.replace('_', ' ')} {plain(v)}" for k, v in value.items() if v not in (None, "", []))
    return str(value)


QUOTE_LIMIT = 200


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
    declared = FIELDS[field]
    if declared.shape == "bag":
        return _bag_summary(delta)
    label = declared.label
    if delta.key is not None:
        return _item_summary(label, delta)
    return _scalar_summary(label, delta)


def _scalar_summary(label: str, delta: Delta) -> str:
    if FIELDS[delta.field].prose:
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
    if isinstance(value, str) and len(value) > 40:
        return quote(value)
    return plain(value)


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
    if field == "countries":
        return str(item)
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
        return site_name(item) + (f" ({item['status']})" if item.get("status") else "")
    if field == "site_contacts":
        return item["site"]
    if field in ("officials", "central_contacts"):
        return (item.get("name") or item.get("email") or "?") + (f" ({item['role']})" if item.get("role") else "")
    if field == "collaborators":
        return item["name"]
    if field == "references":
        return citation(item)
    return quote(item)


def site_name(item: dict, with_zip: bool = False) -> str:
    """``Facility, City, State, Country`` (and the postal code when asked)."""
    parts = [item.get("facility"), item.get("city"), item.get("state")]
    parts += [item.get("zip") if with_zip else None, item.get("country")]
    return ", ".join(p for p in parts if p)


def citation(item: dict) -> str:
    """``Smith J et al. "Title." 2025, https://pubmed.ncbi.nlm.nih.gov/123/``: the
    first author, the title and the year read from the citation, and the link."""
    import re

    text = item.get("citation") or ""
    link = f"{PUBMED}{item['pmid']}/" if item.get("pmid") else None
    sentences = [p.strip() for p in re.split(r"\.\s+", text) if p.strip()]
    year = re.search(r"\b(19|20)\d\d\b", text)
    if item.get("pmid") and len(sentences) >= 2:
        authors = sentences[0].split(",")
        first = authors[0].strip() + (" et al." if len(authors) > 1 else "")
        title = sentences[1].rstrip(".")
        shown = f"{first} {quote(title)}" + (f" ({year.group(0)})" if year else "")
    else:
        shown = quote(text) if text else ""
    return ", ".join(p for p in (shown, link) if p) or "no citation"


def _item_summary(label: str, delta: Delta) -> str:
    field = delta.field
    if field == "countries":
        return f"Country {'new to' if delta.change == ChangeKind.ADDED else 'left'} the trial: {delta.new or delta.old}"
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
    if field.endswith("_outcomes"):
        return _outcome_summary(label, delta)
    if old_name != new_name:
        return f"{label} changed: {old_name} -> {new_name}"
    parts = [p for p in delta.parts if p != "type" or field != "references"]
    return f"{label} {new_name}: " + (
        "; ".join(_part_edit(p, delta.old, delta.new) for p in parts) or "details changed"
    )


def _part_edit(part: str, old: dict, new: dict) -> str:
    """``time frame "59 months" -> "58 months"``; long text as an edit count."""
    before, after = old.get(part), new.get(part)
    name = part.replace("_", " ")
    if isinstance(before, str) and isinstance(after, str) and max(len(before), len(after)) > QUOTE_LIMIT:
        return f"{name} {_text_edit(before, after)}"
    if isinstance(before, str) or isinstance(after, str):
        return f"{name} {quote(before) if before else 'none'} -> {quote(after) if after else 'none'}"
    return f"{name} {plain(before)} -> {plain(after)}"


def _outcome_summary(label: str, delta: Delta) -> str:
    """One modification quoting the old and new measure, and what else changed."""
    old, new = delta.old, delta.new
    edits = [_part_edit(p, old, new) for p in ("time_frame", "description") if p in delta.parts]
    if loose(old["measure"]) != loose(new["measure"]):
        return f"{label} reworded: {quote(old['measure'])} -> {quote(new['measure'])}" + "".join(
            f"; {e}" for e in edits
        )
    return f"{label} {quote(new['measure'])}: " + ("; ".join(edits) or "details changed")


def status_word(status: str | None) -> str:
    return status or "no status"


def _site_summary(delta: Delta) -> str:
    old, new = delta.old, delta.new
    place = site_name(new)
    what = []
    if name_form(site_name(old)) != name_form(place):
        what.append(f"renamed from {site_name(old)}")
    if old.get("status") != new.get("status"):
        what.append(f"{status_word(old.get('status'))} -> {status_word(new.get('status'))}")
    if old.get("zip") != new.get("zip"):
        what.append(f"postal code {plain(old.get('zip'))} -> {plain(new.get('zip'))}")
    return f"Site {place}: " + ("; ".join(what) or "details changed")


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
    label = FIELDS[delta.field].label
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
            f"{plain(delta.old)} -> {plain(delta.new)}"
            if delta.old is not None and delta.new is not None
            else delta.change.value
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
        old_class, new_class = (delta.old or {}).get("class"), (delta.new or {}).get("class")
        return f"Lead sponsor {new} class {plain(old_class)} -> {plain(new_class)}"
    return f"Lead sponsor {old or 'none'} -> {new or 'none'}"


_SPECIAL = {
    "enrollment": _enrollment_summary,
    "eligibility.healthy_volunteers": _healthy_summary,
    "lead_sponsor": _sponsor_summary,
}
