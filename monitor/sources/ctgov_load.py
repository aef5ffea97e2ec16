"""The whole registry in full, page by page: the first load of ``monitor watch add --all`` (and of
a watch group with ``all: true``), bounded and forgiving of one bad page or one bad record.

* **Bounded.** The first page of a pass asks ``countTotal=true``; the pass is refused (a
  :class:`~monitor.errors.SourceError` naming the request) once it has read more studies than
  the registry's ``totalCount`` plus a margin (5%, at least one page), or than
  ``limits.max_registry_studies``, whichever is smaller (an empty page counts as one study, so
  a registry of endless empty pages ends too).  A ``nextPageToken`` seen twice is refused as well.
  Nothing of the refused page is yielded: what was stored stays, with the page to resume at.
* **A study whose NCT id cannot be read** (missing, not a string, not ``NCT`` and 8 digits, or
  not an object at all) is skipped and named in the page's ``unread``, keyed
  ``registry page N studies[I]``, with the request and the JSON path.  One of another wrong
  shape whose id can be read is named in ``refused`` under that id.
* **A page that is not JSON** (an HTML error page, a truncated body) is asked again with half
  the page size, down to one study a page; once past the stretch that failed, the full page size
  again.  One study that is still not JSON on its own ends the pass there, naming the request
  (the next run resumes at that page).
* **Decoded by the worker pool** (:mod:`monitor.workers`), when the load runs in one: every
  page after the first is cut into pieces that the workers decode, check and normalize; its
  ``nextPageToken`` is read here.  A page the workers do not read cleanly (not cut, a piece that
  does not decode within the limits, a study whose id cannot be read) is read here instead, with
  exactly the errors above.
* **A stale resume token** (HTTP 400 for a stored ``pageToken``) restarts the pass from its first
  page, once, after ``restarted()``, with one log line; what was stored already is recognised by its
  raw payload and not stored twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, NonNegativeInt, ValidationError

from monitor.errors import ParseError, SourceError
from monitor.normalize import jsontext
from monitor.normalize.schema import check_identity, check_study
from monitor.normalize.violations import violation
from monitor.sources.ctgov import CtgovClient, _Refused
from monitor.sources.ctgov_answers import nct_of, payload, updated_of
from monitor.sources.ctgov_changes import Token
from monitor.sources.files import Payload

log = logging.getLogger(__name__)

MARGIN = 0.05  # studies past totalCount a pass may read (the registry grows while it is read)
FULL_PAGE = 200  # full records a page: about 4 MB a page, well inside limits.max_body_bytes

PLACE = "registry page "  # + "N studies[I]": the key of a study whose id cannot be read


class NotJSON(Exception):
    """A page whose body is not JSON at all: asked again with half the page size."""


class StaleToken(SourceError):
    """The registry refused a stored resume token (HTTP 400): it expired, or the listing changed."""


class StudiesPage(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow", frozen=True)

    studies: list[Any]  # each one checked on its own: one bad record is its own problem
    nextPageToken: Token | None = None
    totalCount: NonNegativeInt | None = None


@dataclass(frozen=True)
class Page:
    """One page of full studies, and the token that asks for the page after it (None: the last)."""

    studies: list[tuple[str, str | None, Payload]]  # each study's (NCT id, last-update date, payload)
    next_token: str | None
    refused: dict[str, str] = field(default_factory=dict)  # a study of the wrong shape: its id -> why
    unread: dict[str, str] = field(default_factory=dict)  # "registry page N studies[I]" -> why (no id to read)
    total: int | None = None  # the registry's totalCount, said with the first page of a pass


def registry_pages(
    client: CtgovClient,
    token: str | None = None,
    page_size: int = FULL_PAGE,
    restarted: Callable[[], None] = lambda: None,
    done: tuple[int, int] = (0, 0),
    total: int | None = None,
) -> Iterator[Page]:
    """Every study on the registry in full, from ``token`` on (None: the first page); ``done``:
    the pages and studies the pass read before ``token``; ``total``: the ``totalCount`` its first
    page said (None: not known, only ``limits.max_registry_studies`` bounds it)."""
    try:
        yield from _Pass(client, page_size, done, total).pages(token)
    except StaleToken as exc:
        log.warning("%s; the listing starts again from its first page", exc.message)
        restarted()
        yield from _Pass(client, page_size, (0, 0), None).pages(None)


class _Pass:
    """One pass over the registry's pages, counting what it read against its bound."""

    def __init__(self, client: CtgovClient, page_size: int, done: tuple[int, int], total: int | None) -> None:
        self.client, self.full = client, page_size
        self.pages_read, self.read = done
        self.total = total
        self.url = f"{client.url}/studies"

    def bound(self) -> tuple[int, str]:
        """The most studies this pass may read, and what sets it."""
        cap = self.client.limits.max_registry_studies
        if self.total is None:
            return cap, "limits.max_registry_studies"
        margin = self.total + max(int(self.total * MARGIN), self.full)
        if margin < cap:
            return margin, f"the registry's totalCount of {self.total:,} and a margin of 5%"
        return cap, "limits.max_registry_studies"

    def pages(self, token: str | None) -> Iterator[Page]:
        resumed, first = token is not None, token is None
        seen: set[str] = set()
        size, left = self.full, 0  # left: studies still to read at a halved size before the full size again
        while True:
            params = {"pageSize": str(size), **({"pageToken": token} if token else {})}
            if first:
                params["countTotal"] = "true"
            request = str(httpx.URL(self.url, params=params))
            try:
                page = self._ask(params, refuse_400=resumed, request=request)
            except NotJSON as exc:
                if size == 1:
                    raise SourceError(
                        f"{request} (page {self.pages_read + 1:,}): {exc}, even asked for one study; "
                        "the load stops here (the next run resumes at this page)"
                    ) from None
                log.warning("%s: %s; asked again with %d studies a page", request, exc, size // 2)
                size, left = size // 2, max(left, size)
                continue
            resumed = False
            if first and page.totalCount is not None:
                self.total = page.totalCount
            studies = page.studies
            self.read += max(len(studies), 1)
            limit, why = self.bound()
            if self.read > limit:
                raise SourceError(
                    f"{request} (page {self.pages_read + 1:,}): the registry answered more than {limit:,} studies "
                    f"({why}); its paging does not end: refused (what was stored stays)"
                )
            self.pages_read += 1
            yield self._checked(studies, page.nextPageToken, request, page.totalCount if first else None)
            token, first = page.nextPageToken, False
            if token is None:
                return
            if token in seen:
                raise SourceError(f"{self.url} answered the nextPageToken {token[:60]!r} twice: its paging loops")
            seen.add(token)
            left -= len(studies)
            if left <= 0:
                size = self.full

    def _ask(self, params: dict[str, str], refuse_400: bool, request: str) -> StudiesPage:
        """One page, checked against its declared shape (a 400 for a resume token: :class:`StaleToken`).
        A page after the first is decoded by the worker pool when the load runs in one."""
        pool = self.client.pages
        pooled = "countTotal" not in params and pool is not None and pool.decoding(int(params["pageSize"]))
        try:
            data = self.client._get(self.url, params, None, refuse_400, _response if pooled else self._read)
        except _Refused as exc:
            raise StaleToken(f"{self.url} refused the stored page token {params['pageToken'][:60]!r} ({exc})") from None
        if pooled:
            pieces = pool.decode_page(data.body, self.url, (), self.client.limits, registry=True)
            studies = pieces.studies() if pieces is not None else None
            if studies is not None:  # each one checked by a worker; the token read from the page's end
                return StudiesPage.model_construct(studies=studies, nextPageToken=pieces.token)
            data = self._read(data)  # not a page the workers read cleanly: read here, with its exact error
        try:
            return StudiesPage.model_validate(data, strict=True)
        except ValidationError as exc:
            raise ParseError(f"{request} (every study): {violation(exc, StudiesPage)}; nothing of it stored") from None

    def _checked(self, studies: list[Any], token: str | None, request: str, total: int | None) -> Page:
        good, refused, unread = [], {}, {}
        for index, study in enumerate(studies):
            if isinstance(study, Payload):  # decoded and checked by a worker (monitor.prepare.Decoded)
                if study.refused is not None:
                    refused[study.key] = study.refused
                else:
                    good.append((study.key, study.updated, study))
                continue
            try:
                check_study(study, f"{self.url}: studies[{index}].")
            except ParseError as exc:
                if (key := nct_of(study)) is not None:  # that trial's problem, not the whole load's
                    refused[key] = exc.message
                else:  # whose it is cannot be told: the place in the pass names it, with the path to its id
                    unread[f"{PLACE}{self.pages_read} studies[{index}]"] = _unread(study, index, request)
                continue
            good.append((nct_of(study), updated_of(study), payload(study, self.url)))
        return Page(good, token, refused, unread, total)

    def _read(self, response, attempt: int = 0) -> Any:
        """A page's body decoded; one that is not JSON at all raises :class:`NotJSON` (no retry at the
        same size: the page is asked again with half as many studies)."""
        return _decoded(response, self.client.limits)


def _response(response, attempt: int = 0) -> Any:
    """A page's response as it came, for the worker pool to decode."""
    return response


def _unread(study: Any, index: int, request: str) -> str:
    """Why a study's NCT id cannot be read: the first part of its path of the wrong type."""
    try:
        check_identity(study, f"studies[{index}].")
    except ParseError as exc:
        return f"{request}: {exc.message}; not stored"
    return f"{request}: studies[{index}].protocolSection.identificationModule.nctId: not an NCT id; not stored"


def _decoded(response, limits) -> Any:
    try:
        return jsontext.decode(response.body.decode("utf-8"), limits)
    except UnicodeDecodeError as exc:
        raise NotJSON(f"an answer that is not UTF-8 (byte {exc.start})") from None
    except jsontext.BrokenJSON:
        raise NotJSON(f"an incomplete or non-JSON body ({len(response.body):,} bytes)") from None
    except ParseError as exc:  # JSON we refuse (too deep, NaN, NUL...): never asked again
        raise SourceError(f"{response.url}: {exc.message}") from None
