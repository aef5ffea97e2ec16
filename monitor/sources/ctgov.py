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
``Retry-After`` up to ``limits.max_retry_after_seconds`` (300 s by default); a
``User-Agent`` that names registry-monitor.  An incomplete or non-JSON answer is
retried, then raised as :class:`~monitor.errors.SourceError`; JSON that
:func:`monitor.normalize.jsontext.decode` refuses (NaN, NUL, too deep...) is not retried.

Bounds (:class:`~monitor.limits.Limits`): a deadline for each whole request (the
smaller of ``timeout`` and ``limits.request_deadline_seconds``); bodies capped as
received and decompressed (:mod:`monitor.sources.http`); paging stopped at a
``nextPageToken`` seen before or past ``limits.max_pages``.  Every wait and request
ends when ``should_stop`` turns true (raising :class:`~monitor.errors.Stopped`).

A record in a ``filter.ids`` answer of a trial not asked for is never yielded: it
is reported through ``on_bad_id``.  A record whose NCT id cannot be read (a part of
the path ``protocolSection.identificationModule.nctId`` of the wrong type) is refused
naming that JSON path, like JSON we refuse.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx

from monitor import __version__
from monitor.errors import NotFoundError, ParseError, SourceError, Stopped
from monitor.limits import DEFAULT_LIMITS, Limits
from monitor.normalize import jsontext
from monitor.normalize.identity import NCT_ID
from monitor.normalize.schema import check_identity
from monitor.sources.ctgov_answers import SearchHit, check_study, chunks, dig, message, names, nct_of, short
from monitor.sources.ctgov_pages import PAGE_LIMIT, PooledBatches, same
from monitor.sources.ctgov_pages import Broken as _Broken
from monitor.sources.ctgov_pages import Refused as _Refused
from monitor.sources.files import Payload
from monitor.sources.http import ACCEPT_ENCODING, Garbled, Hostile, TimedOut, bounded_get, sleep_unless_stopped, tls
from monitor.sources.politeness import Politeness, TokenBucket, retry_after_seconds
from monitor.sources.queries import parse_query

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://clinicaltrials.gov/api/v2"
USER_AGENT = f"registry-monitor/{__version__} (+https://github.com/registry-monitor/registry-monitor)"
PROBE_FIELDS = "NCTId,LastUpdatePostDate,OverallStatus"
SEARCH_FIELDS = "NCTId,BriefTitle,OverallStatus,LastUpdatePostDate"
RETRY_STATUSES = {429, 500, 502, 503, 504}


def base_url(configured: str | None = None) -> str:
    """The configured URL (the settings hold ``--ctgov-url``, ``MONITOR_CTGOV_URL`` and the
    file's value, applied by :func:`monitor.config.load_settings`), else the default."""
    return (configured or DEFAULT_BASE_URL).rstrip("/")


class CtgovClient(PooledBatches):
    def __init__(
        self,
        url: str | None = None,
        http: httpx.Client | None = None,
        politeness: Politeness | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
        jitter: Callable[[], float] = random.random,
        limits: Limits = DEFAULT_LIMITS,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.url = base_url(url)
        self.politeness = politeness or Politeness()
        self.limits = limits
        self.should_stop = should_stop
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}  # TLS: made once a process (0.1-0.4 s)
        self.http = http or httpx.Client(timeout=self.politeness.timeout, headers=headers, verify=tls())
        self.http.headers.setdefault("User-Agent", USER_AGENT)
        self.http.headers["Accept-Encoding"] = ACCEPT_ENCODING  # the encodings we can decompress within limits
        self.sleep = sleep if sleep is not None else (lambda s: sleep_unless_stopped(s, self.should_stop))
        self.bucket = TokenBucket(self.politeness.rate, self.politeness.burst, clock, self._wait)
        self.jitter = jitter
        self.requests = 0  # made, retries included
        self.pages: Any = None  # monitor.workers.Workers: full-record pages decoded in its pool (set by Live)
        self._base_checked = False

    @property
    def deadline(self) -> float:
        """Seconds one whole request may take, connect to last byte."""
        return min(self.politeness.timeout, self.limits.request_deadline_seconds)

    @property
    def internal_url(self) -> str:
        """The website's internal API beside v2 (``.../api/int``)."""
        return re.sub(r"/v2$", "/int", self.url)

    def close(self) -> None:
        self.http.close()

    # --- the endpoints --------------------------------------------------------------

    def data_timestamp(self) -> str:
        data = self._get_json(f"{self.url}/version")
        self._base_checked = True
        stamp = data.get("dataTimestamp") if isinstance(data, dict) else None
        if not isinstance(stamp, str):
            raise SourceError(f"{self.url}/version did not say its dataTimestamp")
        return stamp

    def study(self, nct_id: str) -> dict[str, Any]:
        data = self._get_json(f"{self.url}/studies/{nct_id}", not_found=f"{nct_id} is not on ClinicalTrials.gov")
        check_study(data, nct_id, f"{self.url}/studies/{nct_id}")
        return data

    def probe(
        self, nct_ids: Iterable[str], on_bad_id: Callable[[str, str], None] | None = None
    ) -> dict[str, tuple[str, str | None]]:
        """NCT id -> (last-update date, overall status), for every id the registry
        knows.  The status catches what comes without a new date (a stale record
        turned UNKNOWN)."""
        found: dict[str, tuple[str, str | None]] = {}
        for study in self._by_ids(list(nct_ids), PAGE_LIMIT, {"fields": PROBE_FIELDS}, on_bad_id):
            date = dig(study, "protocolSection", "statusModule", "lastUpdatePostDateStruct", "date")
            status = dig(study, "protocolSection", "statusModule", "overallStatus")
            if isinstance(date, str):
                found[nct_of(study)] = (date, status if isinstance(status, str) else None)
        return found

    def studies(
        self, nct_ids: Iterable[str], batch: int = PAGE_LIMIT, on_bad_id: Callable[[str, str], None] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Full records, ``batch`` ids a request, each the record of a trial asked for."""
        yield from self._by_ids(list(nct_ids), batch, {}, on_bad_id)

    def search(self, query: str) -> list[SearchHit]:
        params = dict(parse_query(query))
        params.update({"fields": SEARCH_FIELDS, "pageSize": str(PAGE_LIMIT)})
        hits: list[SearchHit] = []
        for study in self._pages(f"{self.url}/studies", params):
            nct = nct_of(study)
            if nct is None:
                raise SourceError(f"{self.url}/studies answered a study without an NCT id")
            texts = [
                dig(study, "protocolSection", "identificationModule", "briefTitle"),
                dig(study, "protocolSection", "statusModule", "overallStatus"),
                dig(study, "protocolSection", "statusModule", "lastUpdatePostDateStruct", "date"),
            ]
            hits.append(SearchHit(nct, *(t if isinstance(t, str) else None for t in texts)))
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
        check_study(study, nct_id, url)
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
        if not extra and self.pages is not None and self.pages.decoding(len(good)):
            yield from self._by_ids_pooled(good, batch, on_bad_id)
            return
        for part in chunks(good, batch):
            yield from self._batch(part, extra, on_bad_id)

    def _batch(self, ids: list[str], extra: dict[str, str], on_bad_id) -> Iterator[dict[str, Any]]:
        params = {"filter.ids": ",".join(ids), "pageSize": str(min(PAGE_LIMIT, max(len(ids), 1))), **extra}
        try:
            answered = list(self._pages(f"{self.url}/studies", params))
        except (_Refused, Hostile) as refused:  # the bad record(s) are found by halving the batch
            yield from self._halved(ids, refused, extra, on_bad_id)
            return
        yield from self._only_asked(ids, answered, on_bad_id)

    def _halved(self, ids: list[str], refused: Exception, extra: dict[str, str], on_bad_id) -> Iterator[Any]:
        """A batch the API refused: halved until the bad ids stand alone; each is reported once."""
        if len(ids) == 1:
            if on_bad_id:
                hostile = isinstance(refused, Hostile)
                on_bad_id(ids[0], f"{refused}; not stored" if hostile else f"refused by ClinicalTrials.gov ({refused})")
            return
        half = len(ids) // 2
        yield from self._batch(ids[:half], extra, on_bad_id)
        yield from self._batch(ids[half:], extra, on_bad_id)

    def _only_asked(self, ids: list[str], answered: list[dict], on_bad_id) -> Iterator[dict[str, Any]]:
        """The records of trials asked for, once each (identical copies collapse; copies that
        differ are a problem for that trial); anything else is reported, never yielded."""
        report = on_bad_id or (lambda nct, why: None)
        asked = set(ids)
        copies: dict[str, list[dict]] = {}
        strays: list[str] = []
        for study in answered:
            nct = study.key if isinstance(study, Payload) else nct_of(study)  # Payload: decoded by a worker
            if nct in asked:
                copies.setdefault(nct, []).append(study)
                continue
            strays.append(nct or "a record without an NCT id")
            if nct:
                report(nct, f"ClinicalTrials.gov answered this trial when asked for {names(ids)}; not stored")
        asked_copies = set(copies)
        answered.clear()  # the caller's page: each study is freed once it is yielded and stored
        for nct in list(copies):
            found = copies.pop(nct)
            if any(not same(copy, found[0]) for copy in found[1:]):
                report(
                    nct,
                    f"ClinicalTrials.gov answered {len(found)} different records of this trial at once; none stored",
                )
            else:
                yield found[0]
        for nct in ids if strays else ():
            if nct not in asked_copies:
                report(nct, f"ClinicalTrials.gov answered {strays[0]} instead of this trial; not stored")

    def _pages(self, url: str, params: dict[str, str], first: Any = None) -> Iterator[dict[str, Any]]:
        """Every page, following ``nextPageToken``; a token seen before, or more
        than ``limits.max_pages`` pages, is a registry that pages forever.  ``first``:
        the first page, decoded already."""
        token = None
        seen: set[str] = set()
        for number in range(self.limits.max_pages):
            page_params = {**params, **({"pageToken": token} if token else {})}
            if number == 0 and first is not None:
                page = first
            else:
                page = self._get_json(url, page_params, refuse_400=True)
            studies = page.get("studies") if isinstance(page, dict) else None
            if not isinstance(studies, list):  # each item is checked by its reader
                raise SourceError(f"{url} answered a page without a list of studies")
            for index, study in enumerate(studies):
                if nct_of(study) is None:  # whose it is cannot be told: the path to its NCT id is named
                    _check_identity(study, f"{httpx.URL(url, params=page_params)}: studies[{index}].")
            token = page.get("nextPageToken")
            if token is not None and (not isinstance(token, str) or not token):  # not a way to say "the last"
                raise SourceError(
                    f"{url} answered a page whose nextPageToken is {short(repr(token))} (expected a non-empty "
                    "string, or none on the last page); refused"
                )
            yield from studies
            if token is None:
                return
            if token in seen:
                raise SourceError(f"{url} answered the nextPageToken {short(token)!r} twice: its paging loops")
            seen.add(token)
        raise SourceError(
            f"{url} still had a nextPageToken after {self.limits.max_pages:,} pages (limits.max_pages); stopped"
        )

    # --- one request, politely -----------------------------------------------------------

    def _get_json(
        self, url: str, params: dict[str, str] | None = None, not_found: str | None = None, refuse_400: bool = False
    ) -> Any:
        return self._get(url, params, not_found, refuse_400, self._decode)

    def _get(self, url, params, not_found, refuse_400, read: Callable[[Any], Any], start=0, problem="") -> Any:
        """One request, politely: retried on what :data:`RETRY_STATUSES`, the transport and ``read``
        (which raises :class:`_Broken` for a body to ask again) call for; ``start``: tries made already."""
        last_problem = problem
        last_retry_after: float | None = None
        for attempt in range(start, self.politeness.retries + 1):
            if attempt:
                wait = self._backoff(attempt, last_retry_after)
                log.info(
                    "%s from the registry, waiting %.0f s (retry %d of %d)",
                    last_problem,
                    wait,
                    attempt,
                    self.politeness.retries,
                )
                self._wait(wait)
            last_retry_after = None
            self.bucket.take()
            self.requests += 1
            try:
                response = bounded_get(self.http, url, params, self.deadline, self.limits, self.should_stop)
            except (TimedOut, httpx.TimeoutException):
                last_problem = f"no complete answer within {self.deadline:g} s (the whole request's deadline)"
                continue
            except httpx.TransportError as exc:
                last_problem = f"connection failed ({exc.__class__.__name__})"
                continue
            except Garbled as exc:
                last_problem = str(exc)
                continue
            if response.status_code == 404:
                self._check_base_url(url)
                if not_found:
                    raise NotFoundError(not_found)
            if response.status_code == 400 and refuse_400:
                raise _Refused(message(response))
            if response.status_code in RETRY_STATUSES:
                last_problem = f"HTTP {response.status_code}"
                last_retry_after = retry_after_seconds(response.headers.get("Retry-After"))
                continue
            if response.status_code != 200:
                raise SourceError(f"{response.url} answered HTTP {response.status_code}: {short(response.text)}")
            try:
                return read(response, attempt)
            except _Broken as exc:
                last_problem = str(exc)
                continue
        tries = self.politeness.retries + 1
        raise SourceError(
            f"ClinicalTrials.gov did not answer {url} after {tries} {'try' if tries == 1 else 'tries'}: {last_problem}"
        )

    def _decode(self, response, attempt: int = 0) -> Any:
        try:
            return jsontext.decode(response.body.decode("utf-8"), self.limits)
        except UnicodeDecodeError as exc:
            raise Hostile(f"{response.url}: an answer that is not UTF-8 (byte {exc.start})") from exc
        except jsontext.BrokenJSON:
            raise _Broken(f"an incomplete or non-JSON body ({len(response.body)} bytes)") from None
        except ParseError as exc:  # JSON we refuse: too deep, NaN, huge numbers, NUL, lone surrogates
            raise Hostile(f"{response.url}: {exc.message}") from exc

    def _check_base_url(self, url: str) -> None:
        """A 404: is the base URL an API v2 at all?  Asked once, of ``/version``."""
        version = f"{self.url}/version"
        if url == version:
            raise SourceError(
                f"{self.url}: not a ClinicalTrials.gov API v2 base URL (GET /version answered 404); "
                "it usually ends in /api/v2"
            )
        if not self._base_checked:
            self.data_timestamp()

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        delay = min(self.politeness.max_backoff, self.politeness.backoff * 2 ** (attempt - 1))
        delay = delay * (0.5 + 0.5 * self.jitter())
        if retry_after is None:
            return delay
        cap = self.limits.max_retry_after_seconds
        if retry_after > cap:
            log.warning(
                "ClinicalTrials.gov asked us to wait %g s; waiting %g s (limits.max_retry_after_seconds)",
                retry_after,
                cap,
            )
        return max(delay, min(retry_after, cap))

    def _wait(self, seconds: float) -> None:
        if self.should_stop():
            raise Stopped("stopped before asking ClinicalTrials.gov again")
        self.sleep(seconds)


def _check_identity(study: Any, at: str) -> None:
    """A record of a page whose NCT id cannot be read is refused like JSON we refuse
    (:class:`Hostile`: in a batch, the bad record is found by halving it)."""
    try:
        check_identity(study, at)
    except ParseError as exc:
        raise Hostile(exc.message) from None
