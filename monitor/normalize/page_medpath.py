"""MedPath trial pages ("Registration Number", seeds 002 and 004).

MedPath renders tables as text with the cells run together
(``Safety of CAR NK-CD19 CellUp to 3 months after cell infusion``); rows are
taken apart by the shapes time frames take (``Up to``, ``Day 14``, ``3 months``)
and by the intervention names the page lists.  One copy of the page loses the
``Inclusion Criteria`` / ``Exclusion Criteria`` headings; its criteria are then
all reported as inclusion criteria, because the page does not say where the
exclusions begin.
"""

from __future__ import annotations

import re
from itertools import pairwise

from monitor.errors import ParseError
from monitor.model import Arm, Eligibility, Enrollment, Intervention, Outcome, Site, Sponsor, TrialRecord, bag
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
)
from monitor.normalize.text import clean, criterion_text, enum_spelling, phases

SOURCE = "page_medpath"

HEADINGS = {
    "Conditions",
    "Interventions",
    "Registration Number",
    "Lead Sponsor",
    "Brief Summary",
    "Detailed Description",
    "Recruitment & Eligibility",
    "Study & Design",
    "Arm && Interventions",
    "Primary Outcome Measures",
    "Secondary Outcome Measures",
    "Trial Locations",
}
# Where a time frame starts inside a run-together outcome row.
_TIME_FRAME = re.compile(
    r"(Up to|From \d|Days? -?\d|Weeks? \d|Months? \d|Years? \d|(?<!from )(?<!From )Baseline|Within |Through |"
    r"Until |At (?:baseline|day|week|month|the end)|Approximately |"
    r"\d+(?:\.\d+)? (?:hours?|days?|weeks?|months?|years?)\b)"
)
_FUNCTION_WORDS = {
    "a",
    "an",
    "and",
    "after",
    "at",
    "before",
    "by",
    "for",
    "from",
    "in",
    "of",
    "on",
    "or",
    "per",
    "post",
    "the",
    "to",
    "until",
    "with",
    "within",
    "up",
}
_SITE_NOISE = re.compile(r"(MedPath|© Copyright.*)$")


def looks_like(text: str) -> bool:
    return has_landmarks(text, "Registration Number", "Recruitment & Eligibility")


def parse(text: str) -> TrialRecord:
    lines = [line for line in page_lines(text, strip_markers=True) if line != "MedPath"]
    if not lines:
        raise ParseError("the page is empty")
    sections = split_sections(lines, HEADINGS)
    head = sections[""]
    title = clean(head[0])
    nct_id = next(iter(sections.get("Registration Number", [])), None)
    if nct_id and not NCT_ID.fullmatch(nct_id):
        raise ParseError(f"the page's Registration Number {nct_id!r} is not an NCT id")
    recruitment = sections.get("Recruitment & Eligibility", [])
    study = sections.get("Study & Design", [])
    interventions = [_intervention(line) for line in sections.get("Interventions", [])]
    status = after_label(recruitment, "Status") or next((line for line in head[1:] if not phases(line)), None)
    sponsor = next(iter(sections.get("Lead Sponsor", [])), None)
    return TrialRecord(
        key=record_key(nct_id, None, title),
        nct_id=nct_id,
        brief_title=title,
        overall_status=display_enum(status),
        phases=tuple(p for line in head[1:] for p in phases(line)),
        study_type=enum_spelling(after_label(study, "Study Type")),
        design_info=bag({"intervention_model": enum_spelling(after_label(study, "Study Design"))}),
        enrollment=Enrollment(count=leading_int(after_label(recruitment, "Target Recruitment"))),
        conditions=tuple(c for line in sections.get("Conditions", []) for c in _run_together(line)),
        brief_summary=paragraph(sections.get("Brief Summary", [])),
        detailed_description=paragraph(sections.get("Detailed Description", [])),
        interventions=tuple(interventions),
        arms=tuple(_arms(sections.get("Arm && Interventions", []), interventions)),
        eligibility=_eligibility(recruitment),
        lead_sponsor=Sponsor(clean(sponsor)) if sponsor else None,
        locations=tuple(_sites(sections.get("Trial Locations", []))),
        primary_outcomes=tuple(_outcomes(sections.get("Primary Outcome Measures", []))),
        secondary_outcomes=tuple(_outcomes(sections.get("Secondary Outcome Measures", []))),
        source=SOURCE,
    )


def _run_together(line: str) -> list[str]:
    """``Refractory Systemic Lupus ErythematosusRefractory Lupus Nephritis`` ->
    two conditions: a lower-case run followed by a capitalised word is a seam."""
    return [part.strip() for part in re.split(r"(?<=[a-z]{2})(?=[A-Z][a-z])", line) if part.strip()]


def _intervention(line: str) -> Intervention:
    kind, sep, name = line.partition(": ")
    if not sep:
        return Intervention(name=clean(line) or "")
    return Intervention(name=clean(name) or "", type=display_enum(kind))


def _eligibility(lines: list[str]) -> Eligibility:
    """Criteria follow ``Target Recruitment`` and its count, with or without
    ``Inclusion Criteria`` / ``Exclusion Criteria`` headings."""
    sex = after_label(lines, "Sex")
    start = lines.index("Target Recruitment") + 2 if "Target Recruitment" in lines else 0
    inclusion: list[str] = []
    exclusion: list[str] = []
    current = inclusion
    for line in lines[start:]:
        if line in ("Inclusion Criteria", "Inclusion Criteria:"):
            current = inclusion
        elif line in ("Exclusion Criteria", "Exclusion Criteria:"):
            current = exclusion
        elif criterion_text(line):
            current.append(criterion_text(line))
    return Eligibility(inclusion=tuple(inclusion), exclusion=tuple(exclusion), sex=display_enum(sex))


def _arms(lines: list[str], interventions: list[Intervention]) -> list[Arm]:
    """``Group Intervention Description`` rows run together.  A row is a group
    label, an intervention name, a description; the intervention names come from
    the Interventions list; a name the list lacks is found where the previous
    row's description is repeated after it."""
    text = clean(" ".join(lines)) or ""
    text = re.sub(r"^Group\s*Intervention\s*Description\s*", "", text)
    names = sorted({i.name for i in interventions if i.name}, key=len, reverse=True)
    arms: list[Arm] = []
    while text:
        hit = min(
            ((text.find(name, 1), name) for name in names if text.find(name, 1) > 0),
            default=None,
        )
        if hit is None:
            break
        at, name = hit
        label = text[:at].strip()
        rest = text[at + len(name) :].strip()
        end = _next_row(rest, label, names)
        description, text = (rest[:end].strip(), rest[end:]) if end > 0 else (rest, "")
        arms = _add_arm(arms, label, name, description)
        if text:
            text = text[len(label) :].strip()
            repeat = text.find(description) if description else -1
            if repeat > 0 and not any(text.startswith(n) for n in names):
                arms = _add_arm(arms, label, text[:repeat].strip(), description)
                text = text[repeat + len(description) :].strip()
            else:
                text = f"{label} {text}"
    return arms


def _next_row(rest: str, label: str, names: list[str]) -> int:
    """Where the next row starts in ``rest``: at the group label again, followed
    by a known intervention or by this row's description repeated; -1 if none."""
    at = rest.find(label, 1) if label else -1
    while at > 0:
        after = rest[at + len(label) :].strip()
        if any(after.startswith(n) for n in names) or rest[:at].strip() in after:
            return at
        at = rest.find(label, at + 1)
    return -1


def _add_arm(arms: list[Arm], label: str, intervention: str, description: str) -> list[Arm]:
    for i, arm in enumerate(arms):
        if arm.label == label:
            arms[i] = Arm(label, arm.type, arm.description, (*arm.interventions, intervention))
            return arms
    return [*arms, Arm(label=label, description=clean(description), interventions=(intervention,))]


def _outcomes(lines: list[str]) -> list[Outcome]:
    """Rows of measure, time frame and description run together; a row whose
    description is not on its line has it on the next line."""
    rows = [line for line in lines if not re.fullmatch(r"Name\s*Time\s*Method", line)]
    if rows and re.match(r"Name\s*Time\s*Method\s*", rows[0]):
        rows[0] = re.sub(r"^Name\s*Time\s*Method\s*", "", rows[0])
    outcomes: list[Outcome] = []
    pending: Outcome | None = None
    for row in rows:
        if pending is not None:
            outcomes.append(Outcome(pending.measure, pending.time_frame, clean(row)))
            pending = None
            continue
        start = _TIME_FRAME.search(row, 1)
        if not start:
            outcomes.append(Outcome(measure=clean(row) or ""))
            continue
        measure, time_frame, description = row[: start.start()], row[start.start() :], None
        cut = _description_start(time_frame)
        if cut:
            time_frame, description = time_frame[:cut], time_frame[cut:]
        outcome = Outcome(clean(measure) or "", clean(time_frame), clean(description))
        if description is None:
            pending = outcome
        else:
            outcomes.append(outcome)
    if pending is not None:
        outcomes.append(pending)
    return outcomes


def _description_start(text: str) -> int | None:
    """Where a description starts after a time frame: the first capitalised
    word after a lower-case content word or after a full stop."""
    tokens = list(re.finditer(r"\S+", text))
    for before, token in pairwise(tokens):
        word, previous = token.group(), before.group()
        if not word[0].isupper():
            continue
        if previous.endswith(".") or (previous.isalpha() and previous.islower() and previous not in _FUNCTION_WORDS):
            return token.start()
    return None


def _sites(lines: list[str]) -> list[Site]:
    """Facility, then ``City, State, Country`` (flag and page footer removed)."""
    sites: list[dict] = []
    for line in lines:
        line = _SITE_NOISE.sub("", line).strip()
        if not line or re.fullmatch(r"Locations \(\d+\)", line):
            continue
        if sites and sites[-1]["country"] is None and "," in line:
            sites[-1]["city"], sites[-1]["state"], sites[-1]["country"] = place(line)
        else:
            sites.append({"facility": clean(line), "city": None, "state": None, "country": None})
    return [Site(**s) for s in sites]
