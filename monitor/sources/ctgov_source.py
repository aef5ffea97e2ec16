"""``source: ctgov``: ClinicalTrials.gov as a :class:`~monitor.sources.base.Source`.

A thin plugin over :class:`monitor.sources.ctgov.CtgovClient` (which keeps every
bound and retry): its keys are NCT ids, its watermark the API's
``dataTimestamp``, its probe the ``LastUpdatePostDate`` of up to 1,000 ids a
request, its records the full studies, its history the website's version list.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from monitor.errors import UsageError
from monitor.normalize.identity import NCT_ID
from monitor.sources.base import Answer, Changed, Cycle, OnProblem, Seen, Source, moved, shown_key
from monitor.sources.ctgov_answers import payload
from monitor.sources.files import Payload, Snapshot

if TYPE_CHECKING:
    from monitor.config import Settings, WatchGroup
    from monitor.live import CycleReport, Live
    from monitor.sources.ctgov import CtgovClient
    from monitor.sources.ctgov_answers import SearchHit
    from monitor.workers import Workers


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
        """The registry's data timestamp; which trials changed is this source's plan
        (:meth:`due`: the id probe or the change query, :mod:`monitor.live_plan`)."""
        return Changed(self.client.data_timestamp(), None)

    def due(self, cycle: Cycle) -> list[str]:
        """ClinicalTrials.gov's plans: the whole registry loaded page by page in slices, or
        reconciled against its short listing at a full refresh (:mod:`monitor.live_registry`);
        every watched trial at a full refresh; or the cheaper of the id probe and the change query
        (:mod:`monitor.live_plan`); ``cycle.mark`` is set to the watermark the cycle reached."""
        from monitor.live_plan import plan_probe  # start-up speed: the plans load httpx and pydantic
        from monitor.live_registry import load_registry, loaded, reconcile  # start-up speed, as above

        live, report = cycle.live, cycle.report
        whole = _whole(cycle)
        if whole and not loaded(live, cycle.suffix):
            finished, cycle.mark = load_registry(live, report, cycle.suffix, live.load_page_size, live.load_pages)
            report.loading = not finished
            return []
        if whole and cycle.full_due:
            due, cycle.mark = reconcile(live, report, cycle.seen, cycle.suffix)
            return due
        if cycle.full_due:
            report.plan, report.plan_reason = "ids", "the full refresh: every watched trial in full"
            return cycle.watched
        searches = list(cycle.queries) if cycle.queries and not cycle.trials else None
        probe, cycle.mark = plan_probe(live, report, cycle.watched, searches, cycle.suffix, whole)
        report.probed = len(probe)
        seen = cycle.seen.load(probe)  # what was seen of the trials answered only
        due = [k for k in (probe if whole else cycle.watched) if k in probe and moved(probe[k], seen.get(k))]
        if report.plan == "changes":  # never seen, and not answered (not updated since): asked for by id
            due += [k for k in cycle.waiting if k not in probe]
        return due

    def use_workers(self, workers: Workers) -> None:
        self.client.pages = workers  # its pages of full records are decoded in the pool too

    def unfinished(self, cycle: Cycle) -> bool:
        from monitor.live_registry import loaded  # start-up speed, as in due

        return _whole(cycle) and not loaded(cycle.live, cycle.suffix)

    def search_since(self, cycle: Cycle) -> str | None:
        from monitor.live_plan import search_since  # start-up speed, as in due

        return search_since(cycle.live, cycle.suffix, cycle.full_due)

    def search_changes(self, live: Live, target: str, since: str, report: CycleReport) -> list | None:
        from monitor.live_plan import search_changes  # start-up speed, as in due

        return search_changes(live, target, since, report)

    def finish(self, cycle: Cycle) -> None:
        """Advance the change query's watermark (:func:`monitor.live_plan.finish_watermark`)."""
        from monitor.live_plan import finish_watermark  # start-up speed, as in due

        finish_watermark(cycle)

    def known(self, keys: Iterable[str], on_problem: OnProblem | None = None) -> dict[str, Seen]:
        return self.client.probe(keys, on_bad_id=on_problem)

    def records(self, keys: Iterable[str], on_problem: OnProblem | None = None) -> Iterator[tuple[str, Answer]]:
        for study in self.client.studies(keys, on_bad_id=on_problem):
            if isinstance(study, Payload):  # decoded and prepared by a worker (monitor.prepare.Decoded)
                yield study.key, study
                continue
            key = study["protocolSection"]["identificationModule"]["nctId"]  # checked by the client
            yield key, self._payload(study, f"{self.client.url}/studies")

    def current(self, key: str) -> Snapshot:
        return self._payload(self.client.study(key), f"{self.client.url}/studies/{key}").snapshot()

    def history(self, key: str, progress: Callable[[], None] = lambda: None) -> list[Answer]:
        """Every version the website lists, oldest first, each normalized in the per-trial path;
        a version without a last-update date takes the date the list gives it.  The endpoint
        is undocumented: any surprise raises (the backfill fails closed)."""
        versions: list[Answer] = []
        for entry in self.client.history(key):
            study = self.client.history_version(key, entry["version"])
            origin = f"{self.client.internal_url}/studies/{key}/history/{entry['version']}"
            versions.append(PastVersion(self._payload(study, origin), entry["date"]))
            progress()
        return versions

    def search(self, query: str) -> list[SearchHit]:
        return self.client.search(query)

    def close(self) -> None:
        self.client.close()

    @staticmethod
    def _payload(study: dict[str, Any], origin: str) -> Payload:
        return payload(study, origin)


@dataclass(frozen=True)
class PastVersion:
    """A version from the history list: an :class:`~monitor.sources.base.Answer` whose record,
    when it has no last-update date of its own, takes the one the list gives."""

    payload: Payload
    date: str

    @property
    def origin(self) -> str:
        return self.payload.origin

    def snapshot(self) -> Snapshot:
        snapshot = self.payload.snapshot()
        if snapshot.record.last_update_posted is not None:
            return snapshot
        record = dataclasses.replace(snapshot.record, last_update_posted=self.date)
        return Snapshot(record, snapshot.raw, snapshot.origin)


def _whole(cycle: Cycle) -> bool:
    """Whether the cycle is over the whole registry (a group with `all: true`, or every watch
    while `monitor watch add --all` is among them)."""
    from monitor.live_registry import watches_registry  # start-up speed, as in CtgovSource.due

    return cycle.registry or (cycle.trials is None and cycle.queries is None and watches_registry(cycle.live))
