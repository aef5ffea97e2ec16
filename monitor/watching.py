"""Following trials on their registries, one call each: what ``monitor fetch``,
``monitor backfill`` and ``monitor watch add|remove`` do, for a Python caller too.

    settings = load_settings()                       # monitor.config
    store = Store.open(settings.database)             # monitor.store
    report = watch(store, settings, ["NCT06518668"], queries=["query.cond=lupus"])
    report.results, report.notes, report.problems     # what was stored, said, not reached
    fetch(store, settings)                            # one polling cycle over every watch
    dict(backfill(store, settings, ["NCT06518668"]))  # {"NCT06518668": 3}: past versions added

Each function opens one polling cycle (:class:`monitor.live.Live`) per registry it
needs, so a registry's politeness (rate, retries) spans every trial of the call,
and closes them when done.  Trial keys are checked first (:func:`check_key`): a
bad id is a :class:`~monitor.errors.UsageError` before anything is asked or stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from monitor.clock import utc_now
from monitor.config import Settings
from monitor.cycles import make_live
from monitor.errors import IncompleteError, MonitorError, NotFoundError, SourceError, Stopped, UsageError
from monitor.live import CycleReport, Live
from monitor.live_registry import first_load
from monitor.pipeline import Comparison, compare_to_store
from monitor.results import Results
from monitor.sources.ctgov import parse_query
from monitor.sources.registry import by_source, check_key, source_of
from monitor.store import Store
from monitor.summaries import plural

Progress = Callable[[str, int], None]


class FetchError(MonitorError):
    """Some of the trials asked for by id could not be stored (each one's reason is a problem and in status)."""


@dataclass
class WatchReport(CycleReport):
    """A :class:`CycleReport` and what :func:`watch` has to say beside it, a line each
    (``NCT...: already watched``, ``QUERY: 12 trials, watched from now on``)."""

    notes: list[str] = field(default_factory=list)


class Registries:
    """One polling cycle per registry, opened on first use and closed together."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        progress: Progress | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.store, self.settings, self.progress, self.should_stop = store, settings, progress, should_stop
        self.lives: dict[str, Live] = {}

    def __call__(self, source: str = "ctgov") -> Live:
        if source not in self.lives:
            self.lives[source] = make_live(
                self.store, self.settings, should_stop=self.should_stop, progress=self.progress, source=source
            )
        return self.lives[source]

    def __enter__(self) -> Registries:
        return self

    def __exit__(self, *exc) -> None:
        for live in self.lives.values():
            live.source.close()


def checked(keys: Iterable[str], queries: Iterable[str] = ()) -> list[str]:
    """Trial keys in their canonical form and saved searches checked, before anything is
    opened or asked (:class:`UsageError` names the first bad one)."""
    for query in queries:
        parse_query(query)
    return [check_key(k) for k in keys]


def fetch(
    store: Store,
    settings: Settings,
    keys: Iterable[str] = (),
    progress: Progress | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> CycleReport:
    """Fetch ``keys`` in full now (batched, each from its own registry); without keys, one
    polling cycle over every watch of ClinicalTrials.gov.  See :func:`check_fetched`.
    ``should_stop`` ends it between two trials (:class:`~monitor.errors.Stopped`, or an
    incomplete cycle); what was stored stays."""
    keys = checked(keys)
    with Registries(store, settings, progress, should_stop) as registry:
        if not keys:
            return registry().cycle()
        report = CycleReport()
        for source, of_source in by_source(keys).items():
            registry(source).fetch(of_source, report)
        return report


def check_fetched(report: CycleReport, keys: Iterable[str] = ()) -> None:
    """Raise when a :func:`fetch` did not finish (:class:`IncompleteError`) or did not store
    every trial asked for (:class:`FetchError`); what was stored stays stored."""
    if not report.complete:
        raise IncompleteError("the cycle could not finish; what was fetched is stored, the rest is retried next time")
    keys = checked(keys)
    stored = report.results.keys  # every result's trial, listed or not
    missed = [k for k in dict.fromkeys(keys) if k not in stored]
    if missed:  # the others are stored; the ids asked for and not stored are an error of the call
        asked = len(set(keys))
        which = ", ".join(missed[:5]) + (" ..." if len(missed) > 5 else "")
        others = f" ({len(missed)} of the {asked} asked for; the others are stored)" if asked > 1 else ""
        raise FetchError(f"not stored: {which}{others}; the reason is above and in `monitor status`")


def compare_live(store: Store, settings: Settings, key: str) -> Comparison:
    """The registry's current record of ``key`` against the latest stored version; nothing is stored."""
    key = check_key(key)
    with Registries(store, settings) as registry:
        return compare_to_store(store, registry(source_of(key).name).current(key))


def backfill(
    store: Store,
    settings: Settings,
    keys: Iterable[str],
    progress: Progress | None = None,
    problems: dict[str, str] | None = None,
) -> Iterator[tuple[str, int]]:
    """Store each trial's past versions from its registry's version history, older than the
    earliest stored one: yields ``(key, versions added)`` as each trial is done.  With
    ``problems``, a trial whose history fails (unavailable, or a version of the wrong shape) is
    its message there (by key) and the others go on; without, its error stops the call."""
    keys = checked(keys)
    with Registries(store, settings, progress) as registry:
        for key in keys:
            try:
                added = registry(source_of(key).name).backfill(key)
            except (SourceError, NotFoundError) as exc:  # that trial's alone (a database refusal stops all)
                if problems is None:
                    raise
                problems[key] = exc.message
                continue
            yield key, added


def watch(
    store: Store,
    settings: Settings,
    keys: Iterable[str] = (),
    queries: Iterable[str] = (),
    backfill: bool = True,
    progress: Progress | None = None,
) -> WatchReport:
    """Start watching trials and saved searches (ClinicalTrials.gov API parameters).

    Every trial is checked to be on its registry first (one probe request): one unknown
    and nothing is added (:class:`NotFoundError`).  A trial is fetched now, with its past
    versions when it has none stored and ``backfill``; a search is run now to set its
    baseline and its trials are fetched.  A backfill that fails is a problem, not an error.
    """
    queries = list(queries)
    keys = by_source(checked(keys, queries))
    if not keys and not queries:
        raise UsageError("name trials or saved searches to watch")
    report = WatchReport()
    with Registries(store, settings, progress) as registry:
        for source, of_source in keys.items():  # every one checked before any is added
            check_registered(registry(source), of_source)
        for source, of_source in keys.items():
            _watch_trials(registry(source), of_source, backfill, report)
        for query in queries:  # saved searches are ClinicalTrials.gov's
            _watch_query(registry(), query, report)
    return report


def _watch_trials(live: Live, keys: list[str], backfill: bool, report: WatchReport) -> None:
    for key in keys:
        if not live.store.watches.add_watch("trial", key, utc_now()):
            report.notes.append(f"{key}: already watched")
        if live.store.versions.latest_head(key) is None and backfill and live.source.keeps_history:
            try:
                report.backfilled += live.backfill(key)
            except MonitorError as exc:
                report.problems.append(exc.message)
    live.fetch(keys, report)


def _watch_query(live: Live, query: str, report: WatchReport) -> None:
    if not live.store.watches.add_watch("query", query, utc_now()):
        report.notes.append(f"{query}: already watched")
        return
    live.refresh_query(query)
    members = live.store.watches.members(query) or {}
    report.notes.append(f"{query}: {plural(len(members), 'trial')}, watched from now on")
    live.fetch(sorted(members), report)


def check_registered(live: Live, keys: list[str]) -> None:
    """Every trial to watch is on its registry (one probe request), or :class:`NotFoundError`."""
    if not keys:
        return
    known = live.source.known(keys)
    missing = [key for key in keys if key not in known]
    if missing:
        also = f" (nor {', '.join(missing[1:])})" if len(missing) > 1 else ""
        ctgov = live.source.name == "ctgov"
        check = f" (check the id at https://clinicaltrials.gov/study/{missing[0]})" if ctgov else ""
        raise NotFoundError(f"{missing[0]} is not on {live.source.title}{also}; nothing was added{check}")


def watch_registry(
    store: Store,
    settings: Settings,
    page_size: int = 200,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> CycleReport:
    """Watch the whole of ClinicalTrials.gov: load every study now, then ask only what
    changed.  ``should_stop`` ends the load between two trials, resumably (another call
    goes on where it stopped): :class:`IncompleteError`, and what was stored stays."""
    with Registries(store, settings, progress) as registry:
        live = registry()
        live.should_stop = live.client.should_stop = should_stop
        try:
            return first_load(live, CycleReport(results=Results(keyed=False)), page_size)  # nothing asks which
        except Stopped as exc:
            raise IncompleteError(
                f"the load stopped part-way ({exc}); what was stored stays: run `monitor watch add --all` "
                "again to resume"
            ) from None


@dataclass
class Unwatched:
    removed: list[str]  # trial keys and searches no longer watched
    missing: list[str]  # the ones that were not watched


def unwatch(store: Store, keys: Iterable[str] = (), queries: Iterable[str] = ()) -> Unwatched:
    """Stop watching trials and saved searches; their stored history stays."""
    targets = [("trial", check_key(k)) for k in keys] + [("query", q) for q in queries]
    missing = [target for kind, target in targets if not store.watches.remove_watch(kind, target)]
    return Unwatched([t for _, t in targets if t not in missing], missing)
