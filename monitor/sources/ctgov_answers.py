"""Reading ClinicalTrials.gov's answers: the shapes the client checks and the
small pieces of them it reads (pure functions; no I/O)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from monitor.errors import ParseError, SourceError
from monitor.normalize.identity import NCT_ID
from monitor.normalize.schema import check_identity
from monitor.sources.files import Payload


@dataclass(frozen=True)
class SearchHit:
    """One trial in a saved search's answer."""

    nct_id: str
    title: str | None
    status: str | None
    last_update_posted: str | None


def chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def check_study(study: Any, nct_id: str | None, url: str) -> None:
    """Refuse an answer that is not the study ``nct_id``: a part of the path to its NCT id
    of the wrong type is named, with the URL, as :func:`check_identity` says it."""
    try:
        check_identity(study)
    except ParseError as exc:
        raise SourceError(f"{url}: {exc.message}") from None
    if study["protocolSection"]["identificationModule"]["nctId"] != nct_id and nct_id:
        raise SourceError(f"{url} answered something that is not the study {nct_id or ''}".rstrip())


def dig(data: Any, *path: str) -> Any:
    """``data[path[0]][path[1]]...``, or None where the shape is not a chain of objects."""
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def nct_of(study: Any) -> str | None:
    nct = dig(study, "protocolSection", "identificationModule", "nctId")
    return nct if isinstance(nct, str) and NCT_ID.fullmatch(nct) else None


def updated_of(study: dict[str, Any]) -> str | None:
    """A checked study's last-update date (None: it has none)."""
    status = study["protocolSection"].get("statusModule") or {}
    return (status.get("lastUpdatePostDateStruct") or {}).get("date")


def names(ids: list[str]) -> str:
    return ", ".join(ids) if len(ids) <= 3 else f"{ids[0]} and {len(ids) - 1} other trials"


def message(response) -> str:
    """The API's own error message, else the start of the body."""
    try:
        message = json.loads(response.body).get("message")
    except (ValueError, AttributeError, RecursionError):
        message = None
    return message if isinstance(message, str) else short(response.text)


def short(text: str) -> str:
    return " ".join(text.split())[:200]


def payload(study: dict[str, Any], origin: str) -> Payload:
    """A study as received, kept as the text that is stored, hashed and archived."""
    return Payload(origin, json.dumps(study, ensure_ascii=False), study)
