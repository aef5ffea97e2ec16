"""Registry-mirror pages with "Basic Information" sections (seeds 000 and 003).

The page shows CT.gov enum values (``RECRUITING``, ``PHASE1``), sometimes
under labels (``Recruitment Status``), sometimes bare; bare values are read by
their shape, in the order the page shows them.  Each section heading is followed
by a one-sentence blurb of the site's, which is skipped.
"""

from __future__ import annotations

import re

from monitor.errors import ParseError
from monitor.model import (
    Arm,
    DatePoint,
    Eligibility,
    Enrollment,
    Intervention,
    Person,
    Site,
    Sponsor,
    TrialRecord,
    bag,
)
from monitor.normalize.identity import NCT_ID, record_key
from monitor.normalize.pagetext import (
    has_landmarks,
    labelled,
    leading_int,
    page_lines,
    paragraph,
    place,
    split_sections,
    yes_no,
)
from monitor.normalize.text import clean, criterion_text, page_date, phases, written_as_date

SOURCE = "page_mirror"

HEADINGS = {
    "Study Results",
    "Basic Information",
    "Brief Summary",
    "Related Clinical Trials",
    "Detailed Description",
    "Conditions",
    "Keywords",
    "Study Design",
    "Study Groups",
    "Interventions",
    "Other Intervention Names",
    "Eligibility Criteria",
    "Primary Outcomes",
    "Secondary Outcomes",
    "Sponsors",
    "Responsible Party",
    "Principal Investigators",
    "Locations",
    "Countries",
    "Central Contacts",
    "Facility Contacts",
    "Other Identifiers",
    "More Related Trials",
}
_BLURB = re.compile(
    r"^(Get a concise|Review |Explore |Dive into|See the|Understand how|Learn about|Discover |"
    r"Check the|Meet the|Identify the|Reach out|Find local|Additional clinical|"
    r"The study team has not published|Results pending)"
)
_STATUSES = {
    "NOT_YET_RECRUITING",
    "RECRUITING",
    "ENROLLING_BY_INVITATION",
    "ACTIVE_NOT_RECRUITING",
    "SUSPENDED",
    "TERMINATED",
    "COMPLETED",
    "WITHDRAWN",
    "UNKNOWN",
    "AVAILABLE",
    "NO_LONGER_AVAILABLE",
    "TEMPORARILY_NOT_AVAILABLE",
    "APPROVED_FOR_MARKETING",
    "WITHHELD",
}
_STUDY_TYPES = {"INTERVENTIONAL", "OBSERVATIONAL", "EXPANDED_ACCESS"}
_AGE = re.compile(r"^\d+ (Years?|Months?|Weeks?|Days?|Hours?|Minutes?)$")
_ELIGIBILITY_LABELS = ("Minimum Eligible Age", "Maximum Eligible Age", "Eligible Sex", "Accepts Healthy Volunteers")


def looks_like(text: str) -> bool:
    return has_landmarks(text, "Basic Information") and bool(
        re.search(r"^\s*(NCT ID:|Get a concise snapshot)", text, re.MULTILINE)
    )


def parse(text: str) -> TrialRecord:
    lines = page_lines(text)
    if not lines:
        raise ParseError("the page is empty")
    sections = split_sections(lines, HEADINGS)
    for name, body in sections.items():
        if name and body and _BLURB.match(body[0]):
            sections[name] = body[1:]
    head = sections[""]
    title = clean(head[0])
    nct_id = labelled(head, "NCT ID:")
    if nct_id and not NCT_ID.fullmatch(nct_id):
        raise ParseError(f"the page's NCT ID {nct_id!r} is not an NCT id")
    org_study_id, secondary_ids = _identifiers(sections.get("Other Identifiers", []))
    basics = _basics(sections.get("Basic Information", []))
    design = _pairs(
        sections.get("Study Design", []),
        (
            ("Allocation Method", "allocation"),
            ("Intervention Model", "intervention_model"),
            ("Primary Study Purpose", "primary_purpose"),
            ("Blinding Strategy", "masking"),
        ),
    )
    interventions = _interventions(sections.get("Interventions", []))
    lead, collaborators = _sponsors(sections.get("Sponsors", []))
    sites = _sites(sections.get("Locations", []), _people(sections.get("Facility Contacts", [])))
    return TrialRecord(
        key=record_key(nct_id, org_study_id, title),
        nct_id=nct_id,
        org_study_id=org_study_id,
        secondary_ids=tuple(secondary_ids),
        brief_title=title,
        overall_status=basics.get("status"),
        phases=tuple(basics.get("phases", ())),
        study_type=basics.get("study_type"),
        design_info=bag(design),
        enrollment=Enrollment(count=basics.get("enrollment")),
        start_date=DatePoint(date=basics.get("start")),
        primary_completion_date=DatePoint(date=basics.get("primary_completion")),
        completion_date=DatePoint(date=basics.get("completion")),
        conditions=tuple(sections.get("Conditions", [])),
        keywords=tuple(sections.get("Keywords", [])),
        brief_summary=paragraph(sections.get("Brief Summary", [])),
        detailed_description=paragraph(sections.get("Detailed Description", [])),
        interventions=tuple(interventions),
        arms=tuple(_arms(sections.get("Study Groups", []), interventions)),
        eligibility=_eligibility(sections.get("Eligibility Criteria", [])),
        lead_sponsor=lead,
        collaborators=tuple(collaborators),
        responsible_party=_responsible_party(sections.get("Responsible Party", [])),
        officials=tuple(_people(sections.get("Principal Investigators", []))),
        central_contacts=tuple(_people(sections.get("Central Contacts", []))),
        locations=tuple(sites),
        last_update_posted=page_date(labelled(head, "Last Updated:")),
        source=SOURCE,
    )


def _basics(lines: list[str]) -> dict:
    """Status, phase, enrollment, type and dates, labelled or bare."""
    labels = {
        "Recruitment Status": "status",
        "Clinical Phase": "phases",
        "Total Enrollment": "enrollment",
        "Study Classification": "study_type",
        "Study Start Date": "start",
        "Primary Completion Date": "primary_completion",
        "Study Completion Date": "completion",
    }
    found: dict = {}
    bare_dates: list[str] = []
    pending = None
    for line in lines:
        if line in labels:
            pending = labels[line]
            continue
        value = line.strip()
        kind = pending or _shape(value)
        pending = None
        if kind == "status":
            found["status"] = value
        elif kind == "phases":
            found["phases"] = phases(value)
        elif kind == "enrollment":
            found["enrollment"] = leading_int(value)
        elif kind == "study_type":
            found["study_type"] = value
        elif kind in ("start", "primary_completion", "completion"):
            found[kind] = page_date(value)
        elif kind == "date":
            bare_dates.append(page_date(value))
    # Bare dates come as start then completion, as the labelled page shows them.
    for kind, date in zip(("start", "completion"), bare_dates, strict=False):
        found.setdefault(kind, date)
    return found


def _shape(value: str) -> str | None:
    if value in _STATUSES:
        return "status"
    if re.fullmatch(r"((EARLY_)?PHASE\d|NA)(\s*[,/]\s*(EARLY_)?PHASE\d)*", value):
        return "phases"
    if re.fullmatch(r"\d[\d,]* participants?", value):
        return "enrollment"
    if value in _STUDY_TYPES:
        return "study_type"
    if written_as_date(value):
        return "date"
    return None


def _pairs(lines: list[str], labels: tuple[tuple[str, str], ...]) -> dict:
    """Values under their labels, or bare values in the labels' order."""
    by_label = dict(labels)
    if any(line in by_label for line in lines):
        return {by_label[line]: lines[i + 1] for i, line in enumerate(lines[:-1]) if line in by_label}
    return {key: value for (_, key), value in zip(labels, lines, strict=False)}


def _interventions(lines: list[str]) -> list[Intervention]:
    """Name, then description, optionally ``Intervention Type X``; a line in
    parentheses is a note to the description before it."""
    found: list[dict] = []
    for line in lines:
        if line.startswith("Intervention Type ") and found:
            found[-1]["type"] = line.removeprefix("Intervention Type ").strip()
        elif line.startswith("(") and found:
            found[-1]["description"] = clean(f"{found[-1]['description'] or ''} {line}")
        elif found and found[-1]["description"] is None:
            found[-1]["description"] = clean(line)
        else:
            found.append({"name": clean(line), "type": None, "description": None})
    return [Intervention(name=i["name"], type=i["type"], description=i["description"]) for i in found]


def _arms(lines: list[str], interventions: list[Intervention]) -> list[Arm]:
    """Arm label, ``Group Type X``, description, then its interventions as the
    Interventions section lists them (name, type, description repeated)."""
    names = {i.name for i in interventions}
    descriptions = [i.description for i in interventions if i.description]
    arms: list[dict] = []
    for line in lines:
        if line.startswith("Group Type ") and arms:
            arms[-1]["type"] = line.removeprefix("Group Type ").strip()
        elif clean(line) in names and arms:
            arms[-1]["interventions"].append(clean(line))
        elif line.startswith(("Intervention Type ", "(")) or any(d.startswith(clean(line)) for d in descriptions):
            continue
        elif arms and arms[-1]["description"] is None and not arms[-1]["interventions"]:
            arms[-1]["description"] = clean(line)
        else:
            arms.append({"label": clean(line), "type": None, "description": None, "interventions": []})
    return [
        Arm(label=a["label"], type=a["type"], description=a["description"], interventions=tuple(a["interventions"]))
        for a in arms
    ]


def _eligibility(lines: list[str]) -> Eligibility:
    inclusion: list[str] = []
    exclusion: list[str] = []
    current = inclusion
    rest: list[str] = []
    for i, line in enumerate(lines):
        if line in ("Inclusion Criteria", "Inclusion Criteria:"):
            current = inclusion
        elif line in ("Exclusion Criteria", "Exclusion Criteria:"):
            current = exclusion
        elif _AGE.match(line) or line in _ELIGIBILITY_LABELS:
            rest = lines[i:]
            break
        else:
            item = criterion_text(line)
            if item:
                current.append(item)
    if any(line in _ELIGIBILITY_LABELS for line in rest):
        values = {rest[i]: rest[i + 1] for i in range(len(rest) - 1) if rest[i] in _ELIGIBILITY_LABELS}
        min_age, max_age = values.get("Minimum Eligible Age"), values.get("Maximum Eligible Age")
        sex, healthy = values.get("Eligible Sex"), values.get("Accepts Healthy Volunteers")
    else:
        ages = [line for line in rest if _AGE.match(line)]
        others = [line for line in rest if not _AGE.match(line)]
        min_age = ages[0] if ages else None
        max_age = ages[1] if len(ages) > 1 else None
        sex = next((o for o in others if o in ("ALL", "FEMALE", "MALE")), None)
        healthy = next((o for o in others if o in ("Yes", "No")), None)
    return Eligibility(
        inclusion=tuple(inclusion),
        exclusion=tuple(exclusion),
        minimum_age=min_age,
        maximum_age=max_age,
        sex=sex,
        healthy_volunteers=yes_no(healthy),
    )


def _sponsors(lines: list[str]) -> tuple[Sponsor | None, list[Sponsor]]:
    """Name, class, optionally ``Sponsor Role lead|collaborator``; without
    roles the first sponsor is the lead."""
    entries: list[dict] = []
    for line in lines:
        if line.startswith("Sponsor Role ") and entries:
            entries[-1]["role"] = line.removeprefix("Sponsor Role ").strip().lower()
        elif re.fullmatch(r"[A-Z][A-Z_]+", line) and entries and entries[-1]["class"] is None:
            entries[-1]["class"] = line
        else:
            entries.append({"name": clean(line), "class": None, "role": None})
    if any(e["role"] for e in entries):
        leads = [e for e in entries if e["role"] == "lead"]
        others = [e for e in entries if e["role"] != "lead"]
    else:
        leads, others = entries[:1], entries[1:]
    lead = Sponsor(leads[0]["name"], leads[0]["class"]) if leads else None
    return lead, [Sponsor(e["name"], e["class"]) for e in others]


def _responsible_party(lines: list[str]) -> str | None:
    if not lines:
        return None
    role = labelled(lines, "Responsibility Role ")
    return f"{lines[0]} ({role})" if role else lines[0]


def _people(lines: list[str]) -> list[Person]:
    """Name, ``Role: X``, then affiliation or phone lines."""
    people: list[dict] = []
    for line in lines:
        if line.startswith("Role:") and people:
            people[-1]["role"] = line.removeprefix("Role:").strip().upper()
        elif people and people[-1]["role"] and re.fullmatch(r"\+?[\d\s()\-.]{6,}(ext\.?\s*\d+)?", line):
            people[-1]["phone"] = line
        elif people and people[-1]["role"] and "@" in line and " " not in line:
            people[-1]["email"] = line
        elif people and people[-1]["role"] and people[-1]["affiliation"] is None:
            people[-1]["affiliation"] = clean(line)
        else:
            people.append({"name": clean(line), "role": None, "affiliation": None, "phone": None, "email": None})
    return [Person(**p) for p in people]


def _sites(lines: list[str], facility_contacts: list[Person]) -> list[Site]:
    """Facility, ``City, State, Country``, optionally ``Site Status X``.  Facility
    contacts are given to the site when there is exactly one."""
    sites: list[dict] = []
    for line in lines:
        if line.startswith("Site Status ") and sites:
            sites[-1]["status"] = line.removeprefix("Site Status ").strip()
        elif sites and sites[-1]["country"] is None and "," in line:
            sites[-1]["city"], sites[-1]["state"], sites[-1]["country"] = place(line)
        else:
            sites.append({"facility": clean(line), "city": None, "state": None, "country": None, "status": None})
    contacts = tuple(facility_contacts) if len(sites) == 1 else ()
    return [Site(**s, contacts=contacts) for s in sites]


def _identifiers(lines: list[str]) -> tuple[str | None, list[str]]:
    """``ID``, ``Identifier Type: T``, ``Identifier Source: S`` triples."""
    org_study_id = None
    secondary: list[str] = []
    current = None
    for line in lines:
        if line.startswith("Identifier Type:"):
            continue
        if line.startswith("Identifier Source:"):
            source = line.removeprefix("Identifier Source:").strip()
            if current and source == "org_study_id" and org_study_id is None:
                org_study_id = current
            elif current:
                secondary.append(current)
            current = None
        else:
            if current:
                secondary.append(current)
            current = line
    if current:
        secondary.append(current)
    return org_study_id, secondary
