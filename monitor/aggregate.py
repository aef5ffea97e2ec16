"""Many changes -> what a reader decides on, with the detail kept (pure).

:func:`aggregate` turns a list of changes into a shorter one in which

* countries entering or leaving the trial are said together
  ("Countries left the trial: Greece, Mexico");
* sites added, sites removed and sites making the same status move are each one
  line ("43 sites added in 9 countries, 4 of them new to the trial: Spain 12,
  ..."; "230 sites RECRUITING -> COMPLETED");
* contact changes (site contacts, central contacts, investigators) are one count;
* the same edit made to many items (a time frame in 25 outcomes) is said once.

Each aggregate is itself a :class:`Change` with a category, a severity and a
summary, and carries its members in ``items``: nothing is lost, only folded.
A :class:`View` says which categories and severities to show and whether to
list every member (``--full``).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, replace

from monitor.fields import FIELDS
from monitor.model import Category, Change, ChangeKind, Severity
from monitor.normalize.text import name_form
from monitor.summaries import plain, plural, quote, site_name, status_word

GROUP = 3  # sites doing the same thing are summed up from this many
LISTED = 5  # members listed under an aggregate in text unless --full
CONTACT_FIELDS = tuple(name for name, f in FIELDS.items() if f.category == Category.CONTACTS)
OUTCOME_FIELDS = tuple(name for name, f in FIELDS.items() if f.category == Category.OUTCOMES)


@dataclass(frozen=True)
class View:
    """What to show: categories (all when empty), the lowest severity, every member or a few."""

    categories: tuple[str, ...] = ()
    min_severity: str = "minor"
    full: bool = False

    def keeps(self, change: Change) -> bool:
        if self.categories and change.category.value not in self.categories:
            return False
        return not (self.min_severity == "major" and change.severity != Severity.MAJOR)

    def listed(self, change: Change) -> tuple[Change, ...]:
        """The members shown under an aggregate in text."""
        if self.full:
            return change.items
        if change.field == "contacts":
            return ()
        return change.items[:LISTED]


def select(changes, view: View | None) -> list[Change]:
    """Aggregated changes that ``view`` keeps, most important first."""
    view = view or View()
    return [c for c in aggregate(list(changes)) if view.keeps(c)]


def aggregate(changes: list[Change]) -> list[Change]:
    if any(c.items for c in changes):  # already aggregated
        return changes
    out: list[Change] = []
    sites = [c for c in changes if c.field == "locations"]
    countries = [c for c in changes if c.field == "countries"]
    contacts = [c for c in changes if c.field in CONTACT_FIELDS]
    rest = [c for c in changes if c.field not in ("locations", "countries", *CONTACT_FIELDS)]
    out += _repeated(rest)
    out += _countries(countries)
    out += _sites(sites, sum(1 for c in countries if c.change == ChangeKind.ADDED))
    out += _contacts(contacts)
    order = list(Category)
    return sorted(out, key=lambda c: (c.severity != Severity.MAJOR, order.index(c.category), not c.items))


def _group(members: list[Change], field: str, kind: ChangeKind, summary: str) -> Change:
    major = any(c.severity == Severity.MAJOR for c in members)
    return Change(
        category=members[0].category,
        field=field,
        change=kind,
        old=None,
        new=None,
        severity=Severity.MAJOR if major else Severity.MINOR,
        summary=summary,
        items=tuple(members),
    )


def _countries(changes: list[Change]) -> list[Change]:
    out = []
    for kind, words in ((ChangeKind.REMOVED, "left the trial"), (ChangeKind.ADDED, "new to the trial")):
        members = [c for c in changes if c.change == kind]
        if len(members) > 1:
            names = ", ".join(str(c.old if kind == ChangeKind.REMOVED else c.new) for c in members)
            out.append(_group(members, "countries", kind, f"Countries {words}: {names}"))
        else:
            out += members
    return out


def _by_country(members: list[Change], side: str) -> str:
    counts = Counter((getattr(c, side) or {}).get("country") or "unknown country" for c in members)
    shown = ", ".join(f"{name} {n}" for name, n in counts.most_common(8))
    return shown + (", …" if len(counts) > 8 else "")


def _sites(changes: list[Change], new_countries: int) -> list[Change]:
    changes = _told_apart(changes)
    out: list[Change] = []
    added = [c for c in changes if c.change == ChangeKind.ADDED]
    removed = [c for c in changes if c.change == ChangeKind.REMOVED]
    moves: dict[str, list[Change]] = {}
    others = []
    for c in changes:
        if c.change == ChangeKind.MODIFIED and _only_status(c):
            moves.setdefault(f"{status_word(c.old.get('status'))} -> {status_word(c.new.get('status'))}", []).append(c)
        elif c.change == ChangeKind.MODIFIED:
            others.append(c)
    for members, kind, verb, side in (
        (added, ChangeKind.ADDED, "added", "new"),
        (removed, ChangeKind.REMOVED, "removed", "old"),
    ):
        if len(members) < GROUP:
            out += members
            continue
        countries = len({(getattr(c, side) or {}).get("country") for c in members})
        head = f"{plural(len(members), 'site')} {verb} in {plural(countries, 'country')}"
        if kind == ChangeKind.ADDED and new_countries:
            head += f", {new_countries} of them new to the trial"
        out.append(_group(members, "locations", kind, f"{head}: {_by_country(members, side)}"))
    for move, members in sorted(moves.items(), key=lambda m: -len(m[1])):
        if len(members) < GROUP:
            out += members
        else:
            out.append(_group(members, "locations", ChangeKind.MODIFIED, f"{plural(len(members), 'site')} {move}"))
    return out + others


def _only_status(change: Change) -> bool:
    old, new = change.old or {}, change.new or {}
    return (
        old.get("status") != new.get("status")
        and old.get("zip") == new.get("zip")
        and name_form(site_name(old)) == name_form(site_name(new))
    )


def _told_apart(changes: list[Change]) -> list[Change]:
    """Site lines that would read the same get their postal code."""
    seen = Counter(c.summary for c in changes)
    out = []
    for c in changes:
        item = c.new or c.old or {}
        if seen[c.summary] > 1 and item.get("zip"):
            c = replace(c, summary=c.summary.replace(site_name(item), site_name(item, with_zip=True), 1))
        out.append(c)
    return out


def _contacts(changes: list[Change]) -> list[Change]:
    if len(changes) < 2:
        return changes
    counts = Counter(c.field for c in changes)
    what = ", ".join(plural(counts[f], FIELDS[f].noun) for f in CONTACT_FIELDS if counts[f])
    return [_group(changes, "contacts", ChangeKind.MODIFIED, f"Contacts changed: {what}")]


def _signature(change: Change) -> str | None:
    """What a modification did, whatever item it did it to: for text, the words
    replaced ("59" -> "58" in a time frame), so one edit made to differently
    worded items is still one edit."""
    if change.change != ChangeKind.MODIFIED or not isinstance(change.old, dict) or not isinstance(change.new, dict):
        return None
    parts = sorted(k for k in change.new if change.old.get(k) != change.new.get(k))
    if not parts or any(p in ("measure", "label", "name") for p in parts):
        return None
    edit = [(p, *_words_replaced(change.old.get(p), change.new.get(p))) for p in parts]
    family = Category.OUTCOMES if change.category == Category.OUTCOME_SWITCH else change.category
    return json.dumps([family.value, edit], ensure_ascii=False, default=str)


def _words_replaced(old, new) -> tuple:
    """``("approximately 59 months", "approximately 58 months")`` for one run of
    words replaced in otherwise equal text (with a word of context each side);
    the whole values otherwise."""
    if not isinstance(old, str) or not isinstance(new, str):
        return old, new
    import difflib

    a, b = old.split(), new.split()
    ops = [op for op in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes() if op[0] != "equal"]
    if len(ops) != 1:
        return old, new
    _, i1, i2, j1, j2 = ops[0]
    strip = "()[],;:."
    before = a[i1 - 1].strip(strip) if i1 > 0 and j1 > 0 else ""
    after = a[i2].strip(strip) if i2 < len(a) and j2 < len(b) else ""
    return (
        " ".join(w for w in (before, *a[i1:i2], after) if w),
        " ".join(w for w in (before, *b[j1:j2], after) if w),
    )


def _repeated(changes: list[Change]) -> list[Change]:
    groups: dict[str, list[Change]] = {}
    out: list[Change] = []
    for c in changes:
        key = _signature(c)
        if key is None:
            out.append(c)
        else:
            groups.setdefault(key, []).append(c)
    for key, members in groups.items():
        if len(members) < 2:
            out += members
            continue
        _, edit = json.loads(key)
        said = "; ".join(f"{p.replace('_', ' ')} {_value(old)} -> {_value(new)}" for p, old, new in edit)
        summary = f"{said[:1].upper()}{said[1:]} in {_count(members)}"
        switches = [c for c in members if c.category == Category.OUTCOME_SWITCH]
        if switches:  # the same edit, told once, and still called what it is for the primary outcomes
            start = switches[0].summary.split(":", 1)[0].removeprefix("Outcome switch ")
            summary += f"; outcome switch {start} ({plural(len(switches), 'primary outcome')})"
            members = switches + [c for c in members if c.category != Category.OUTCOME_SWITCH]
        out.append(_group(members, members[0].field, ChangeKind.MODIFIED, summary))
    return out


def _value(value) -> str:
    return quote(value) if isinstance(value, str) else plain(value)


def _count(members: list[Change]) -> str:
    fields = Counter(c.field for c in members)
    if all(f in OUTCOME_FIELDS for f in fields):
        noun = plural(len(members), "outcome")
        if len(fields) > 1:
            noun += " (" + ", ".join(f"{n} {FIELDS[f].noun}" for f, n in fields.items()) + ")"
        return noun
    return plural(len(members), FIELDS[members[0].field].label.lower())
