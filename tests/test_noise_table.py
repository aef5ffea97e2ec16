"""Edits a registry makes without anything happening, applied to every real
record in ../shared/data/ctgov/records/, report nothing; edits that are news
(a site moved far away, a hospital replaced by another in the same city) are
reported, on every record they apply to."""

from __future__ import annotations

import copy
import json
import math
from functools import cache

import pytest

from monitor.classify import diff_records
from monitor.normalize import normalize_study

from conftest import SHARED, needs_shared

pytestmark = needs_shared


@cache
def _records() -> tuple[tuple[str, object], ...]:
    return tuple((p.read_text(), None) for p in sorted((SHARED / "records").glob("*.json")))


def every_record() -> list[dict]:
    return [json.loads(text) for text, _ in _records()]


def sites(study: dict) -> list[dict]:
    return (study["protocolSection"].get("contactsLocationsModule") or {}).get("locations") or []


def damaged(text: str) -> str:
    """What the registry's encoding damage does: accented letters become another
    letter with a stray quote (``Hôpital`` -> ``Hă"Pital``), quotes become ``â``."""
    out = []
    for c in text:
        if not c.isascii() and c.isalpha():
            out.append('ă"')
        elif c in "\"'":
            out.append("â")
        else:
            out.append(c)
    return "".join(out)


def mojibake(text: str) -> str:
    """UTF-8 read as Windows-1252 (``Hôpital`` -> ``HÃ´pital``, ``×`` -> ``Ã—``), for
    the two-byte characters (Latin letters, ``×``, ``±``): a three-byte one may
    end in byte A0, a no-break space that text cleaning has already collapsed."""
    out = []
    for c in text:
        try:
            out.append(c.encode("utf-8").decode("cp1252") if ord(c) < 0x800 else c)
        except UnicodeError:
            out.append(c)
    return "".join(out)


def recapitalised(study: dict) -> None:
    protocol = study["protocolSection"]
    ident = protocol["identificationModule"]
    for key in ("briefTitle", "officialTitle"):
        if ident.get(key):
            ident[key] = ident[key].upper()
    for arm in (protocol.get("armsInterventionsModule") or {}).get("armGroups") or []:
        if arm.get("description"):
            arm["description"] = arm["description"].swapcase()
    for item in (protocol.get("armsInterventionsModule") or {}).get("interventions") or []:
        if item.get("description"):
            item["description"] = item["description"].lower()
    for site in sites(study):
        if site.get("facility"):
            site["facility"] = site["facility"].title()


def encoding_damaged(study: dict) -> None:
    protocol = study["protocolSection"]
    ident = protocol["identificationModule"]
    ident["briefTitle"] = mojibake(ident["briefTitle"])
    for site in sites(study):
        if site.get("facility"):
            site["facility"] = damaged(site["facility"])
    for arm in (protocol.get("armsInterventionsModule") or {}).get("armGroups") or []:
        if arm.get("description"):
            arm["description"] = mojibake(arm["description"])


def false_dropped(study: dict) -> None:
    """Every boolean ``false`` in the protocol goes (the registry omits it)."""

    def walk(node):
        if isinstance(node, dict):
            for key in [k for k, v in node.items() if v is False]:
                del node[key]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(study["protocolSection"])


def nudge(point: dict, km: float) -> dict:
    """A geoPoint moved ``km`` north (east near the pole)."""
    return {"lat": point["lat"] + km / 111.0 if abs(point["lat"]) < 80 else point["lat"], "lon": point["lon"]}


def city_renamed(study: dict) -> None:
    """The registry renames every city that has a geoPoint (``Napoli`` -> ``Naples``)
    and refines the geoPoint by 20 km."""
    for site in sites(study):
        if site.get("city") and site.get("geoPoint"):  # without a geoPoint a new city is a new site
            site["city"] = f"{site['city']} (renamed by the registry)"
            site["geoPoint"] = nudge(site["geoPoint"], 20)


NOISE = {
    "capitals": recapitalised,
    "encoding_damage": encoding_damaged,
    "false_to_absent": false_dropped,
    "city_renamed_with_a_nearby_geopoint": city_renamed,
}


@pytest.mark.parametrize("mutation", NOISE, ids=list(NOISE))
def test_registry_noise_on_every_real_record_reports_nothing(mutation):
    noisy = []
    for study in every_record():
        new = copy.deepcopy(study)
        NOISE[mutation](new)
        found = diff_records(normalize_study(study), normalize_study(new))
        if found:
            noisy.append((study["protocolSection"]["identificationModule"]["nctId"], found[0].summary))
    assert noisy == [], f"{len(noisy)} records report noise, first: {noisy[:3]}"


def site_moved_far(study: dict) -> bool:
    """The first site with a geoPoint moves 300 km to another city."""
    site = next((s for s in sites(study) if s.get("geoPoint") and s.get("city")), None)
    if site is None:
        return False
    site["city"] = f"{site['city']} Nord"
    site["geoPoint"] = nudge(site["geoPoint"], 300)
    return not math.isclose(site["geoPoint"]["lat"], site["geoPoint"]["lat"] - 300 / 111.0)


def facility_replaced(study: dict) -> bool:
    """The first site's hospital closes; another opens in the same city."""
    if not sites(study) or not sites(study)[0].get("facility"):
        return False
    sites(study)[0]["facility"] = "Zyxwvut Memorial Infirmary"
    return True


REAL = {"site_moved_300_km_to_another_city": site_moved_far, "facility_replaced_in_the_same_city": facility_replaced}


@pytest.mark.parametrize("mutation", REAL, ids=list(REAL))
def test_real_site_changes_on_every_real_record_are_reported(mutation):
    missed, tried = [], 0
    for study in every_record():
        new = copy.deepcopy(study)
        if not REAL[mutation](new):
            continue
        tried += 1
        kinds = {
            c.change.value for c in diff_records(normalize_study(study), normalize_study(new)) if c.field == "locations"
        }
        if kinds != {"added", "removed"}:
            missed.append(study["protocolSection"]["identificationModule"]["nctId"])
    assert tried > 500
    assert missed == []
