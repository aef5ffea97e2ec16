"""Every record field, declared once: the field table (pure).

One :class:`Field` per unit the diff compares, with

* its **category** (and so its severity: major for the categories in
  :data:`MAJOR_CATEGORIES`, unless the field says otherwise);
* its **shape**: a plain ``value``, a ``set`` (a list whose order is no news),
  ``items`` (a list of items paired across versions by an identity rule) or a
  ``bag`` (open-ended answers keyed by name);
* for ``items``, the **identity rule** (:class:`Items`): the key that pairs an
  item with itself in the next version, how alike a removed and an added item
  must be to count as one item changed, and what each part of the item does;
* its **noise rules** (:class:`Noise`): what differences are not news;
* its **display label** (``Primary outcome``) and, for counts, a short noun.

``diff`` projects records into their comparison form from this table,
``classify`` reads the category and severity, ``summaries`` and ``aggregate``
the labels.  :data:`FIELDS` is checked when it is built, at import: a field
without a category, an item part without a role, or a field of the record
model (``TrialRecord`` and its item types) that the table does not declare is
a :class:`FieldTableError`, never a ``KeyError`` in production.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from monitor.model import (
    Arm,
    Category,
    Intervention,
    Outcome,
    Person,
    Reference,
    Severity,
    Site,
    Sponsor,
    TrialRecord,
    json_key,
    shape_of,
)
from monitor.normalize.text import identity, loose, name_form

MAJOR_CATEGORIES = frozenset(
    {Category.STATUS, Category.ENROLLMENT, Category.DATES, Category.ELIGIBILITY, Category.DESIGN, Category.RESULTS}
)
SHAPES = ("value", "set", "items", "bag")
TEXT_FORMS: dict[str, Callable[[str], str]] = {
    "loose": loose,  # case, quotes, spacing, markdown escapes and encoding damage are no news
    "exact": str,  # every character counts
}


class FieldTableError(ValueError):
    """The field table contradicts itself or the record model (a programming error, found at import)."""


@dataclass(frozen=True)
class Noise:
    """What is not news in a field's values: the comparison form drops it."""

    text: str = "loose"  # a key of TEXT_FORMS
    false_is_absent: bool = True  # an answer gone from ``false`` to absent is no news

    @property
    def ignore_case(self) -> bool:
        return self.text == "loose"


@dataclass(frozen=True)
class Items:
    """How the items of a list field are told apart and compared.

    Every part of the item type has one role: ``compared`` (a difference is a
    change of the item), ``unordered`` (a list compared sorted), ``key_only``
    (read by the identity rule, not compared: a new key is another item),
    ``ignored`` (never compared, only shown) or ``separate`` (reported as a
    field of its own, and not shown with the item)."""

    key: Callable[[Any], str]  # the identity rule: item -> the key that pairs it across versions
    pairing: float | None = None  # how alike a removed and an added key must be to be one item changed
    of: type | None = None  # the item dataclass (None: the items are strings)
    compared: tuple[str, ...] = ()
    unordered: tuple[str, ...] = ()
    key_only: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()
    separate: tuple[str, ...] = ()
    compare: Callable[[Any], Any] | None = None  # the item's comparison form, when the roles do not say it
    show: Callable[[Any], Any] | None = None  # the item as displayed, when the roles do not say it

    @property
    def by_site(self) -> bool:
        """Keyed by site: a removed and an added item pair by facility name within one place."""
        return self.key is site_key

    def roles(self) -> dict[str, str]:
        """Item part (its JSON name) -> role."""
        out: dict[str, str] = {}
        for role in ("compared", "unordered", "key_only", "ignored", "separate"):
            for part in getattr(self, role):
                if part in out:
                    raise FieldTableError(f"item part {part!r} has two roles ({out[part]}, {role})")
                out[part] = role
        return out

    def entries(self, items: Iterable[Any]) -> list[tuple[str, Any, Any]]:
        """``(key, compared, shown)`` of each item."""
        roles = {json_key(p): r for p, r in self.roles().items()}
        out = []
        for item in items:
            if self.compare is not None:
                compared = self.compare(item)
            elif isinstance(item, dict):
                compared = {
                    k: sorted(v) if roles.get(k) == "unordered" else v
                    for k, v in item.items()
                    if roles.get(k) in ("compared", "unordered")
                }
            else:
                compared = item
            if self.show is not None:
                shown = self.show(item)
            elif isinstance(item, dict) and self.separate:
                shown = {k: v for k, v in item.items() if roles.get(k) != "separate"}
            else:
                shown = item
            out.append((self.key(item), compared, shown))
        return out


@dataclass(frozen=True)
class Field:
    """One unit the diff compares: a record field, an eligibility part, or a
    field derived from another (``countries`` from the sites)."""

    name: str  # ``brief_title``, ``eligibility.inclusion``, ``countries``
    category: Category
    label: str  # as a sentence starts with it: ``Primary outcome``, ``Start``
    shape: str = "value"
    items: Items | None = None
    noise: Noise = Noise()
    severity: Severity | None = None  # None: from the category
    short: str | None = None  # in a count of several fields (``20 primary, 5 secondary``); None: the label
    read: Callable[[dict], Any] | None = None  # record JSON -> value, for a derived field (None: read the name)
    prose: bool = False  # long text: a change reads as an edit count, not the two texts

    def __post_init__(self) -> None:
        if not isinstance(self.category, Category):
            raise FieldTableError(f"field {self.name!r} has no category (give it one of monitor.model.Category)")
        if not self.label:
            raise FieldTableError(f"field {self.name!r} has no display label")
        if self.shape not in SHAPES:
            raise FieldTableError(f"field {self.name!r}: shape {self.shape!r} is not one of {', '.join(SHAPES)}")
        if (self.shape == "items") != (self.items is not None):
            raise FieldTableError(f"field {self.name!r}: a field of shape 'items' and only one has an identity rule")
        if self.noise.text not in TEXT_FORMS:
            raise FieldTableError(f"field {self.name!r}: no text form {self.noise.text!r} (see TEXT_FORMS)")
        if self.items is not None:
            self.items.roles()
        if self.severity is None:
            major = self.category in MAJOR_CATEGORIES
            object.__setattr__(self, "severity", Severity.MAJOR if major else Severity.MINOR)

    @property
    def noun(self) -> str:
        """The field in a count of changes to several fields (``2 sites, 1 investigator``)."""
        return self.short or self.label.lower()

    @property
    def keyed(self) -> bool:
        return self.shape in ("items", "bag")

    def value(self, data: dict) -> Any:
        """This field's value in a record's JSON (``record.to_dict()``)."""
        if self.read is not None:
            return self.read(data)
        for step in self.name.split("."):
            data = data[step]
        return data


class FieldTable(Mapping[str, Field]):
    """The fields in order, checked against the record model when built."""

    def __init__(self, fields: Iterable[Field], bookkeeping: Mapping[str, str], model: type = TrialRecord) -> None:
        self._fields: dict[str, Field] = {}
        for f in fields:
            if f.name in self._fields:
                raise FieldTableError(f"field {f.name!r} is declared twice")
            self._fields[f.name] = f
        self.bookkeeping = dict(bookkeeping)  # record fields never compared, with the reason
        self._check(model)

    def __getitem__(self, name: str) -> Field:
        return self._fields[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def _check(self, model: type) -> None:
        for part in dataclasses.fields(model):
            name = part.name
            kind, inner = shape_of(model, name)
            if name in self.bookkeeping:
                continue
            if name in self._fields:
                declared = self._fields[name]
                if kind == "many" and declared.items is not None:
                    self._check_items(declared, inner)
                continue
            if kind == "one" and all(f"{name}.{p.name}" in self._fields for p in dataclasses.fields(inner)):
                continue  # compared part by part (eligibility)
            raise FieldTableError(
                f"{model.__name__}.{name} is not in the field table: declare it in monitor/fields.py "
                "with its category (or as bookkeeping, with the reason)"
            )

    def _check_items(self, declared: Field, item_type: type) -> None:
        items = declared.items
        assert items is not None
        if items.of is not item_type:
            raise FieldTableError(f"field {declared.name!r}: items are {item_type.__name__}, declared {items.of}")
        parts = {p.name for p in dataclasses.fields(item_type)}
        roles = items.roles()
        missing = sorted(parts - roles.keys())
        unknown = sorted(roles.keys() - parts)
        if missing or unknown:
            raise FieldTableError(
                f"field {declared.name!r}: {item_type.__name__} parts without a role: {missing}; "
                f"roles for parts it lacks: {unknown}"
            )


# --- identity rules -------------------------------------------------------------------


def site_key(site: dict) -> str:
    """Facility | city | state | country, each in :func:`name_form` (no spaces or
    punctuation, loose case and encoding), so a name re-encoded or recapitalised matches."""
    return " | ".join(name_form(site.get(k)) for k in ("facility", "city", "state", "country"))


def site_label(site: dict) -> str:
    return ", ".join(p for p in (site.get("facility"), site.get("city"), site.get("state"), site.get("country")) if p)


def person_key(person: dict) -> str:
    return identity(person.get("name")) or identity(person.get("email")) or identity(person.get("phone"))


def _named(part: str) -> Callable[[dict], str]:
    return lambda item: identity(item[part])


def _countries(data: dict) -> list[str]:
    return sorted({s["country"] for s in data["locations"] if s.get("country")}, key=identity)


def _sites_with_contacts(data: dict) -> list[dict]:
    return [s for s in data["locations"] if s["contacts"]]


# --- the table --------------------------------------------------------------------------

C = Category
_SITE_PLACE = ("facility", "city", "state", "country")
_PERSON = ("name", "role", "affiliation", "phone", "email")


def _texts(name: str, category: Category, label: str, key: Callable[[str], str], pairing: float | None) -> Field:
    """A list of short texts (conditions, criteria), each its own item."""
    return Field(name, category, label, "items", Items(key, pairing))


def _outcomes(name: str, label: str, short: str, severity: Severity | None = None) -> Field:
    items = Items(_named("measure"), 0.6, Outcome, compared=("measure", "time_frame", "description"))
    return Field(name, C.OUTCOMES, label, "items", items, severity=severity, short=short)


FIELDS = FieldTable(
    [
        Field("nct_id", C.IDENTIFICATION, "NCT id"),
        Field("org_study_id", C.IDENTIFICATION, "Org study id"),
        Field("brief_title", C.IDENTIFICATION, "Brief title"),
        Field("official_title", C.IDENTIFICATION, "Official title"),
        Field("acronym", C.IDENTIFICATION, "Acronym"),
        Field("organization", C.IDENTIFICATION, "Organization"),
        Field("overall_status", C.STATUS, "Overall status"),
        Field("last_known_status", C.STATUS, "Last known status"),
        Field("why_stopped", C.STATUS, "Why stopped"),
        Field("study_type", C.DESIGN, "Study type"),
        Field("brief_summary", C.DESCRIPTION, "Brief summary", prose=True),
        Field("detailed_description", C.DESCRIPTION, "Detailed description", prose=True),
        Field("responsible_party", C.SPONSORS, "Responsible party"),
        Field("enrollment", C.ENROLLMENT, "Enrollment"),
        Field("start_date", C.DATES, "Start"),
        Field("primary_completion_date", C.DATES, "Primary completion"),
        Field("completion_date", C.DATES, "Completion"),
        Field("lead_sponsor", C.SPONSORS, "Lead sponsor"),
        Field("phases", C.DESIGN, "Phase", "set"),
        _texts("secondary_ids", C.IDENTIFICATION, "Secondary id", identity, None),
        _texts("conditions", C.CONDITIONS, "Condition", identity, 0.8),
        _texts("keywords", C.CONDITIONS, "Keyword", identity, 0.8),
        Field("design_info", C.DESIGN, "Design", "bag"),
        Field("results", C.RESULTS, "Results", "bag"),
        Field("other", C.OTHER, "Other", "bag"),
        Field(
            "interventions",
            C.ARMS_INTERVENTIONS,
            "Intervention",
            "items",
            Items(_named("name"), 0.7, Intervention, ("name", "type", "description"), ("other_names", "arm_labels")),
        ),
        Field(
            "arms",
            C.ARMS_INTERVENTIONS,
            "Arm",
            "items",
            Items(_named("label"), 0.7, Arm, ("label", "type", "description"), ("interventions",)),
        ),
        _texts("eligibility.inclusion", C.ELIGIBILITY, "Inclusion criterion", loose, 0.6),
        _texts("eligibility.exclusion", C.ELIGIBILITY, "Exclusion criterion", loose, 0.6),
        Field("eligibility.minimum_age", C.ELIGIBILITY, "Minimum age"),
        Field("eligibility.maximum_age", C.ELIGIBILITY, "Maximum age"),
        Field("eligibility.sex", C.ELIGIBILITY, "Sex"),
        Field("eligibility.healthy_volunteers", C.ELIGIBILITY, "Healthy volunteers"),
        Field("eligibility.study_population", C.ELIGIBILITY, "Study population", prose=True),
        Field("eligibility.std_ages", C.ELIGIBILITY, "Age groups", "set"),
        Field(
            "collaborators",
            C.SPONSORS,
            "Collaborator",
            "items",
            Items(_named("name"), 0.8, Sponsor, ("name", "class_")),
        ),
        # A site's name and place are its key: its status and postal code are
        # compared; its geoPoint only tells a renamed city from a move.
        Field(
            "locations",
            C.LOCATIONS,
            "Site",
            "items",
            Items(
                site_key, 0.8, Site, ("status", "zip"), key_only=_SITE_PLACE, ignored=("geo",), separate=("contacts",)
            ),
        ),
        Field("countries", C.LOCATIONS, "Country", "items", Items(identity), read=_countries),
        Field(
            "site_contacts",
            C.CONTACTS,
            "Site contacts",
            "items",
            Items(
                site_key,
                0.8,
                compare=lambda s: s["contacts"],
                show=lambda s: {"site": site_label(s), "contacts": s["contacts"], "zip": s["zip"]},
            ),
            short="site",
            read=_sites_with_contacts,
        ),
        Field("central_contacts", C.CONTACTS, "Central contact", "items", Items(person_key, 0.8, Person, _PERSON)),
        Field("officials", C.CONTACTS, "Investigator", "items", Items(person_key, 0.8, Person, _PERSON)),
        _outcomes("primary_outcomes", "Primary outcome", "primary", Severity.MAJOR),
        _outcomes("secondary_outcomes", "Secondary outcome", "secondary"),
        _outcomes("other_outcomes", "Other outcome", "other"),
        Field(
            "references",
            C.REFERENCES,
            "Reference",
            "items",
            Items(lambda r: r.get("pmid") or identity(r.get("citation")), 0.7, Reference, ("citation", "pmid", "type")),
        ),
    ],
    bookkeeping={
        "key": "the trial's identity in the store, not its content",
        "last_update_posted": "the registry's bookkeeping: a new date alone is no change",
        "source": "which input format the record came from",
        "status_verified": "bookkeeping, read by monitor.expected",
    },
)
