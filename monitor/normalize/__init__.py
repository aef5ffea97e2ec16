"""Raw payloads -> TrialRecords (pure: no I/O).

``FORMATS`` maps the name of each input format to its parser.  JSON payloads
are ClinicalTrials.gov API v2 studies; text payloads are registry pages
recognised by their landmarks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from monitor.errors import ParseError
from monitor.model import TrialRecord
from monitor.normalize import ctgov, page_ctgov, page_medpath, page_mirror

PAGE_FORMATS: dict[str, tuple[Callable[[str], bool], Callable[[str], TrialRecord]]] = {
    page_mirror.SOURCE: (page_mirror.looks_like, page_mirror.parse),
    page_ctgov.SOURCE: (page_ctgov.looks_like, page_ctgov.parse),
    page_medpath.SOURCE: (page_medpath.looks_like, page_medpath.parse),
}

FORMATS = {ctgov.SOURCE, *PAGE_FORMATS}


def studies_in(payload: Any) -> list[dict[str, Any]]:
    """The studies in decoded JSON: one study, a ``/studies`` page
    (``{"studies": [...]}``) or a website export (a bare array)."""
    if ctgov.is_study(payload):
        return [payload]
    if isinstance(payload, dict) and isinstance(payload.get("studies"), list):
        items = payload["studies"]
    elif isinstance(payload, list):
        items = payload
    else:
        raise ParseError("JSON is not a ClinicalTrials.gov study, /studies page or export array")
    bad = [i for i, item in enumerate(items) if not ctgov.is_study(item)]
    if bad:
        raise ParseError(f"item {bad[0]} of the list is not a ClinicalTrials.gov study")
    return items


def check_study(study: dict[str, Any]) -> str:
    """The study's NCT id, checked cheaply before it is normalized."""
    return ctgov.nct_id_of(study)


def normalize_study(study: dict[str, Any]) -> TrialRecord:
    return ctgov.normalize_study(study)


def page_format(text: str) -> str:
    for name, (looks_like, _) in PAGE_FORMATS.items():
        if looks_like(text):
            return name
    raise ParseError(
        "not a trial page we recognise (expected ClinicalTrials.gov JSON, or the text of a "
        "ClinicalTrials.gov, MedPath or registry-mirror study page)"
    )


def normalize_page(text: str) -> TrialRecord:
    _, parse = PAGE_FORMATS[page_format(text)]
    try:
        return parse(text)
    except ParseError:
        raise
    except (ValueError, IndexError, KeyError, AttributeError) as exc:
        raise ParseError(f"the page could not be read ({exc.__class__.__name__}: {exc})") from exc
