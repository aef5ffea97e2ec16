"""The declared shape of a ClinicalTrials.gov API v2 study, checked at the edge.

Every field :mod:`monitor.normalize.ctgov` reads is declared here with its type; a payload is
checked against it before anything is normalized, so the normalizer can trust what it reads.
Fields we do not read are kept raw (``extra="allow"``) and never break a load.

Why pydantic 2: one declared model instead of ``isinstance`` checks scattered through the
normalizer; each violation comes with its precise location (``loc``), which becomes the JSON
path of the error; and strict mode refuses instead of coercing (``"PHASE2"`` is not a list of
phases, ``"forty"`` and ``true`` are not counts, an object is not a title).

A future registry source mirrors this module: a model of what its normalizer reads, and
:func:`check_study`-like entry point that raises :class:`ParseError` with the JSON path.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from monitor.errors import ParseError
from monitor.normalize.identity import NCT_ID
from monitor.normalize.violations import violation

_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")


def registry_date(value: str) -> str:
    """A date at the registry's precision: ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``, and real."""
    match = _DATE.fullmatch(value)
    if not match:
        raise ValueError("a date (YYYY-MM-DD, YYYY-MM or YYYY)")
    year, month, day = match.groups()
    try:
        date(int(year), int(month or 1), int(day or 1))
    except ValueError:
        raise ValueError("a real calendar date") from None
    return value


def _nct_id(value: str) -> str:
    if not NCT_ID.fullmatch(value):
        raise ValueError("an NCT id (NCT followed by 8 digits)")
    return value


Text = str
RegistryDate = Annotated[str, AfterValidator(registry_date)]
NctId = Annotated[str, AfterValidator(_nct_id)]
Phase = Literal["NA", "EARLY_PHASE1", "PHASE1", "PHASE2", "PHASE3", "PHASE4"]
TextList = list[Text]


class Shape(BaseModel):
    """Strict (no coercion), unread fields kept, every field optional unless declared."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)


class IdInfo(Shape):
    id: Text | None = None
    domain: Text | None = None
    type: Text | None = None


class Organization(Shape):
    fullName: Text | None = None


class Identification(Shape):
    nctId: NctId
    orgStudyIdInfo: IdInfo | None = None
    secondaryIdInfos: list[IdInfo] | None = None
    nctIdAliases: list[NctId] | None = Field(default=None, description="a list of NCT ids")
    briefTitle: Text | None = None
    officialTitle: Text | None = None
    acronym: Text | None = None
    organization: Organization | None = None


class DateStruct(Shape):
    date: RegistryDate | None = None
    type: Text | None = None


class ExpandedAccess(Shape):
    hasExpandedAccess: bool | None = None


class Status(Shape):
    overallStatus: Text | None = None
    lastKnownStatus: Text | None = None
    whyStopped: Text | None = None
    startDateStruct: DateStruct | None = None
    primaryCompletionDateStruct: DateStruct | None = None
    completionDateStruct: DateStruct | None = None
    lastUpdatePostDateStruct: DateStruct | None = None
    resultsFirstPostDateStruct: DateStruct | None = None
    dispFirstSubmitDate: RegistryDate | None = None
    expandedAccessInfo: ExpandedAccess | None = None


class Masking(Shape):
    masking: Text | None = None
    maskingDescription: Text | None = None
    whoMasked: TextList | None = None


class DesignInfo(Shape):
    allocation: Text | None = None
    interventionModel: Text | None = None
    interventionModelDescription: Text | None = None
    primaryPurpose: Text | None = None
    observationalModel: Text | None = None
    timePerspective: Text | None = None
    maskingInfo: Masking | None = None


class BioSpec(Shape):
    retention: Text | None = None
    description: Text | None = None


class EnrollmentInfo(Shape):
    count: Annotated[int, Field(ge=0, le=10**9)] | None = Field(
        default=None, description="a whole number of participants"
    )
    type: Text | None = None


class Design(Shape):
    phases: list[Phase] | None = Field(default=None, description="a list of phase names")
    studyType: Text | None = None
    designInfo: DesignInfo | None = None
    patientRegistry: bool | None = None
    targetDuration: Text | None = None
    bioSpec: BioSpec | None = None
    enrollmentInfo: EnrollmentInfo | None = None


class Sponsor(Shape):
    name: Text | None = None
    class_: Text | None = Field(default=None, alias="class")


class ResponsibleParty(Shape):
    investigatorFullName: Text | None = None
    oldNameTitle: Text | None = None
    type: Text | None = None


class Sponsors(Shape):
    leadSponsor: Sponsor | None = None
    collaborators: list[Sponsor] | None = None
    responsibleParty: ResponsibleParty | None = None


class Description(Shape):
    briefSummary: Text | None = None
    detailedDescription: Text | None = None


class Conditions(Shape):
    conditions: list[Text] | None = Field(default=None, description="a list of condition names")
    keywords: list[Text] | None = Field(default=None, description="a list of keywords")


class Intervention(Shape):
    name: Text | None = None
    type: Text | None = None
    description: Text | None = None
    otherNames: TextList | None = None
    armGroupLabels: TextList | None = None


class ArmGroup(Shape):
    label: Text | None = None
    type: Text | None = None
    description: Text | None = None
    interventionNames: TextList | None = None


class ArmsInterventions(Shape):
    interventions: list[Intervention] | None = None
    armGroups: list[ArmGroup] | None = None


class Outcome(Shape):
    measure: Text | None = None
    timeFrame: Text | None = None
    description: Text | None = None


class Outcomes(Shape):
    primaryOutcomes: list[Outcome] | None = None
    secondaryOutcomes: list[Outcome] | None = None
    otherOutcomes: list[Outcome] | None = None


class Eligibility(Shape):
    eligibilityCriteria: Text | None = None
    minimumAge: Text | None = None
    maximumAge: Text | None = None
    sex: Text | None = None
    healthyVolunteers: bool | None = None
    stdAges: TextList | None = None
    studyPopulation: Text | None = None


class Person(Shape):
    name: Text | None = None
    role: Text | None = None
    affiliation: Text | None = None
    phone: Text | None = None
    email: Text | None = None


class Location(Shape):
    facility: Text | None = None
    city: Text | None = None
    state: Text | None = None
    country: Text | None = None
    status: Text | None = None
    zip: Text | None = None
    contacts: list[Person] | None = None


class ContactsLocations(Shape):
    overallOfficials: list[Person] | None = None
    centralContacts: list[Person] | None = None
    locations: list[Location] | None = None


class Reference(Shape):
    citation: Text | None = None
    pmid: Text | None = None
    type: Text | None = None


class Link(Shape):
    label: Text | None = None
    url: Text | None = None


class AvailIpd(Shape):
    id: Text | None = None
    type: Text | None = None
    url: Text | None = None


class References(Shape):
    references: list[Reference] | None = None
    seeAlsoLinks: list[Link] | None = None
    availIpds: list[AvailIpd] | None = None


class Protocol(Shape):
    identificationModule: Identification
    statusModule: Status | None = None
    sponsorCollaboratorsModule: Sponsors | None = None
    oversightModule: Shape | None = None
    descriptionModule: Description | None = None
    conditionsModule: Conditions | None = None
    designModule: Design | None = None
    armsInterventionsModule: ArmsInterventions | None = None
    outcomesModule: Outcomes | None = None
    eligibilityModule: Eligibility | None = None
    contactsLocationsModule: ContactsLocations | None = None
    referencesModule: References | None = None
    ipdSharingStatementModule: dict[str, Text | TextList] | None = None


class UnpostedEvent(Shape):
    date: RegistryDate | None = None
    type: Text | None = None
    dateUnknown: bool | None = None


class Unposted(Shape):
    unpostedEvents: list[UnpostedEvent] | None = None


class ViolationEvent(Shape):
    issuedDate: RegistryDate | None = None
    creationDate: RegistryDate | None = None
    type: Text | None = None
    description: Text | None = None


class Violations(Shape):
    violationEvents: list[ViolationEvent] | None = None


class AnnotationModule(Shape):
    unpostedAnnotation: Unposted | None = None
    violationAnnotation: Violations | None = None


class Annotation(Shape):
    annotationModule: AnnotationModule | None = None


class LargeDoc(Shape):
    filename: Text | None = None
    label: Text | None = None
    typeAbbrev: Text | None = None


class LargeDocuments(Shape):
    largeDocs: list[LargeDoc] | None = None
    noSap: bool | None = None


class Documents(Shape):
    largeDocumentModule: LargeDocuments | None = None


class MiscInfo(Shape):
    versionHolder: RegistryDate | None = None


class Derived(Shape):
    miscInfoModule: MiscInfo | None = None


class Study(Shape):
    protocolSection: Protocol
    resultsSection: dict[str, Any] | None = None
    annotationSection: Annotation | None = None
    documentSection: Documents | None = None
    derivedSection: Derived | None = None


def check_study(study: Any, at: str = "") -> None:
    """Refuse ``study`` unless every field the normalizer reads has its declared type.

    ``at`` prefixes the JSON path in the error (``studies[3].``)."""
    try:
        Study.model_validate(study, strict=True)
    except ValidationError as exc:
        raise ParseError(violation(exc, Study, at)) from None


class _NctIdOnly(Shape):
    nctId: NctId


class _IdentificationOnly(Shape):
    identificationModule: _NctIdOnly


class Identified(Shape):
    """Only the path to the NCT id: what any registry answer must hold for us to know whose it is."""

    protocolSection: _IdentificationOnly


def check_identity(study: Any, at: str = "") -> None:
    """Refuse ``study`` unless ``protocolSection.identificationModule.nctId`` is an NCT id,
    naming the first part of that path of the wrong type (``at`` as in :func:`check_study`)."""
    try:
        Identified.model_validate(study, strict=True)
    except ValidationError as exc:
        raise ParseError(violation(exc, Identified, at)) from None
