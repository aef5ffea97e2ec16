"""Every input a user has becomes normalized records; every bad input is a
clear error that names the file."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from monitor.errors import ParseError, SourceError
from monitor.normalize import normalize_study
from monitor.pipeline import read_payloads
from monitor.sources.files import read_snapshots

from conftest import FIXTURES, OPENING, SEEDS, SHARED, needs_shared

PUBLIC_KEYS = {
    "nct_id",
    "org_study_id",
    "brief_title",
    "official_title",
    "acronym",
    "overall_status",
    "why_stopped",
    "phases",
    "study_type",
    "enrollment",
    "start_date",
    "primary_completion_date",
    "completion_date",
    "conditions",
    "keywords",
    "interventions",
    "arms",
    "eligibility",
    "lead_sponsor",
    "collaborators",
    "locations",
    "primary_outcomes",
    "secondary_outcomes",
    "last_update_posted",
    "source",
}


def two_studies() -> list[dict]:
    return [
        json.loads((OPENING / "2026-03-10.json").read_text()),
        json.loads((FIXTURES / "ctgov" / "NCT06302556" / "2026-03-02.json").read_text()),
    ]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("single.json", lambda: json.dumps(two_studies()[0])),
        ("page.json", lambda: json.dumps({"studies": two_studies(), "nextPageToken": "abc"})),
        ("export.json", lambda: json.dumps(two_studies())),
    ],
    ids=["single_study", "studies_page", "website_export"],
)
def test_api_json_shapes_load_as_records(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content())
    keys = [s.record.key for s in read_snapshots(path)]
    assert keys[0] == "NCT06821503"
    assert len(keys) == (1 if name == "single.json" else 2)


def test_gzip_compressed_snapshots_load(tmp_path):
    path = tmp_path / "NCT06821503.json.gz"
    path.write_bytes(gzip.compress((OPENING / "2026-03-10.json").read_bytes()))
    (snapshot,) = read_snapshots(path)
    assert snapshot.record.overall_status == "RECRUITING"
    page = tmp_path / "seed.txt.gz"
    page.write_bytes(gzip.compress((SEEDS / "000_89b1b94dc6394612.txt").read_bytes()))
    assert read_snapshots(page)[0].record.nct_id == "NCT06518668"


def test_record_has_the_public_json_keys_with_enum_spelling():
    (snapshot,) = read_snapshots(OPENING / "2026-03-10.json")
    data = snapshot.record.to_dict()
    assert set(data) >= PUBLIC_KEYS
    assert data["enrollment"] == {"count": 72, "type": "ESTIMATED"}
    assert data["start_date"] == {"date": "2025-04-11", "type": "ACTUAL"}
    assert set(data["eligibility"]) >= {
        "inclusion",
        "exclusion",
        "minimum_age",
        "maximum_age",
        "sex",
        "healthy_volunteers",
    }
    assert set(data["locations"][0]) >= {"facility", "city", "state", "country", "status"}
    assert set(data["primary_outcomes"][0]) == {"measure", "time_frame", "description"}
    assert data["phases"] == ["PHASE1", "PHASE2"]
    assert data["source"] == "ctgov_json"


def test_record_survives_a_round_trip_through_json():
    from monitor.model import TrialRecord

    (snapshot,) = read_snapshots(OPENING / "2026-03-10.json")
    assert TrialRecord.from_dict(json.loads(json.dumps(snapshot.record.to_dict()))) == snapshot.record


BAD_FILES = {
    "empty.txt": (b"", "the file is empty"),
    "broken.json": (b'{"protocolSection": {', "broken JSON at line 1"),
    "not_a_study.json": (b'{"hello": "world"}', "not a ClinicalTrials.gov study"),
    "list_of_junk.json": (b"[1, 2]", "[0]: not a ClinicalTrials.gov study"),
    "no_nct_id.json": (b'{"protocolSection": {"identificationModule": {"nctId": "NCT123"}}}', 'nctId: expected an NCT id (NCT followed by 8 digits), got the string "NCT123"'),
    "random.txt": (b"Dear diary, today I watched a trial.", "not a trial page we recognise"),
    "binary.txt": (b"\xff\xfe\x00\x00garbage", "not UTF-8 text"),
    "bad.json.gz": (b"\x1f\x8b\x08\x00garbage", "a damaged gzip file"),
}


@pytest.mark.parametrize("name", BAD_FILES)
def test_a_bad_file_is_a_clear_error_naming_the_file(tmp_path, name):
    content, message = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SourceError) as raised:
        read_snapshots(path)
    assert str(path) in raised.value.message
    assert message in raised.value.message


def test_reading_a_folder_reports_every_bad_file_and_stores_nothing(tmp_path):
    (tmp_path / "good.json").write_bytes((OPENING / "2026-03-10.json").read_bytes())
    (tmp_path / "a_bad.json").write_text("{")
    (tmp_path / "b_bad.txt").write_text("nothing")
    with pytest.raises(SourceError, match=r"a_bad.json: broken JSON .* \(and 1 more\); nothing was stored"):
        read_payloads([tmp_path])


def test_missing_paths_and_empty_folders_are_errors(tmp_path):
    with pytest.raises(SourceError, match="no such file or folder"):
        read_payloads([tmp_path / "nope"])
    with pytest.raises(SourceError, match="no snapshot files"):
        read_payloads([tmp_path])


def test_a_page_whose_nct_id_is_malformed_is_rejected(tmp_path):
    text = (SEEDS / "000_89b1b94dc6394612.txt").read_text().replace("NCT ID: NCT06518668", "NCT ID: NCT0651866")
    path = tmp_path / "page.txt"
    path.write_text(text)
    with pytest.raises(ParseError, match="is not an NCT id"):
        read_snapshots(path)


@needs_shared
def test_reordering_the_lists_of_any_real_record_is_no_change():
    import copy

    from monitor.classify import diff_records

    for path in sorted((SHARED / "records").glob("*.json")):
        study = json.loads(path.read_text())
        shuffled = copy.deepcopy(study)
        protocol = shuffled["protocolSection"]
        for module, key in (
            ("contactsLocationsModule", "locations"),
            ("outcomesModule", "primaryOutcomes"),
            ("outcomesModule", "secondaryOutcomes"),
            ("armsInterventionsModule", "armGroups"),
            ("armsInterventionsModule", "interventions"),
            ("conditionsModule", "conditions"),
            ("referencesModule", "references"),
            ("sponsorCollaboratorsModule", "collaborators"),
        ):
            items = (protocol.get(module) or {}).get(key)
            if items:
                items.reverse()
        assert diff_records(normalize_study(study), normalize_study(shuffled)) == [], path.name


@needs_shared
def test_all_real_records_normalize_and_equal_themselves():
    from monitor.classify import diff_records

    files = sorted((SHARED / "records").glob("*.json"))
    assert len(files) == 1100
    for path in files:
        (snapshot,) = read_snapshots(path)
        assert snapshot.record.nct_id == path.stem
        assert diff_records(snapshot.record, snapshot.record) == []


@needs_shared
@pytest.mark.parametrize("name", sorted(p.name for p in (SHARED / "search").glob("*.json")) if SHARED.is_dir() else [])
def test_real_search_pages_and_exports_load(name):
    path: Path = SHARED / "search" / name
    payload = json.loads(path.read_text())
    expected = len(payload["studies"]) if isinstance(payload, dict) else len(payload)
    snapshots = read_snapshots(path)
    assert len(snapshots) == expected > 0
    assert all(s.record.nct_id for s in snapshots)
