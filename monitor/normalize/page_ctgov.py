"""Text of a ClinicalTrials.gov study page ("Study Overview", seed 001).

The website shows display words (``Not yet recruiting``, ``Phase 1``,
``Single Group Assignment``); they are turned into the API's enum spelling.
Links lose their text in a copied page: intervention names survive only in the
footer's ``Clinical Trials on X`` lines, which list conditions, then
interventions; a footer name that is also an arm's label is taken as an
intervention, any other as a condition.
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
    Outcome,
    Person,
    Site,
    Sponsor,
    TrialRecord,
    bag,
)
from monitor.normalize.identity import NCT_ID, record_key
from monitor.normalize.pagetext import (
    after_label,
    display_enum,
    has_landmarks,
    leading_int,
    page_lines,
    paragraph,
    place,
    split_sections,
    yes_no,
)
from monitor.normalize.text import clean, page_date, phases, split_criteria
from monitor.normalize.text import identity as matching

SOURCE = "page_ctgov"

HEADINGS = {
    "Study Overview",
    "Contacts and Locations",
    "Participation Criteria",
    "Study Plan",
    "Arms and Interventions",
    "What is the study measuring?",
    "Primary Outcome Measures",
    "Secondary Outcome Measures",
    "Other Outcome Measures",
    "Collaborators and Investigators",
    "Study record dates",
    "More Information",
    "Publications and helpful links",
}
_ARM_TYPE = re.compile(
    r"^(Experimental|Active Comparator|Placebo Comparator|Sham Comparator|No Intervention|Other): (.+)$"
)
_INTERVENTION_TYPE = re.compile(
    r"^(Drug|Biological|Device|Procedure|Radiation|Behavioral|Genetic|Dietary Supplement|"
    r"Combination Product|Diagnostic Test|Other): (.+)$"
)


def looks_like(text: str) -> bool:
    return has_landmarks(text, "Study Overview", "Participation Criteria")


def parse(text: str) -> TrialRecord:
    lines = page_lines(text, strip_markers=True)
    if len(lines) < 3:
        raise ParseError("the page is too short to be a study page")
    sections = split_sections(lines, HEADINGS)
    head = sections[""]
    overview = sections.get("Study Overview", [])
    participation = sections.get("Participation Criteria", [])
    dates = sections.get("Study record dates", [])
    more = sections.get("More Information", [])
    nct_id = next((w for line in lines for w in re.findall(r"\bNCT[0-9]{8}\b", line, re.ASCII)), None)
    if nct_id and not NCT_ID.fullmatch(nct_id):
        nct_id = None
    ids = _list_after(more, "Other Study ID Numbers", keep=r"^(?!Drug and device information)\S")
    org_study_id = ids[0] if ids else None
    brief_title = clean(head[0])
    arms, arm_texts = _arms(sections.get("Arms and Interventions", []))
    conditions, interventions = _footer_terms(lines, arms, arm_texts)
    enrollment_label = next((line for line in overview if line.startswith("Enrollment")), None)
    criteria = _between(participation, "Description", None)
    inclusion, exclusion = split_criteria("\n".join(criteria))
    return TrialRecord(
        key=record_key(nct_id, org_study_id, brief_title),
        nct_id=nct_id,
        org_study_id=org_study_id,
        secondary_ids=tuple(ids[1:]),
        brief_title=brief_title,
        official_title=clean(head[1]) if len(head) > 1 else None,
        overall_status=display_enum(after_label(overview, "Status")),
        phases=tuple(phases(" / ".join(_list_after(overview, "Phase", keep=r"^(Early )?Phase|^Not Applicable")))),
        study_type=display_enum(after_label(overview, "Study Type")),
        design_info=bag(_design(sections.get("Study Plan", []))),
        enrollment=Enrollment(
            count=leading_int(after_label(overview, enrollment_label)) if enrollment_label else None,
            type=_date_type(enrollment_label),
        ),
        start_date=_dated(dates, "Study Start"),
        primary_completion_date=_dated(dates, "Primary Completion"),
        completion_date=_dated(dates, "Study Completion"),
        conditions=tuple(conditions),
        brief_summary=clean("\n".join(head[2:])),
        interventions=tuple(interventions),
        arms=tuple(arms),
        eligibility=Eligibility(
            inclusion=tuple(inclusion),
            exclusion=tuple(exclusion),
            minimum_age=_age(participation, "Minimum"),
            maximum_age=_age(participation, "Maximum"),
            sex=display_enum(after_label(participation, "Sexes Eligible for Study")),
            healthy_volunteers=yes_no(after_label(participation, "Accepts Healthy Volunteers")),
            std_ages=tuple(
                display_enum(a)
                for a in _list_after(participation, "Ages Eligible for Study", keep=r"^(Child|Adult|Older Adult)$")
            ),
        ),
        lead_sponsor=_sponsor(sections.get("Collaborators and Investigators", [])),
        officials=tuple(_investigators(sections.get("Collaborators and Investigators", []))),
        locations=tuple(_sites(sections.get("Contacts and Locations", []))),
        primary_outcomes=tuple(_outcomes(sections.get("Primary Outcome Measures", []))),
        secondary_outcomes=tuple(_outcomes(sections.get("Secondary Outcome Measures", []))),
        other_outcomes=tuple(_outcomes(sections.get("Other Outcome Measures", []))),
        other=bag(_oversight(more)),
        last_update_posted=_dated(dates, "Last Update Posted").date,
        source=SOURCE,
    )


def _date_type(label: str | None) -> str | None:
    match = re.search(r"\((Actual|Estimated|Anticipated)\)", label or "")
    if not match:
        return None
    return "ACTUAL" if match.group(1) == "Actual" else "ESTIMATED"


def _dated(lines: list[str], prefix: str) -> DatePoint:
    for i, line in enumerate(lines[:-1]):
        if line == prefix or line.startswith(prefix + " ("):
            return DatePoint(date=page_date(lines[i + 1]), type=_date_type(line))
    return DatePoint()


def _list_after(lines: list[str], label: str, keep: str) -> list[str]:
    """The run of lines after ``label`` that match ``keep``."""
    if label not in lines:
        return []
    out = []
    for line in lines[lines.index(label) + 1 :]:
        if not re.match(keep, line):
            break
        out.append(line)
    return out


def _between(lines: list[str], start: str, end: str | None) -> list[str]:
    if start not in lines:
        return []
    rest = lines[lines.index(start) + 1 :]
    return rest[: rest.index(end)] if end and end in rest else rest


def _age(lines: list[str], which: str) -> str | None:
    for line in lines:
        match = re.match(rf"{which}\s+Age:?\s*(\d+ \w+)", line)
        if match:
            return match.group(1)
    return None


def _design(lines: list[str]) -> dict:
    keys = {
        "Primary Purpose": "primary_purpose",
        "Allocation": "allocation",
        "Interventional Model": "intervention_model",
        "Masking": "masking",
        "Observational Model": "observational_model",
        "Time Perspective": "time_perspective",
    }
    found = {}
    for line in lines:
        label, _, value = line.partition(": ")
        if label in keys and value:
            found[keys[label]] = display_enum(value)
    return found


def _arms(lines: list[str]) -> tuple[list[Arm], dict[str, list[str]]]:
    """Arms from the arms table; also each arm's unlabelled lines, which hold
    the descriptions of interventions whose names were links."""
    rows: list[dict] = []
    for line in lines:
        if line in ("Participant Group / Arm", "Intervention / Treatment"):
            continue
        arm = _ARM_TYPE.match(line)
        intervention = _INTERVENTION_TYPE.match(line)
        if arm:
            rows.append({"label": arm.group(2), "type": display_enum(arm.group(1)), "lines": [], "interventions": []})
        elif rows and intervention:
            rows[-1]["interventions"].append(intervention.group(2))
        elif rows:
            rows[-1]["lines"].append(line)
    arms = [
        Arm(
            label=r["label"],
            type=r["type"],
            description=clean(r["lines"][0]) if r["lines"] else None,
            interventions=tuple(r["interventions"]),
        )
        for r in rows
    ]
    return arms, {r["label"]: r["lines"][1:] for r in rows}


def _footer_terms(
    lines: list[str], arms: list[Arm], arm_texts: dict[str, list[str]]
) -> tuple[list[str], list[Intervention]]:
    terms = [
        line.removeprefix("Clinical Trials on ").strip() for line in lines if line.startswith("Clinical Trials on ")
    ]
    arm_labels = {matching(a.label): a for a in arms}
    conditions, interventions = [], []
    for term in terms:
        arm = arm_labels.get(matching(term))
        if arm is None:
            conditions.append(term)
            continue
        interventions.append(
            Intervention(name=term, description=paragraph(arm_texts.get(arm.label, [])), arm_labels=(arm.label,))
        )
    if interventions:
        named = {i.name for i in interventions}
        arms[:] = [
            Arm(
                a.label,
                a.type,
                a.description,
                a.interventions or tuple(n for n in named if matching(n) == matching(a.label)),
            )
            for a in arms
        ]
    return conditions, interventions


def _sponsor(lines: list[str]) -> Sponsor | None:
    name = after_label(lines, "Sponsor")
    return Sponsor(name) if name else None


def _investigators(lines: list[str]) -> list[Person]:
    people = []
    for line in lines:
        match = re.match(r"^(Principal Investigator|Study Director|Study Chair): ([^,]+),?\s*(.*)$", line)
        if match:
            people.append(
                Person(
                    name=match.group(2).strip(), role=display_enum(match.group(1)), affiliation=clean(match.group(3))
                )
            )
    return people


def _sites(lines: list[str]) -> list[Site]:
    """``City, Country, ZIP`` then facility, then ``Contact:`` with a name and
    ``Phone Number:`` / ``Email:`` lines."""
    if "Study Locations" not in lines:
        return []
    sites: list[dict] = []
    person: dict | None = None
    for line in lines[lines.index("Study Locations") + 1 :]:
        if line in ("Contact:", "Principal Investigator:", "Sub-Investigator:"):
            person = {"name": None, "role": display_enum(line.rstrip(":")), "phone": None, "email": None}
            if sites:
                sites[-1]["contacts"].append(person)
        elif person is not None and line.startswith("Phone Number:"):
            person["phone"] = line.removeprefix("Phone Number:").strip()
        elif person is not None and line.startswith("Email:"):
            person["email"] = line.removeprefix("Email:").strip()
        elif person is not None and person["name"] is None:
            person["name"] = clean(line)
        elif "," in line and (not sites or sites[-1]["facility"] is not None):
            city, state, country = place(line)
            sites.append({"facility": None, "city": city, "state": state, "country": country, "contacts": []})
            person = None
        elif sites and sites[-1]["facility"] is None:
            sites[-1]["facility"] = clean(line)
    return [
        Site(
            facility=s["facility"],
            city=s["city"],
            state=s["state"],
            country=s["country"],
            contacts=tuple(Person(**p) for p in s["contacts"]),
        )
        for s in sites
    ]


def _outcomes(lines: list[str]) -> list[Outcome]:
    """Measure, ``Time Frame: T``, description lines, then ``T`` again."""
    body = [line for line in lines if line not in ("Outcome Measure", "Measure Description", "Time Frame")]
    outcomes = []
    i = 0
    while i < len(body) - 1:
        if body[i + 1].startswith("Time Frame:"):
            measure, time_frame = body[i], body[i + 1].removeprefix("Time Frame:").strip()
            j = i + 2
            description = []
            while j < len(body) and body[j] != time_frame:
                description.append(body[j])
                j += 1
            outcomes.append(Outcome(measure=clean(measure), time_frame=time_frame, description=paragraph(description)))
            i = j + 1
        else:
            i += 1
    return outcomes


def _oversight(lines: list[str]) -> dict:
    return {
        "oversight isFdaRegulatedDrug": yes_no(after_label(lines, "Studies a U.S. FDA-regulated drug product")),
        "oversight isFdaRegulatedDevice": yes_no(after_label(lines, "Studies a U.S. FDA-regulated device product")),
    }
