"""ClinicalTrials.gov API v2 study JSON -> TrialRecord (pure)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from monitor.errors import ParseError
from monitor.model import (
    Arm,
    DatePoint,
    Eligibility,
    Enrollment,
    Intervention,
    Outcome,
    Person,
    Reference,
    Site,
    Sponsor,
    TrialRecord,
    bag,
)
from monitor.normalize.identity import NCT_ID, record_key
from monitor.normalize.text import clean, split_criteria

SOURCE = "ctgov_json"

# Protocol modules read field by field below; any other module is kept whole
# (as a fingerprint) in ``other`` so that no change goes unseen.
_KNOWN_MODULES = {
    "identificationModule",
    "statusModule",
    "sponsorCollaboratorsModule",
    "oversightModule",
    "descriptionModule",
    "conditionsModule",
    "designModule",
    "armsInterventionsModule",
    "outcomesModule",
    "eligibilityModule",
    "contactsLocationsModule",
    "referencesModule",
    "ipdSharingStatementModule",
}


def is_study(payload: Any) -> bool:
    """Whether ``payload`` looks like one API v2 study."""
    return isinstance(payload, dict) and isinstance(payload.get("protocolSection"), dict)


def fingerprint(value: Any) -> str:
    """A short stable digest of any JSON value."""
    canonical = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def nct_id_of(study: dict[str, Any]) -> str:
    if not is_study(study):
        raise ParseError("not a ClinicalTrials.gov study: it has no protocolSection")
    nct_id = (study["protocolSection"].get("identificationModule") or {}).get("nctId")
    if not isinstance(nct_id, str) or not NCT_ID.fullmatch(nct_id):
        raise ParseError(f"the study has no valid NCT id (identificationModule.nctId = {nct_id!r})")
    return nct_id


def normalize_study(study: dict[str, Any]) -> TrialRecord:
    nct_id = nct_id_of(study)
    protocol = study["protocolSection"]
    ident = protocol.get("identificationModule") or {}
    status = protocol.get("statusModule") or {}
    design = protocol.get("designModule") or {}
    sponsors = protocol.get("sponsorCollaboratorsModule") or {}
    description = protocol.get("descriptionModule") or {}
    conditions = protocol.get("conditionsModule") or {}
    arms_module = protocol.get("armsInterventionsModule") or {}
    outcomes = protocol.get("outcomesModule") or {}
    contacts = protocol.get("contactsLocationsModule") or {}
    org_study_id = (ident.get("orgStudyIdInfo") or {}).get("id")
    brief_title = clean(ident.get("briefTitle"))
    lead = sponsors.get("leadSponsor") or {}
    return TrialRecord(
        key=record_key(nct_id, org_study_id, brief_title),
        nct_id=nct_id,
        org_study_id=org_study_id,
        secondary_ids=tuple(_secondary_id(s) for s in ident.get("secondaryIdInfos") or () if s.get("id"))
        + tuple(f"NCT alias: {a}" for a in ident.get("nctIdAliases") or ()),
        brief_title=brief_title,
        official_title=clean(ident.get("officialTitle")),
        acronym=clean(ident.get("acronym")),
        organization=(ident.get("organization") or {}).get("fullName"),
        overall_status=status.get("overallStatus"),
        last_known_status=status.get("lastKnownStatus"),
        why_stopped=clean(status.get("whyStopped")),
        phases=tuple(design.get("phases") or ()),
        study_type=design.get("studyType"),
        design_info=_design_info(design),
        enrollment=Enrollment(
            count=(design.get("enrollmentInfo") or {}).get("count"),
            type=(design.get("enrollmentInfo") or {}).get("type"),
        ),
        start_date=_date(status.get("startDateStruct")),
        primary_completion_date=_date(status.get("primaryCompletionDateStruct")),
        completion_date=_date(status.get("completionDateStruct")),
        conditions=tuple(clean(c) for c in conditions.get("conditions") or () if clean(c)),
        keywords=tuple(clean(k) for k in conditions.get("keywords") or () if clean(k)),
        brief_summary=clean(description.get("briefSummary")),
        detailed_description=clean(description.get("detailedDescription")),
        interventions=tuple(_intervention(i) for i in arms_module.get("interventions") or ()),
        arms=tuple(_arm(a) for a in arms_module.get("armGroups") or ()),
        eligibility=_eligibility(protocol.get("eligibilityModule") or {}),
        lead_sponsor=Sponsor(lead["name"], lead.get("class")) if lead.get("name") else None,
        collaborators=tuple(
            Sponsor(c["name"], c.get("class")) for c in sponsors.get("collaborators") or () if c.get("name")
        ),
        responsible_party=_responsible_party(sponsors.get("responsibleParty") or {}),
        officials=tuple(_person(p) for p in contacts.get("overallOfficials") or ()),
        central_contacts=tuple(_person(p) for p in contacts.get("centralContacts") or ()),
        locations=tuple(_site(s) for s in contacts.get("locations") or ()),
        primary_outcomes=tuple(_outcome(o) for o in outcomes.get("primaryOutcomes") or ()),
        secondary_outcomes=tuple(_outcome(o) for o in outcomes.get("secondaryOutcomes") or ()),
        other_outcomes=tuple(_outcome(o) for o in outcomes.get("otherOutcomes") or ()),
        references=_references(protocol.get("referencesModule") or {}),
        results=_results(study),
        other=_other(study),
        last_update_posted=(status.get("lastUpdatePostDateStruct") or {}).get("date"),
        source=SOURCE,
        status_verified=status.get("statusVerifiedDate"),
    )


def _secondary_id(info: dict[str, Any]) -> str:
    label = info.get("domain") or info.get("type")
    return f"{label}: {info['id']}" if label else info["id"]


def _date(struct: dict[str, Any] | None) -> DatePoint:
    struct = struct or {}
    return DatePoint(date=struct.get("date"), type=struct.get("type"))


def _design_info(design: dict[str, Any]) -> tuple:
    info = design.get("designInfo") or {}
    masking = info.get("maskingInfo") or {}
    bio = design.get("bioSpec") or {}
    return bag(
        {
            "allocation": info.get("allocation"),
            "intervention_model": info.get("interventionModel"),
            "intervention_model_description": clean(info.get("interventionModelDescription")),
            "primary_purpose": info.get("primaryPurpose"),
            "observational_model": info.get("observationalModel"),
            "time_perspective": info.get("timePerspective"),
            "masking": masking.get("masking"),
            "masking_description": clean(masking.get("maskingDescription")),
            "who_masked": ", ".join(masking.get("whoMasked") or ()),
            "patient_registry": design.get("patientRegistry"),
            "target_duration": design.get("targetDuration"),
            "bio_spec_retention": bio.get("retention"),
            "bio_spec_description": clean(bio.get("description")),
        }
    )


def _intervention(data: dict[str, Any]) -> Intervention:
    return Intervention(
        name=clean(data.get("name")) or "",
        type=data.get("type"),
        description=clean(data.get("description")),
        other_names=tuple(data.get("otherNames") or ()),
        arm_labels=tuple(data.get("armGroupLabels") or ()),
    )


def _arm(data: dict[str, Any]) -> Arm:
    return Arm(
        label=clean(data.get("label")) or "",
        type=data.get("type"),
        description=clean(data.get("description")),
        interventions=tuple(data.get("interventionNames") or ()),
    )


def _eligibility(data: dict[str, Any]) -> Eligibility:
    inclusion, exclusion = split_criteria(data.get("eligibilityCriteria"))
    return Eligibility(
        inclusion=tuple(inclusion),
        exclusion=tuple(exclusion),
        minimum_age=data.get("minimumAge"),
        maximum_age=data.get("maximumAge"),
        sex=data.get("sex"),
        healthy_volunteers=data.get("healthyVolunteers"),
        std_ages=tuple(data.get("stdAges") or ()),
        study_population=clean(data.get("studyPopulation")),
    )


def _responsible_party(data: dict[str, Any]) -> str | None:
    name = data.get("investigatorFullName") or data.get("oldNameTitle")
    kind = data.get("type")
    if name and kind:
        return f"{name} ({kind})"
    return name or kind


def _person(data: dict[str, Any]) -> Person:
    return Person(
        name=clean(data.get("name")),
        role=data.get("role"),
        affiliation=clean(data.get("affiliation")),
        phone=data.get("phone"),
        email=data.get("email"),
    )


def _site(data: dict[str, Any]) -> Site:
    return Site(
        facility=clean(data.get("facility")),
        city=clean(data.get("city")),
        state=clean(data.get("state")),
        country=clean(data.get("country")),
        status=data.get("status"),
        contacts=tuple(_person(p) for p in data.get("contacts") or ()),
        zip=data.get("zip"),
        geo=_geo(data.get("geoPoint")),
    )


def _geo(point: Any) -> tuple[float, float] | None:
    lat, lon = (point.get("lat"), point.get("lon")) if isinstance(point, dict) else (None, None)
    if isinstance(lat, int | float) and isinstance(lon, int | float):
        return (float(lat), float(lon))
    return None


def _outcome(data: dict[str, Any]) -> Outcome:
    return Outcome(
        measure=clean(data.get("measure")) or "",
        time_frame=clean(data.get("timeFrame")),
        description=clean(data.get("description")),
    )


def _references(module: dict[str, Any]) -> tuple[Reference, ...]:
    refs = [
        Reference(citation=clean(r.get("citation")), pmid=r.get("pmid"), type=r.get("type"))
        for r in module.get("references") or ()
    ]
    refs += [
        Reference(citation=clean(f"{link.get('label') or ''} {link.get('url') or ''}"), type="SEE_ALSO")
        for link in module.get("seeAlsoLinks") or ()
    ]
    refs += [
        Reference(citation=clean(f"{ipd.get('type') or ''} {ipd.get('id') or ''} {ipd.get('url') or ''}"), type="IPD")
        for ipd in module.get("availIpds") or ()
    ]
    return tuple(refs)


def _results(study: dict[str, Any]) -> tuple:
    """Results modules as fingerprints, plus results-submission events."""
    status = (study.get("protocolSection") or {}).get("statusModule") or {}
    found: dict[str, Any] = {
        f"section {name}": fingerprint(module) for name, module in (study.get("resultsSection") or {}).items()
    }
    first = (status.get("resultsFirstPostDateStruct") or {}).get("date")
    if first:
        found["results_first_posted"] = first
    if status.get("dispFirstSubmitDate"):  # a certification to delay results
        found["results_delay_submitted"] = status["dispFirstSubmitDate"]
    annotation = (study.get("annotationSection") or {}).get("annotationModule") or {}
    events = (annotation.get("unpostedAnnotation") or {}).get("unpostedEvents") or ()
    for event in events:
        label = f"event {event.get('date') or '?'} {event.get('type') or 'EVENT'}"
        found[label] = (event.get("dateUnknown") and "date unknown") or (event.get("type") or "")
    for event in (annotation.get("violationAnnotation") or {}).get("violationEvents") or ():
        label = (
            f"violation {event.get('issuedDate') or event.get('creationDate') or '?'} {event.get('type') or ''}".strip()
        )
        found[label] = clean(event.get("description")) or event.get("type") or ""
    return bag(found)


def _other(study: dict[str, Any]) -> tuple:
    """Oversight, IPD sharing, documents, and any protocol module we do not read."""
    protocol = study.get("protocolSection") or {}
    found: dict[str, Any] = {}
    for key, value in (protocol.get("oversightModule") or {}).items():
        found[f"oversight {key}"] = value
    for key, value in (protocol.get("ipdSharingStatementModule") or {}).items():
        found[f"ipd_sharing {key}"] = ", ".join(value) if isinstance(value, list) else clean(str(value))
    expanded = (protocol.get("statusModule") or {}).get("expandedAccessInfo") or {}
    if expanded.get("hasExpandedAccess") is not None:
        found["expanded_access"] = expanded.get("hasExpandedAccess")
    docs = (study.get("documentSection") or {}).get("largeDocumentModule") or {}
    for doc in docs.get("largeDocs") or ():
        found[f"document {doc.get('filename') or doc.get('label')}"] = doc.get("label") or doc.get("typeAbbrev")
    if docs.get("noSap"):
        found["document noSap"] = True
    for name, module in protocol.items():
        if name not in _KNOWN_MODULES:
            found[f"module {name}"] = fingerprint(module)
    return bag(found)
