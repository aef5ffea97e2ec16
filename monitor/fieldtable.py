"""The shape of the field table (pure): :class:`Field`, :class:`Items`,
:class:`Noise` and :class:`FieldTable`, which checks a table against the
record model when it is built.  The table itself is :mod:`monitor.fields`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from monitor.model import Category, Severity, TrialRecord, json_key, shape_of
from monitor.normalize.text import loose

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

    by_site: bool = False  # keyed by site: a removed and an added item pair by facility name within one place

    def __post_init__(self) -> None:
        roles = {json_key(part): role for part, role in self.roles().items()}
        order = [json_key(p.name) for p in dataclasses.fields(self.of)] if self.of is not None else list(roles)
        compared = tuple(p for p in order if roles.get(p) in ("compared", "unordered"))
        unordered = frozenset(p for p in order if roles.get(p) == "unordered")
        separate = frozenset(p for p in order if roles.get(p) == "separate")
        compare, show = self.compare, self.show
        if compare is None and any(role != "compared" for role in roles.values()):

            def compare(item: dict) -> dict:
                return {p: sorted(item[p]) if p in unordered else item[p] for p in compared}

        if show is None and separate:

            def show(item: dict) -> dict:
                return {k: v for k, v in item.items() if k not in separate}

        object.__setattr__(self, "_forms", (compare, show))

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
        """``(key, compared, shown)`` of each item (the item itself where its roles change nothing)."""
        key = self.key
        compare, show = self._forms  # type: ignore[attr-defined]
        return [
            (key(item), item if compare is None else compare(item), item if show is None else show(item))
            for item in items
        ]


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
    many: str | None = None  # the label of a list of them (``Inclusion criteria``); None: the label + s

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
        object.__setattr__(self, "_path", tuple(self.name.split(".")))
        if self.severity is None:
            major = self.category in MAJOR_CATEGORIES
            object.__setattr__(self, "severity", Severity.MAJOR if major else Severity.MINOR)

    @property
    def noun(self) -> str:
        """The field in a count of changes to several fields (``2 sites, 1 investigator``)."""
        return self.short or self.label.lower()

    @property
    def plural(self) -> str:
        """The label of a list of them, as ``monitor show`` heads it (``Sites``, ``Countries``)."""
        if self.many or self.label.endswith("s"):
            return self.many or self.label
        y = self.label.endswith("y") and self.label[-2:-1] not in "aeiou"
        return self.label[:-1] + "ies" if y else self.label + "s"

    @property
    def keyed(self) -> bool:
        return self.shape in ("items", "bag")

    def value(self, data: dict) -> Any:
        """This field's value in a record's JSON (``record.to_dict()``)."""
        if self.read is not None:
            return self.read(data)
        for step in self._path:  # type: ignore[attr-defined]
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
