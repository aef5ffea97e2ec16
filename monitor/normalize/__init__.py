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
from monitor.normalize import ctgov, page_ctgov, page_medpath, page_mirror, schema

PAGE_FORMATS: dict[str, tuple[Callable[[str], bool], Callable[[str], TrialRecord]]] = {
    page_mirror.SOURCE: (page_mirror.looks_like, page_mirror.parse),
    page_ctgov.SOURCE: (page_ctgov.looks_like, page_ctgov.parse),
    page_medpath.SOURCE: (page_medpath.looks_like, page_medpath.parse),
}

FORMATS = {ctgov.SOURCE, *PAGE_FORMATS}


def studies_in(payload: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """The studies in decoded JSON: one study, a ``/studies`` page
    (``{"studies": [...]}``) or a website export (a bare array), each with the
    JSON path it is at (``""``, ``studies[3].``, ``[3].``)."""
    if ctgov.is_study(payload):
        return [payload], [""]
    if isinstance(payload, dict) and isinstance(payload.get("studies"), list):
        items, prefix = payload["studies"], "studies"
    elif isinstance(payload, list):
        items, prefix = payload, ""
    else:
        raise ParseError("JSON is not a ClinicalTrials.gov study, /studies page or export array")
    if not items:
        raise ParseError("the list holds no study")
    bad = [i for i, item in enumerate(items) if not ctgov.is_study(item)]
    if bad:
        raise ParseError(f"{prefix}[{bad[0]}]: not a ClinicalTrials.gov study (an object with a protocolSection)")
    return items, [f"{prefix}[{i}]." for i in range(len(items))]


def check_study(study: Any, at: str = "") -> str:
    """The study's NCT id, once every field the normalizer reads has its declared
    type (:mod:`monitor.normalize.schema`); ``at`` prefixes the JSON path of an error."""
    schema.check_study(study, at)
    return ctgov.nct_id_of(study)


def normalize_study(study: dict[str, Any]) -> TrialRecord:
    """A checked study (see :func:`check_study`), normalized."""
    schema.check_study(study)
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
