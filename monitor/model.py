"""The domain model: frozen records and changes, no I/O.

A :class:`TrialRecord` is one registry record in one normalized shape, whatever
the input format was.  :meth:`TrialRecord.to_dict` gives the public JSON shape
(``monitor show --format json``); :meth:`TrialRecord.from_dict` reads it back.

Open-ended groups of fields whose keys vary by record (design details, results
modules, oversight and data-sharing answers) are kept as ``Bag``: a sorted tuple
of ``(key, value)`` pairs, rendered as a JSON object.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import typing
from dataclasses import dataclass, field
from typing import Any

Bag = tuple[tuple[str, Any], ...]


def bag(mapping: dict[str, Any] | None) -> Bag:
    """A Bag from a mapping, dropping empty values, keys sorted."""
    if not mapping:
        return ()
    return tuple(sorted((k, v) for k, v in mapping.items() if v not in (None, "", [], ())))


class Category(enum.StrEnum):
    """What part of a record a change belongs to (the public vocabulary)."""

    STATUS = "status"
    ENROLLMENT = "enrollment"
    DATES = "dates"
    ELIGIBILITY = "eligibility"
    DESIGN = "design"
    ARMS_INTERVENTIONS = "arms_interventions"
    OUTCOMES = "outcomes"
    LOCATIONS = "locations"
    SPONSORS = "sponsors"
    IDENTIFICATION = "identification"
    CONDITIONS = "conditions"
    DESCRIPTION = "description"
    CONTACTS = "contacts"
    REFERENCES = "references"
    RESULTS = "results"
    OTHER = "other"
    MEMBERSHIP = "membership"  # a trial entering or leaving a saved search
    OUTCOME_SWITCH = "outcome_switch"  # a primary outcome changed after the ACTUAL start (monitor.outcomes)
    EXPECTED = "expected"  # an expected-event rule became true or stopped being true (monitor.expected)

    @property
    def label(self) -> str:
        """The category as a heading a person reads (``arms and interventions``, ``outcome switch``)."""
        return _CATEGORY_LABELS.get(self.value, self.value.replace("_", " "))


_CATEGORY_LABELS = {"arms_interventions": "arms and interventions", "expected": "expected events"}


class Severity(enum.StrEnum):
    MAJOR = "major"
    MINOR = "minor"


class ChangeKind(enum.StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    MODIFIED = "modified"


@dataclass(frozen=True)
class DatePoint:
    """A registry date at day (``YYYY-MM-DD``) or month (``YYYY-MM``) precision."""

    date: str | None = None
    type: str | None = None  # ACTUAL | ESTIMATED | None


@dataclass(frozen=True)
class Enrollment:
    count: int | None = None
    type: str | None = None  # ACTUAL | ESTIMATED | None


@dataclass(frozen=True)
class Sponsor:
    name: str
    class_: str | None = None


@dataclass(frozen=True)
class Person:
    """A contact or an investigator."""

    name: str | None = None
    role: str | None = None
    affiliation: str | None = None
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class Site:
    facility: str | None = None
    city: str | None = None
    state: str | None = None
    country: str | None = None
    status: str | None = None
    contacts: tuple[Person, ...] = ()
    zip: str | None = None  # tells apart sites that share facility, city and country
    geo: tuple[float, float] | None = None  # (lat, lon): tells a renamed city from a move; never compared


@dataclass(frozen=True)
class Intervention:
    name: str
    type: str | None = None
    description: str | None = None
    other_names: tuple[str, ...] = ()
    arm_labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Arm:
    label: str
    type: str | None = None
    description: str | None = None
    interventions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outcome:
    measure: str
    time_frame: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class Reference:
    citation: str | None = None
    pmid: str | None = None
    type: str | None = None


@dataclass(frozen=True)
class Eligibility:
    inclusion: tuple[str, ...] = ()
    exclusion: tuple[str, ...] = ()
    minimum_age: str | None = None
    maximum_age: str | None = None
    sex: str | None = None
    healthy_volunteers: bool | None = None
    std_ages: tuple[str, ...] = ()
    study_population: str | None = None


@dataclass(frozen=True)
class TrialRecord:
    """One trial registration, normalized.

    ``key`` is the stable identity of the trial in the store: the NCT id when
    the record has one, otherwise a key derived from the organization's study
    id (see :func:`monitor.normalize.identity.record_key`).
    """

    key: str
    nct_id: str | None = None
    org_study_id: str | None = None
    secondary_ids: tuple[str, ...] = ()
    brief_title: str | None = None
    official_title: str | None = None
    acronym: str | None = None
    organization: str | None = None
    overall_status: str | None = None
    last_known_status: str | None = None
    why_stopped: str | None = None
    phases: tuple[str, ...] = ()
    study_type: str | None = None
    design_info: Bag = ()
    enrollment: Enrollment = field(default_factory=Enrollment)
    start_date: DatePoint = field(default_factory=DatePoint)
    primary_completion_date: DatePoint = field(default_factory=DatePoint)
    completion_date: DatePoint = field(default_factory=DatePoint)
    conditions: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    brief_summary: str | None = None
    detailed_description: str | None = None
    interventions: tuple[Intervention, ...] = ()
    arms: tuple[Arm, ...] = ()
    eligibility: Eligibility = field(default_factory=Eligibility)
    lead_sponsor: Sponsor | None = None
    collaborators: tuple[Sponsor, ...] = ()
    responsible_party: str | None = None
    officials: tuple[Person, ...] = ()
    central_contacts: tuple[Person, ...] = ()
    locations: tuple[Site, ...] = ()
    primary_outcomes: tuple[Outcome, ...] = ()
    secondary_outcomes: tuple[Outcome, ...] = ()
    other_outcomes: tuple[Outcome, ...] = ()
    references: tuple[Reference, ...] = ()
    results: Bag = ()
    other: Bag = ()
    last_update_posted: str | None = None
    source: str | None = None
    status_verified: str | None = None  # bookkeeping, never diffed; read by monitor.expected

    @property
    def title(self) -> str:
        return self.brief_title or self.official_title or self.key

    def to_dict(self) -> dict[str, Any]:
        return _to_json(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialRecord:
        return _from_json(cls, data)


@dataclass(frozen=True)
class Change:
    """One meaningful difference between two versions of a trial."""

    category: Category
    field: str
    change: ChangeKind
    old: Any
    new: Any
    severity: Severity
    summary: str
    items: tuple[Change, ...] = ()  # an aggregate's members (monitor.aggregate)

    def to_dict(self) -> dict[str, Any]:
        data = {
            "category": self.category.value,
            "field": self.field,
            "change": self.change.value,
            "old": self.old,
            "new": self.new,
            "severity": self.severity.value,
            "summary": self.summary,
        }
        if self.items:
            data["count"] = len(self.items)
            data["items"] = [c.to_dict() for c in self.items]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Change:
        return cls(
            category=Category(data["category"]),
            field=data["field"],
            change=ChangeKind(data["change"]),
            old=data.get("old"),
            new=data.get("new"),
            severity=Severity(data["severity"]),
            summary=data["summary"],
            items=tuple(cls.from_dict(c) for c in data.get("items") or ()),
        )


# --- JSON conversion ----------------------------------------------------------
# Dataclass fields map to JSON keys of the same name, except ``class_`` ->
# ``class``; tuples become lists and Bags become objects.  How a field converts
# is read from its declared type (:func:`shape_of`), never from a list of names.


def json_key(name: str) -> str:
    """A dataclass field's name in the JSON shape."""
    return "class" if name == "class_" else name


@functools.cache
def _shapes(cls: type) -> dict[str, tuple[str, Any]]:
    shapes: dict[str, tuple[str, Any]] = {}
    for name, hint in typing.get_type_hints(cls).items():
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if hint == Bag:
            shapes[name] = ("bag", None)
        elif dataclasses.is_dataclass(hint) or (len(args) == 1 and dataclasses.is_dataclass(args[0])):
            shapes[name] = ("one", hint if dataclasses.is_dataclass(hint) else args[0])
        elif typing.get_origin(hint) is tuple and args and dataclasses.is_dataclass(args[0]):
            shapes[name] = ("many", args[0])
        else:
            shapes[name] = ("plain", None)
    return shapes


def shape_of(cls: type, name: str) -> tuple[str, Any]:
    """How field ``name`` of dataclass ``cls`` is made: ``("bag", None)``,
    ``("one", Item)`` (one nested dataclass, maybe None), ``("many", Item)`` (a
    tuple of them) or ``("plain", None)``, read from its declared type."""
    return _shapes(cls)[name]


@functools.cache
def _plan(cls: type) -> tuple[tuple[str, str, str, Any], ...]:
    """Each field of dataclass ``cls`` as ``(name, JSON key, shape, item class)``, in order: what
    :func:`_to_json` and :func:`_from_json` walk, read once per class (not per record)."""
    return tuple((f.name, json_key(f.name), *shape_of(cls, f.name)) for f in dataclasses.fields(cls))


def _to_json(value: Any, bag_value: bool = False) -> Any:
    if bag_value:
        return {k: _plain(v) for k, v in value}
    kind = type(value)
    if kind is str or value is None:
        return value
    if hasattr(kind, "__dataclass_fields__"):
        out = {}
        for name, key, shape, _ in _plan(kind):
            v = getattr(value, name)
            out[key] = v if type(v) is str or v is None else _to_json(v, shape == "bag")
        return out
    if isinstance(value, tuple):
        return [_to_json(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value


def _from_json(cls: type, data: dict[str, Any]) -> Any:
    kwargs: dict[str, Any] = {}
    for name, key, shape, item in _plan(cls):
        if key not in data:
            continue
        value = data[key]
        if shape == "bag":
            value = _freeze(value or {})
        elif shape == "one" and value is not None:
            value = _from_json(item, value)
        elif shape == "many":
            value = tuple(_from_json(item, v) for v in value or ())
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)
