"""ClinicalTrials.gov API v2 client (httpx; the HTTP client, clock and sleep are injected).

Requests it makes:

* ``GET /version``: the registry's ``dataTimestamp``; when it has not moved
  since the last cycle, nothing else needs asking.
* ``GET /studies?filter.ids=...&fields=NCTId,LastUpdatePostDate&pageSize=1000``:
  the cheap *probe*, up to 1,000 trials a request.
* ``GET /studies?filter.ids=...&pageSize=...``: full records, batched.
* ``GET /studies?query.cond=...``: saved searches (query watches).
* ``GET {root}/api/int/studies/{nct}/history`` and ``.../history/{n}``: the
  website's version history (undocumented; its shape is checked and it fails
  closed).

Politeness: a token bucket (default 1 request/s), retries with jittered
exponential backoff on 429, 5xx, timeouts and connection errors, honouring
``Retry-After``; a ``User-Agent`` that names registry-monitor.  A response that
is not complete, valid JSON of the expected shape is never returned: it is
retried, then raised as :class:`~monitor.errors.SourceError`.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx

from monitor import __version__
from monitor.errors import NotFoundError, SourceError, UsageError
from monitor.normalize.identity import NCT_ID

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://clinicaltrials.gov/api/v2"
BASE_URL_ENV = "MONITOR_CTGOV_URL"
USER_AGENT = f"registry-monitor/{__version__} (+https://github.com/registry-monitor/registry-monitor)"
PAGE_LIMIT = 1000  # the API's largest pageSize
PROBE_FIELDS = "NCTId,LastUpdatePostDate,OverallStatus"
SEARCH_FIELDS = "NCTId,BriefTitle,OverallStatus,LastUpdatePostDate"
RETRY_STATUSES = {429, 500, 502, 503, 504}
_QUERY_KEYS = re.compile(r"^(query\.[a-z]+|filter\.[a-zA-Z]+|postFilter\.[a-zA-Z]+|aggFilters|geoDecay|sort)$")


@dataclass(frozen=True)
class Politeness:
    """How hard we may lean on the registry."""

    rate: float = 1.0  # requests per second, on average
    burst: int = 1
    retries: int = 5
    backoff: float = 2.0  # seconds before the first retry; doubles each time
    max_backoff: float = 120.0
    timeout: float = 60.0


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; ``take`` waits."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self.rate, self.burst, self.clock, self.sleep = rate, max(1, burst), clock, sleep
        self.tokens = float(self.burst)
        self.stamp = clock()

    def take(self) -> None:
        if self.rate <= 0:
            return
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            wait = (1 - self.tokens) / self.rate
            self.sleep(wait)
            self.stamp = self.clock()
            self.tokens = 0.0
        else:
            self.tokens -= 1


@dataclass(frozen=True)
class SearchHit:
    nct_id: str
    title: str | None
    status: str | None
    last_update_posted: str | None


def base_url(configured: str | None = None) -> str:
    """``MONITOR_CTGOV_URL`` over the configured URL over the default."""
    return (os.environ.get(BASE_URL_ENV) or configured or DEFAULT_BASE_URL).rstrip("/")


def parse_query(query: str) -> list[tuple[str, str]]:
    """A saved search as the API's parameters: ``query.cond=lupus&query.intr=CAR-NK``."""
    params = parse_qsl(query.strip().lstrip("?"), keep_blank_values=False)
    if not params:
        raise UsageError(f"{query!r} is not a search: write it as API parameters, e.g. query.cond=lupus")
    bad = [key for key, _ in params if not _QUERY_KEYS.match(key)]
    if bad:
        raise UsageError(
            f"{query!r}: {bad[0]} is not a search parameter (use query.*, filter.*, postFilter.*, aggFilters)"
        )
    return params


def chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class CtgovClient:
    def __init__(
        self,
        url: str | None = None,
        http: httpx.Client | None = None,
        politeness: Politeness | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.url = base_url(url)
        self.politeness = politeness or Politeness()
        self.http = http or httpx.Client(
            timeout=self.politeness.timeout, headers={"User-Agent": USER_AGENT, "Accept": "application/json"}
        )
        self.http.headers.setdefault("User-Agent", USER_AGENT)
        self.bucket = TokenBucket(self.politeness.rate, self.politeness.burst, clock, sleep)
        self.sleep = sleep
        self.jitter = jitter
        self.requests = 0  # made, retries included

    @property
    def internal_url(self) -> str:
        """The website's internal API beside v2 (``.../api/int``)."""
        return re.sub(r"/v2$", "/int", self.url)

    def close(self) -> None:
        self.http.close()

    # --- the endpoints --------------------------------------------------------------

    def data_timestamp(self) -> str:
        data = self._get_json(f"{self.url}/version")
        stamp = data.get("dataTimestamp") if isinstance(data, dict) else None
        if not isinstance(stamp, str):
            raise SourceError(f"{self.url}/version did not say its dataTimestamp")
        return stamp

    def study(self, nct_id: str) -> dict[str, Any]:
        data = self._get_json(f"{self.url}/studies/{nct_id}", not_found=f"{nct_id} is not on ClinicalTrials.gov")
        _check_study(data, nct_id, f"{self.url}/studies/{nct_id}")
        return data

    def probe(
        self, nct_ids: Iterable[str], on_bad_id: Callable[[str, str], None] | None = None
    ) -> dict[str, tuple[str, str | None]]:
        """NCT id -> (last-update date, overall status), for every id the registry
        knows.  The status catches what comes without a new date (a stale record
        turned UNKNOWN)."""
        found: dict[str, tuple[str, str | None]] = {}
        for study in self._by_ids(list(nct_ids), PAGE_LIMIT, {"fields": PROBE_FIELDS}, on_bad_id):
            protocol = study.get("protocolSection") or {}
            nct = (protocol.get("identificationModule") or {}).get("nctId")
            status = protocol.get("statusModule") or {}
            date = (status.get("lastUpdatePostDateStruct") or {}).get("date")
            if isinstance(nct, str) and isinstance(date, str):
                found[nct] = (date, status.get("overallStatus"))
        return found

    def studies(
        self, nct_ids: Iterable[str], batch: int = PAGE_LIMIT, on_bad_id: Callable[[str, str], None] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Full records, ``batch`` ids a request; each one checked whole."""
        for study in self._by_ids(list(nct_ids), batch, {}, on_bad_id):
            _check_study(study, None, f"{self.url}/studies")
            yield study

    def search(self, query: str) -> list[SearchHit]:
        params = dict(parse_query(query))
        params.update({"fields": SEARCH_FIELDS, "pageSize": str(PAGE_LIMIT)})
        hits: list[SearchHit] = []
        for study in self._pages(f"{self.url}/studies", params):
            protocol = study.get("protocolSection") or {}
            nct = (protocol.get("identificationModule") or {}).get("nctId")
            if not isinstance(nct, str):
                raise SourceError(f"{self.url}/studies answered a study without an NCT id")
            status = protocol.get("statusModule") or {}
            hits.append(
                SearchHit(
                    nct,
                    (protocol.get("identificationModule") or {}).get("briefTitle"),
                    status.get("overallStatus"),
                    (status.get("lastUpdatePostDateStruct") or {}).get("date"),
                )
            )
        return hits

    def history(self, nct_id: str) -> list[dict[str, Any]]:
        """The registry's list of past versions, oldest first: ``{"version", "date"}``."""
        url = f"{self.internal_url}/studies/{nct_id}/history"
        data = self._get_json(url, not_found=f"{nct_id} has no version history on ClinicalTrials.gov")
        changes = data.get("changes") if isinstance(data, dict) else None
        if not isinstance(changes, list) or not all(
            isinstance(c, dict)
            and isinstance(c.get("version"), int)
            and isinstance(c.get("date"), str)
            and re.fullmatch(r"\d{4}-\d{2}-\d{2}", c["date"])
            for c in changes
        ):
            raise SourceError(f"{url} changed shape (expected {{'changes': [{{'version': int, 'date': ...}}]}})")
        return sorted(changes, key=lambda c: c["version"])

    def history_version(self, nct_id: str, version: int) -> dict[str, Any]:
        url = f"{self.internal_url}/studies/{nct_id}/history/{version}"
        data = self._get_json(url)
        study = data.get("study") if isinstance(data, dict) else None
        if not isinstance(study, dict):
            raise SourceError(f"{url} changed shape (expected {{'study': {{...}}}})")
        _check_study(study, nct_id, url)
        return study

    # --- batching and pages ------------------------------------------------------------

    def _by_ids(
        self, ids: list[str], batch: int, extra: dict[str, str], on_bad_id: Callable[[str, str], None] | None
    ) -> Iterator[dict[str, Any]]:
        """Studies for ``ids`` through ``filter.ids``; a batch the API refuses
        (400, as it does for a whole batch with one bad id) is split in halves
        until the bad ids stand alone; each is reported once and skipped."""
        good = []
        for nct in dict.fromkeys(ids):
            if NCT_ID.fullmatch(nct):
                good.append(nct)
            elif on_bad_id:
                on_bad_id(nct, "not an NCT id (NCT followed by 8 digits)")
        for part in chunks(good, batch):
            yield from self._batch(part, extra, on_bad_id)

    def _batch(self, ids: list[str], extra: dict[str, str], on_bad_id) -> Iterator[dict[str, Any]]:
        params = {"filter.ids": ",".join(ids), "pageSize": str(min(PAGE_LIMIT, max(len(ids), 1))), **extra}
        try:
            yield from list(self._pages(f"{self.url}/studies", params))
        except _Refused as refused:
            if len(ids) == 1:
                if on_bad_id:
                    on_bad_id(ids[0], f"refused by ClinicalTrials.gov ({refused})")
                return
            half = len(ids) // 2
            yield from self._batch(ids[:half], extra, on_bad_id)
            yield from self._batch(ids[half:], extra, on_bad_id)

    def _pages(self, url: str, params: dict[str, str]) -> Iterator[dict[str, Any]]:
        token = None
        while True:
            page = self._get_json(url, {**params, **({"pageToken": token} if token else {})}, refuse_400=True)
            studies = page.get("studies") if isinstance(page, dict) else None
            if not isinstance(studies, list) or not all(isinstance(s, dict) for s in studies):
                raise SourceError(f"{url} answered a page without a list of studies")
            yield from studies
            token = page.get("nextPageToken")
            if not token:
                return

    # --- one request, politely -----------------------------------------------------------

    def _get_json(
        self, url: str, params: dict[str, str] | None = None, not_found: str | None = None, refuse_400: bool = False
    ) -> Any:
        last_problem = ""
        last_retry_after: float | None = None
        for attempt in range(self.politeness.retries + 1):
            if attempt:
                wait = self._backoff(attempt, last_retry_after)
                log.info(
                    "%s from the registry, waiting %.0f s (retry %d of %d)",
                    last_problem,
                    wait,
                    attempt,
                    self.politeness.retries,
                )
                self.sleep(wait)
            last_retry_after = None
            self.bucket.take()
            self.requests += 1
            try:
                response = self.http.get(url, params=params)
            except httpx.TimeoutException:
                last_problem = "timed out"
                continue
            except httpx.TransportError as exc:
                last_problem = f"connection failed ({exc.__class__.__name__})"
                continue
            if response.status_code == 404 and not_found:
                raise NotFoundError(not_found)
            if response.status_code == 400 and refuse_400:
                raise _Refused(_message(response))
            if response.status_code in RETRY_STATUSES:
                last_problem = f"HTTP {response.status_code}"
                last_retry_after = _retry_after(response.headers.get("Retry-After"))
                continue
            if response.status_code != 200:
                raise SourceError(
                    f"{response.request.url} answered HTTP {response.status_code}: {_short(response.text)}"
                )
            try:
                return json.loads(response.content)
            except ValueError:
                last_problem = f"an incomplete or non-JSON body ({len(response.content)} bytes)"
                continue
        tries = self.politeness.retries + 1
        raise SourceError(
            f"ClinicalTrials.gov did not answer {url} after {tries} {'try' if tries == 1 else 'tries'}: {last_problem}"
        )

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        delay = min(self.politeness.max_backoff, self.politeness.backoff * 2 ** (attempt - 1))
        delay = delay * (0.5 + 0.5 * self.jitter())
        return max(delay, min(retry_after, self.politeness.max_backoff * 5)) if retry_after is not None else delay


class _Refused(Exception):
    """The API refused a request as bad (HTTP 400)."""


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _check_study(study: Any, nct_id: str | None, url: str) -> None:
    protocol = study.get("protocolSection") if isinstance(study, dict) else None
    found = ((protocol or {}).get("identificationModule") or {}).get("nctId") if isinstance(protocol, dict) else None
    if not isinstance(found, str) or not NCT_ID.fullmatch(found) or (nct_id and found != nct_id):
        raise SourceError(f"{url} answered something that is not the study {nct_id or ''}".rstrip())


def _message(response: httpx.Response) -> str:
    """The API's own error message, else the start of the body."""
    try:
        message = response.json().get("message")
    except (ValueError, AttributeError):
        message = None
    return message if isinstance(message, str) else _short(response.text)


def _short(text: str) -> str:
    return " ".join(text.split())[:200]
