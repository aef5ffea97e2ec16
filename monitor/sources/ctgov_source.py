"""``source: ctgov``: ClinicalTrials.gov as a :class:`~monitor.sources.base.Source`.

A thin plugin over :class:`monitor.sources.ctgov.CtgovClient` (which keeps every
bound and retry): its keys are NCT ids, its watermark the API's
``dataTimestamp``, its probe the ``LastUpdatePostDate`` of up to 1,000 ids a
request, its records the full studies, its history the website's version list.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from monitor.errors import UsageError
from monitor.normalize.identity import NCT_ID
from monitor.sources.base import Answer, Changed, OnProblem, Seen, Source, shown_key
from monitor.sources.files import Payload, Snapshot

if TYPE_CHECKING:
    from monitor.config import Settings, WatchGroup
    from monitor.sources.ctgov import CtgovClient
    from monitor.sources.ctgov_answers import SearchHit


class CtgovSource(Source):
    name = "ctgov"
    title = "ClinicalTrials.gov"
    key_hint = "an NCT id (NCT followed by 8 digits)"
    searches = True
    keeps_history = True

    def __init__(self, client: CtgovClient) -> None:
        self.client = client

    @classmethod
    def open(
        cls, settings: Settings, should_stop: Callable[[], bool] = lambda: False, group: WatchGroup | None = None
    ) -> CtgovSource:
        from monitor.sources.ctgov import CtgovClient, Politeness  # start-up speed: httpx loads only when asked

        ctgov = settings.ctgov
        politeness = Politeness(rate=ctgov.rate, retries=ctgov.retries, timeout=ctgov.timeout)
        return cls(CtgovClient(ctgov.base_url, politeness=politeness, limits=settings.limits, should_stop=should_stop))

    @classmethod
    def parse_key(cls, text: str) -> str | None:
        candidate = text.strip()
        if candidate[:3].upper() != "NCT":
            return None
        if not NCT_ID.fullmatch(candidate.upper()):
            raise UsageError(f"{shown_key(text)} is not {cls.key_hint}")
        return candidate.upper()

    @property
    def url(self) -> str:  # type: ignore[override]
        return self.client.url

    @property
    def requests(self) -> int:  # type: ignore[override]
        return self.client.requests

    def changed_since(self, watermark: str | None) -> Changed:
        """The registry's data timestamp; which trials changed is the cycle's plan choice for
        ClinicalTrials.gov (the id probe or the change query, :mod:`monitor.live_plan`)."""
        return Changed(self.client.data_timestamp(), None)

    def known(self, keys: Iterable[str], on_problem: OnProblem | None = None) -> dict[str, Seen]:
        return self.client.probe(keys, on_bad_id=on_problem)

    def records(self, keys: Iterable[str], on_problem: OnProblem | None = None) -> Iterator[tuple[str, Answer]]:
        for study in self.client.studies(keys, on_bad_id=on_problem):
            key = study["protocolSection"]["identificationModule"]["nctId"]  # checked by the client
            yield key, self._payload(study, f"{self.client.url}/studies")

    def current(self, key: str) -> Snapshot:
        return self._payload(self.client.study(key), f"{self.client.url}/studies/{key}").snapshot()

    def history(self, key: str, progress: Callable[[], None] = lambda: None) -> list[Snapshot]:
        """Every version the website lists, oldest first; a version without a
        last-update date takes the date the list gives it.  The endpoint is
        undocumented: any surprise raises (the backfill fails closed)."""
        snapshots = []
        for entry in self.client.history(key):
            study = self.client.history_version(key, entry["version"])
            origin = f"{self.client.internal_url}/studies/{key}/history/{entry['version']}"
            snapshot = self._payload(study, origin).snapshot()
            if snapshot.record.last_update_posted is None:
                record = dataclasses.replace(snapshot.record, last_update_posted=entry["date"])
                snapshot = Snapshot(record, snapshot.raw, snapshot.origin)
            snapshots.append(snapshot)
            progress()
        return snapshots

    def search(self, query: str) -> list[SearchHit]:
        return self.client.search(query)

    def close(self) -> None:
        self.client.close()

    @staticmethod
    def _payload(study: dict[str, Any], origin: str) -> Payload:
        return payload(study, origin)


def payload(study: dict[str, Any], origin: str) -> Payload:
    """A study as received, kept as the text that is stored, hashed and archived."""
    return Payload(origin, json.dumps(study, ensure_ascii=False), study)
