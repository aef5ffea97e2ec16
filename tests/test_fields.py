"""The field table declares every field of the record model once; a field it
does not declare, or declares without a category, fails when the table is
built (at import), never as a KeyError while a trial is being diffed."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from monitor.diff import project
from monitor.fields import FIELDS
from monitor.fieldtable import Field, FieldTable, FieldTableError, Items, Noise
from monitor.model import Category, Severity, Site, TrialRecord, shape_of
from monitor.normalize.text import identity


def test_every_record_field_is_declared_or_bookkeeping():
    for part in dataclasses.fields(TrialRecord):
        kind, inner = shape_of(TrialRecord, part.name)
        split = kind == "one" and all(f"{part.name}.{p.name}" in FIELDS for p in dataclasses.fields(inner))
        assert part.name in FIELDS or part.name in FIELDS.bookkeeping or split, part.name


def test_every_part_of_every_item_type_has_a_role():
    for name, declared in FIELDS.items():
        kind, item_type = shape_of(TrialRecord, name) if name in TrialRecord.__dataclass_fields__ else (None, None)
        if kind == "many":
            assert declared.items is not None and declared.items.of is item_type, name
            assert set(declared.items.roles()) == {p.name for p in dataclasses.fields(item_type)}, name


def test_every_declared_field_is_in_the_comparison_form():
    compare, show = project(TrialRecord(key="NCT00000001"))
    assert list(compare) == list(FIELDS) == list(show)


def test_every_field_has_a_category_severity_and_label():
    for declared in FIELDS.values():
        assert isinstance(declared.category, Category)
        assert isinstance(declared.severity, Severity)
        assert declared.label and declared.label[0].isupper(), declared.name


@pytest.mark.parametrize(
    ("name", "severity"),
    [
        ("overall_status", Severity.MAJOR),
        ("eligibility.inclusion", Severity.MAJOR),
        ("primary_outcomes", Severity.MAJOR),  # outcomes are minor, but not the primary ones
        ("secondary_outcomes", Severity.MINOR),
        ("locations", Severity.MINOR),
    ],
)
def test_severity_comes_from_the_category_unless_the_field_says(name, severity):
    assert FIELDS[name].severity == severity


def test_a_field_without_a_category_fails_when_declared():
    with pytest.raises(FieldTableError, match="'trial_phase_note' has no category"):
        Field("trial_phase_note", None, "Phase note")  # type: ignore[arg-type]


def test_a_list_field_without_an_identity_rule_fails():
    with pytest.raises(FieldTableError, match="identity rule"):
        Field("conditions", Category.CONDITIONS, "Condition", "items")


def test_an_unknown_text_form_fails():
    with pytest.raises(FieldTableError, match="no text form 'fuzzy'"):
        Field("acronym", Category.IDENTIFICATION, "Acronym", noise=Noise(text="fuzzy"))


def _table(fields, model) -> FieldTable:
    return FieldTable(fields, bookkeeping={"key": "identity"}, model=model)


def test_a_record_field_added_without_a_declaration_fails_the_table():
    @dataclass(frozen=True)
    class Record:
        key: str
        brief_title: str | None = None
        sponsor_country: str | None = None  # new, not declared

    declared = [Field("brief_title", Category.IDENTIFICATION, "Brief title")]
    with pytest.raises(FieldTableError, match=r"Record\.sponsor_country is not in the field table"):
        _table(declared, Record)
    _table([*declared, Field("sponsor_country", Category.SPONSORS, "Sponsor country")], Record)


def test_an_item_part_added_without_a_role_fails_the_table():
    @dataclass(frozen=True)
    class Record:
        key: str
        locations: tuple[Site, ...] = ()

    roles = {"compared": ("status", "zip"), "key_only": ("facility", "city", "state", "country")}
    without_geo = Items(identity, of=Site, separate=("contacts",), **roles)
    with pytest.raises(FieldTableError, match=r"Site parts without a role: \['geo'\]"):
        _table([Field("locations", Category.LOCATIONS, "Site", "items", without_geo)], Record)


def test_a_part_with_two_roles_fails():
    with pytest.raises(FieldTableError, match="two roles"):
        Field(
            "locations",
            Category.LOCATIONS,
            "Site",
            "items",
            Items(identity, of=Site, compared=("geo",), ignored=("geo",)),
        )


def test_a_field_declared_twice_fails():
    declared = Field("brief_title", Category.IDENTIFICATION, "Brief title")
    with pytest.raises(FieldTableError, match="declared twice"):
        FieldTable([declared, declared], bookkeeping={}, model=TrialRecord)


def test_item_roles_make_the_comparison_form():
    site = {
        "facility": "Centre LEON-Berard",
        "city": "Lyon",
        "state": None,
        "country": "France",
        "status": "RECRUITING",
    }
    site |= {"contacts": [{"name": "A"}], "zip": "69001", "geo": [45.7, 4.8]}
    ((key, compared, shown),) = FIELDS["locations"].items.entries([site])
    assert key == "centreleonberard | lyon |  | france"  # capitals and punctuation do not count
    assert compared == {"status": "RECRUITING", "zip": "69001"}  # the key, the geoPoint and contacts are not compared
    assert "contacts" not in shown and shown["geo"] == [45.7, 4.8]  # contacts are a field of their own


def test_sites_pair_by_facility_within_one_place():
    """Two hospitals in two cities are never one site renamed, for the sites and their contacts."""
    by_site = {name for name, declared in FIELDS.items() if declared.items and declared.items.by_site}
    assert by_site == {"locations", "site_contacts"}


def test_a_fields_noise_rules_make_its_comparison_form():
    from monitor.diff import _comparer

    assert _comparer(Noise())(["HÃ´pital  NORD", False]) == [_comparer(Noise())("hôpital nord"), None]
    exact = _comparer(Noise(text="exact", false_is_absent=False))
    assert exact(["Hôpital  NORD", False]) == ["Hôpital  NORD", False]


def test_a_hospital_in_another_city_is_not_a_site_renamed():
    from monitor.classify import diff_records

    def trial(city: str) -> TrialRecord:
        site = Site(facility="Goztepe Prof. Dr. Suleyman Yalcin City Hospital", city=city, country="Turkey")
        return TrialRecord(key="NCT04736173", locations=(site,))

    changes = diff_records(trial("Istanbul"), trial("Kocaeli"))
    assert sorted(c.change.value for c in changes if c.field == "locations") == ["added", "removed"]
