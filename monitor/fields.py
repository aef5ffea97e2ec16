"""Every record field, declared once: the field table (pure).

One :class:`Field` per unit the diff compares, with

* its **category** (and so its severity: major for the categories in
  :data:`monitor.fieldtable.MAJOR_CATEGORIES`, unless the field says otherwise);
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

from collections.abc import Callable

from monitor.fieldtable import Field, FieldTable, FieldTableError, Items, Noise
from monitor.model import Arm, Category, Intervention, Outcome, Person, Reference, Severity, Site, Sponsor
from monitor.normalize.text import identity, loose, name_form

__all__ = ["FIELDS", "Field", "FieldTable", "FieldTableError", "Items", "Noise", "person_key", "site_key"]


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


def _texts(
    name: str, category: Category, label: str, key: Callable[[str], str], pairing: float | None, many: str | None = None
) -> Field:
    """A list of short texts (conditions, criteria), each its own item."""
    return Field(name, category, label, "items", Items(key, pairing), many=many)


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
        _texts("eligibility.inclusion", C.ELIGIBILITY, "Inclusion criterion", loose, 0.6, "Inclusion criteria"),
        _texts("eligibility.exclusion", C.ELIGIBILITY, "Exclusion criterion", loose, 0.6, "Exclusion criteria"),
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
                site_key,
                0.8,
                Site,
                ("status", "zip"),
                key_only=_SITE_PLACE,
                ignored=("geo",),
                separate=("contacts",),
                by_site=True,
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
                by_site=True,
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
