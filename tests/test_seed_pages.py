"""The five seed pages, from three registry-page formats, parse to hand-checked values.

Every expected value below was read off the page text in seeds/ by a person.
"""

from __future__ import annotations

import pytest

from monitor.sources.files import read_snapshots

from conftest import SEEDS

SEED_FILES = {
    "mirror_unlabelled": "000_89b1b94dc6394612.txt",
    "ctgov_page_without_nct_id": "001_a5a85819b15e6730.txt",
    "medpath_dashes": "002_483b36d0d5906cfe.txt",
    "mirror_labelled": "003_43ccf47ba098859a.txt",
    "medpath_plain": "004_38458e90974f405c.txt",
}

EXPECTED = {
    "mirror_unlabelled": {
        "key": "NCT06518668",
        "nct_id": "NCT06518668",
        "org_study_id": "AAAV0505",
        "brief_title": "A Study of NKX019, a CD19 CAR NK Cell Therapy, in Subjects With Systemic Lupus Erythematosus",
        "overall_status": "RECRUITING",
        "phases": ["PHASE1"],
        "study_type": "INTERVENTIONAL",
        "enrollment": {"count": 6, "type": None},
        "start_date": {"date": "2024-07-01", "type": None},
        "completion_date": {"date": "2040-12-31", "type": None},
        "design_info": {
            "allocation": "NA",
            "intervention_model": "SINGLE_GROUP",
            "masking": "NONE",
            "primary_purpose": "TREATMENT",
        },
        "lead_sponsor": {"name": "Columbia University", "class": "OTHER"},
        "collaborators": [],
        "responsible_party": "Anca Askanase",
        "last_update_posted": "2025-07-25",
        "source": "page_mirror",
    },
    "ctgov_page_without_nct_id": {
        "key": "ORG-2024-0530",
        "nct_id": None,
        "org_study_id": "2024-0530",
        "brief_title": "Anti-CD19 CAR-NK Cells in Refractory/Relapsed Systemic Lupus Erythematosus",
        "official_title": "A Clinical Study of Anti-CD19 CAR-NK Cells in the Treatment of Refractory/Relapsed "
        "Systemic Lupus Erythematosus",
        "overall_status": "NOT_YET_RECRUITING",
        "phases": ["PHASE1"],
        "study_type": "INTERVENTIONAL",
        "enrollment": {"count": 10, "type": "ESTIMATED"},
        "start_date": {"date": "2024-06-01", "type": "ESTIMATED"},
        "primary_completion_date": {"date": "2025-08-01", "type": "ESTIMATED"},
        "completion_date": {"date": "2026-05-31", "type": "ESTIMATED"},
        "conditions": ["Systemic Lupus Erythematosus"],
        "design_info": {
            "allocation": "NA",
            "intervention_model": "SINGLE_GROUP",
            "masking": "NONE",
            "primary_purpose": "TREATMENT",
        },
        "lead_sponsor": None,
        "last_update_posted": "2024-05-20",
        "other": {"oversight isFdaRegulatedDevice": False, "oversight isFdaRegulatedDrug": False},
        "source": "page_ctgov",
    },
    "medpath_dashes": {
        "key": "NCT06676631",
        "nct_id": "NCT06676631",
        "org_study_id": None,
        "brief_title": "NK010 or NK042 in Combination with Rituximab for Refractory Systemic Lupus "
        "Erythematosus/lupus Nephritis",
        "overall_status": "RECRUITING",
        "phases": [],
        "study_type": "INTERVENTIONAL",
        "enrollment": {"count": 18, "type": None},
        "conditions": ["Refractory Systemic Lupus Erythematosus", "Refractory Lupus Nephritis"],
        "design_info": {"intervention_model": "SINGLE_GROUP"},
        "lead_sponsor": {"name": "Guangdong Provincial People's Hospital", "class": None},
        "last_update_posted": None,
        "source": "page_medpath",
    },
    "mirror_labelled": {
        "key": "NCT06337474",
        "nct_id": "NCT06337474",
        "org_study_id": "[2023]YLJSA089",
        "overall_status": "RECRUITING",
        "phases": ["EARLY_PHASE1"],
        "study_type": "INTERVENTIONAL",
        "enrollment": {"count": 9, "type": None},
        "start_date": {"date": "2024-08-30", "type": None},
        "completion_date": {"date": "2026-07-30", "type": None},
        "conditions": ["Thrombocytopenia Alloimmune"],
        "lead_sponsor": {"name": "Changzhou No.2 People's Hospital", "class": "OTHER"},
        "collaborators": [{"name": "Rui Therapeutics Co., Ltd", "class": "INDUSTRY"}],
        "responsible_party": "Lu Xuzhang (PRINCIPAL_INVESTIGATOR)",
        "last_update_posted": "2025-04-30",
        "source": "page_mirror",
    },
    "medpath_plain": {
        "key": "NCT05563545",
        "nct_id": "NCT05563545",
        "brief_title": "Anti-CD19 CAR-Engineered NK Cells in the Treatment of Relapsed/Refractory Acute "
        "Lymphoblastic Leukemia",
        "overall_status": "COMPLETED",
        "phases": ["PHASE1"],
        "study_type": "INTERVENTIONAL",
        "enrollment": {"count": 2, "type": None},
        "conditions": ["Acute Lymphoblastic Leukemia"],
        "lead_sponsor": {"name": "Shanghai Simnova Biotechnology Co.,Ltd.", "class": None},
        "source": "page_medpath",
    },
}

ELIGIBILITY = {
    # seed: (inclusion count, exclusion count, first inclusion, last exclusion, min age, max age, sex, healthy)
    "mirror_unlabelled": (
        10,
        33,
        "Signed informed consent form, able to adhere to the study visit schedule, and comply with other "
        "requirements of the study as specified in the protocol",
        "Known hypersensitivity or contraindications to the study treatment including LD; or other components "
        "such as human serum albumin or dimethyl sulfoxide.",
        "18 Years",
        "65 Years",
        "ALL",
        False,
    ),
    "ctgov_page_without_nct_id": (
        10,
        26,
        "Voluntarily participate in this clinical study, sign an informed consent form, have good compliance, "
        "and cooperate with follow-up;",
        "Situations in which investigators consider it inappropriate to participate in the study.",
        None,
        None,
        None,
        False,
    ),
    # This copy of the MedPath page lost its Inclusion/Exclusion headings: every
    # criterion is reported as an inclusion criterion (see page_medpath.py).
    "medpath_dashes": (
        30,
        0,
        "18 to 65 years old, male or female.",
        None,
        None,
        None,
        "ALL",
        None,
    ),
    "mirror_labelled": (
        12,
        13,
        "Age: ≥ 18 years old and ≤ 65 years old, male or female, subjects voluntarily participate in this "
        "clinical study and sign the Informed Consent Form (ICF);",
        "Any situation judged by the investigators that may increase the risk of the subjects or interfere "
        "with the clinical trial outcome.",
        "18 Years",
        "65 Years",
        "ALL",
        False,
    ),
    "medpath_plain": (
        6,
        11,
        "Age ≥12 years in the single-dose exploration phase, age ≥3 years in the dose exploration phase, both sexes;",
        "Other conditions determined by Investigator which are not suitable for participation in the study",
        None,
        None,
        "ALL",
        None,
    ),
}

ARMS_AND_INTERVENTIONS = {
    # seed: (intervention names, [(arm label, arm type, arm's interventions)])
    "mirror_unlabelled": (
        ["NKX019", "Cyclophosphamide LD"],
        [("NKX019 infusion", None, ["NKX019", "Cyclophosphamide LD"])],
    ),
    "ctgov_page_without_nct_id": (
        ["anti-CD19 CAR-NK cells"],
        [("anti-CD19 CAR-NK cells", "EXPERIMENTAL", ["anti-CD19 CAR-NK cells"])],
    ),
    "medpath_dashes": (["NK 010 or NK042"], [("NK 010 or NK 042 infusion", None, ["NK 010 or NK042", "Rituximab"])]),
    "mirror_labelled": (
        ["anti-CD19 CAR NK cells (KN5501)"],
        [("anti-CD19 CAR NK cells", "EXPERIMENTAL", ["anti-CD19 CAR NK cells (KN5501)"])],
    ),
    "medpath_plain": (["CAR-NK-CD19 Cells"], [("CAR-NK-CD19 Cells", None, ["CAR-NK-CD19 Cells"])]),
}

LOCATIONS = {
    "mirror_unlabelled": [("Columbia University Irving Medical Center", "New York", "New York", "United States", None)],
    "ctgov_page_without_nct_id": [
        ("The Second Affiliated Hospital of Zhejiang University School of Medicine", "Hangzhou", None, "China", None)
    ],
    "medpath_dashes": [("Guangdong Provincial People's Hospital", "Guangzhou", "Guangdomg", "China", None)],
    "mirror_labelled": [("Changzhou Second People's Hospital", "Changzhou", "Jiangsu", "China", "RECRUITING")],
    "medpath_plain": [("Hebei Yanda Ludaopei Hospital", "Sanhe", "Hebei", "China", None)],
}

OUTCOMES = {
    # seed: (primary count, secondary count, first primary (measure, time frame, description start))
    "mirror_unlabelled": (0, 0, None),
    "ctgov_page_without_nct_id": (
        2,
        12,
        (
            "The proportion of subjects with DLT",
            "Within 28 days after anti-CD19 CAR-NK cells infusion",
            "DLT definition is dose-limiting toxicity.",
        ),
    ),
    "medpath_dashes": (
        9,
        0,
        (
            "Response rate for SLE response index 4 (SRI4)",
            "Day 14, day 28, 2 months, 3 months, 6 months, 9 months, 12 months after the first "
            "administration of NK010 or NK042 infusion",
            "SRI4 response defined as a reduction",
        ),
    ),
    "mirror_labelled": (0, 0, None),
    "medpath_plain": (
        6,
        3,
        (
            "Safety of CAR NK-CD19 Cell",
            "Up to 3 months after cell infusion",
            "Incidence of adverse events associated with CAR NK-CD19 treatment",
        ),
    ),
}


def parsed(seed: str) -> dict:
    snapshots = read_snapshots(SEEDS / SEED_FILES[seed])
    assert len(snapshots) == 1
    return snapshots[0].record.to_dict()


@pytest.mark.parametrize("seed", EXPECTED)
def test_seed_page_identity_status_and_design(seed):
    record = parsed(seed)
    for key, value in EXPECTED[seed].items():
        assert record[key] == value, key


@pytest.mark.parametrize("seed", ELIGIBILITY)
def test_seed_page_criteria_are_single_criteria_with_age_and_sex(seed):
    n_in, n_ex, first_in, last_ex, min_age, max_age, sex, healthy = ELIGIBILITY[seed]
    eligibility = parsed(seed)["eligibility"]
    assert len(eligibility["inclusion"]) == n_in
    assert len(eligibility["exclusion"]) == n_ex
    assert eligibility["inclusion"][0] == first_in
    if last_ex is not None:
        assert eligibility["exclusion"][-1] == last_ex
    assert (eligibility["minimum_age"], eligibility["maximum_age"]) == (min_age, max_age)
    assert eligibility["sex"] == sex
    assert eligibility["healthy_volunteers"] is healthy
    for criterion in eligibility["inclusion"] + eligibility["exclusion"]:
        assert not criterion.startswith(("*", "-", "•", "1.")), criterion


@pytest.mark.parametrize("seed", ARMS_AND_INTERVENTIONS)
def test_seed_page_arms_and_interventions(seed):
    names, arms = ARMS_AND_INTERVENTIONS[seed]
    record = parsed(seed)
    assert [i["name"] for i in record["interventions"]] == names
    assert [(a["label"], a["type"], a["interventions"]) for a in record["arms"]] == [
        (label, kind, list(interventions)) for label, kind, interventions in arms
    ]


@pytest.mark.parametrize("seed", LOCATIONS)
def test_seed_page_locations(seed):
    sites = parsed(seed)["locations"]
    assert [(s["facility"], s["city"], s["state"], s["country"], s["status"]) for s in sites] == LOCATIONS[seed]


@pytest.mark.parametrize("seed", OUTCOMES)
def test_seed_page_outcomes_with_time_frames(seed):
    n_primary, n_secondary, first = OUTCOMES[seed]
    record = parsed(seed)
    assert len(record["primary_outcomes"]) == n_primary
    assert len(record["secondary_outcomes"]) == n_secondary
    if first:
        outcome = record["primary_outcomes"][0]
        assert (outcome["measure"], outcome["time_frame"]) == first[:2]
        assert outcome["description"].startswith(first[2])


def test_people_and_contacts_on_mirror_pages():
    unlabelled, labelled = parsed("mirror_unlabelled"), parsed("mirror_labelled")
    assert unlabelled["officials"] == [
        {
            "name": "Anca D Askanase, MD, MPH",
            "role": "PRINCIPAL_INVESTIGATOR",
            "affiliation": "Columbia University",
            "phone": None,
            "email": None,
        }
    ]
    assert labelled["central_contacts"][0]["name"] == "Xuzhang Lu, Doctor"
    assert labelled["central_contacts"][0]["phone"] == "+86-15295189493"
    assert labelled["locations"][0]["contacts"][0]["name"] == "Wei Qin, doctor"


def test_page_without_nct_id_is_keyed_by_its_org_study_id():
    record = parsed("ctgov_page_without_nct_id")
    assert record["nct_id"] is None
    assert record["key"] == "ORG-2024-0530"
    assert record["officials"][0]["name"] == "Huaxiang Wu"
    assert record["locations"][0]["contacts"][0]["phone"] == "86-13757118395"
    assert record["eligibility"]["std_ages"] == ["ADULT", "OLDER_ADULT"]
