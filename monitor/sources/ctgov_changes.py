"""What changed on ClinicalTrials.gov since a watermark: the change query, bounded and checked.

The API v2 ``/studies`` endpoint takes an Essie expression in ``filter.advanced``; a date
range over a search area reads ``AREA[LastUpdatePostDate]RANGE[2026-01-01,MAX]`` (``MIN`` and
``MAX`` stand for open ends; the dates are inclusive, ``YYYY-MM-DD``).  It combines (AND) with
the ``query.*`` parameters of a saved search, ``fields`` narrows each study to what we read,
``pageSize`` goes up to 1,000 and ``nextPageToken``/``pageToken`` page through the rest
(checked with the search tool against the API v2 parameter reference, API version 2.0.5).

Its reads, each bounded by ``limits.max_pages`` and refusing a page token seen twice:

* :func:`changed_since`: NCT id -> (last-update date, overall status) of every study updated
  on or after a date, optionally within a saved search: the same answer as the id probe, for
  1 + changed/1,000 requests instead of watched/1,000.
* :func:`listing`: every study's id, last-update date and status, 1,000 a page (the weekly
  reconciliation of the whole registry: ids and dates, never whole records).

(Every study in full, for the first load of ``watch add --all``: :mod:`monitor.sources.ctgov_load`.)

Every page is decoded by :func:`monitor.normalize.jsontext.decode` (through the client) and
checked against a declared shape here (strict: nothing coerced); a page of the wrong shape is a
:class:`~monitor.errors.ParseError` naming the request and the JSON path, and nothing of it is
yielded.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from monitor.errors import ParseError, SourceError
from monitor.normalize.schema import NctId, RegistryDate
from monitor.normalize.violations import violation
from monitor.sources.ctgov import PAGE_LIMIT, PROBE_FIELDS, SEARCH_FIELDS, CtgovClient
from monitor.sources.ctgov_answers import chunks
from monitor.sources.queries import parse_query

log = logging.getLogger(__name__)

OVERLAP_DAYS = 1  # the watermark day itself is asked again: its updates can be published late


def since_expression(day: str) -> str:
    """``filter.advanced`` for studies last updated on or after ``day`` (``YYYY-MM-DD``)."""
    date.fromisoformat(day)  # a watermark we wrote ourselves; a bad one is a bug, not input
    return f"AREA[LastUpdatePostDate]RANGE[{day},MAX]"


def ask_from(watermark: str) -> str:
    """The first day to ask for: the watermark day itself (the range is inclusive), so a day
    whose updates were published late is asked once more; what comes twice is deduplicated."""
    return (date.fromisoformat(watermark[:10]) - timedelta(days=OVERLAP_DAYS - 1)).isoformat()


# --- the declared shape of a change-query page --------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow", frozen=True)


class _Identification(_Strict):
    nctId: NctId
    briefTitle: str | None = None


class _UpdateDate(_Strict):
    date: RegistryDate


class _Status(_Strict):
    lastUpdatePostDateStruct: _UpdateDate
    overallStatus: str | None = None


class _Protocol(_Strict):
    identificationModule: _Identification
    statusModule: _Status


class _Changed(_Strict):
    protocolSection: _Protocol


Token = Annotated[str, StringConstraints(min_length=1)]  # the last page has none; an empty one is refused


class ChangesPage(_Strict):
    studies: list[_Changed]
    nextPageToken: Token | None = None


Changed = dict[str, tuple[str, str | None]]  # NCT id -> (last-update date, overall status)


# --- the reads ------------------------------------------------------------------------------


def changed_since(client: CtgovClient, day: str, query: str | None = None) -> Changed:
    """NCT id -> (last-update date, status) of every study updated on or after ``day``,
    within the saved search ``query`` when given (its own ``query.*``/``filter.*`` parameters)."""
    found: Changed = {}
    for page in change_pages(client, day, query):
        found.update((nct, (d, status)) for nct, (d, status, _) in page.items())
    return found


def change_pages(
    client: CtgovClient, day: str | None, query: str | None = None
) -> Iterator[dict[str, tuple[str, str | None, str | None]]]:
    """Page by page, NCT id -> (last-update date, status, brief title) of every study updated
    on or after ``day`` (every study when ``day`` is None), within the saved search ``query``
    when given: 1,000 studies a page, only the fields we read."""
    params = dict(parse_query(query)) if query else {}
    if day is not None and "filter.advanced" in params:  # AND it with the search's own advanced filter
        params["filter.advanced"] = f"({params['filter.advanced']}) AND {since_expression(day)}"
    elif day is not None:
        params["filter.advanced"] = since_expression(day)
    params.update({"fields": SEARCH_FIELDS if query else PROBE_FIELDS, "pageSize": str(PAGE_LIMIT)})
    what = f"studies updated since {day}" if day else "every study's date and status"
    for page, _ in _paged(client, params, ChangesPage, what):
        yield {
            s.protocolSection.identificationModule.nctId: (
                s.protocolSection.statusModule.lastUpdatePostDateStruct.date,
                s.protocolSection.statusModule.overallStatus,
                s.protocolSection.identificationModule.briefTitle,
            )
            for s in page.studies
        }


def still_within(client: CtgovClient, query: str, ids: list[str]) -> set[str]:
    """Which of ``ids`` the saved search ``query`` answers now (``filter.ids`` with its own
    parameters, 1,000 ids a request): a member updated since the watermark that its change
    query did not answer is asked once more before it is said to have left."""
    params = dict(parse_query(query))
    found: set[str] = set()
    for part in chunks(ids, PAGE_LIMIT):
        asked = {**params, "filter.ids": ",".join(part), "fields": PROBE_FIELDS}
        asked["pageSize"] = str(PAGE_LIMIT)
        for page, _ in _paged(client, asked, ChangesPage, f"members of {query!r}"):
            found.update(s.protocolSection.identificationModule.nctId for s in page.studies)
    return found


def listing(client: CtgovClient) -> Iterator[Changed]:
    """Every study's (last-update date, status), page by page, 1,000 a page: the reconciliation."""
    for page in change_pages(client, None):
        yield {nct: (d, status) for nct, (d, status, _) in page.items()}


def _paged(
    client: CtgovClient, params: dict[str, str], shape: type[BaseModel], what: str
) -> Iterator[tuple[Any, str | None]]:
    """Each page checked against ``shape``, with its ``nextPageToken``; at most
    ``limits.max_pages`` pages, and a token seen twice is a registry whose paging loops."""
    url = f"{client.url}/studies"
    seen: set[str] = set()
    for _ in range(client.limits.max_pages):
        data = client._get_json(url, params)
        try:
            page = shape.model_validate(data, strict=True)
        except ValidationError as exc:
            raise ParseError(f"{url} ({what}): {violation(exc, shape)}; nothing stored") from None
        token = page.nextPageToken
        yield page, token
        if not token:
            return
        if token in seen:
            raise SourceError(f"{url} answered the nextPageToken {token[:60]!r} twice: its paging loops")
        seen.add(token)
        params = {**params, "pageToken": token}
    raise SourceError(f"{url} still had a nextPageToken after {client.limits.max_pages:,} pages (limits.max_pages)")
