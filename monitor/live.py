"""Following live trials on a registry (ClinicalTrials.gov, or any source of
:mod:`monitor.sources.registry`): fetch, backfill, saved searches, and the polling
cycle whose cost grows with what changed, not with what is watched.

A cycle (each step a method of :class:`monitor.sources.base.Source`; the requests
named are ClinicalTrials.gov's):

1. ``GET /version``: when the registry's ``dataTimestamp`` (its watermark) has not moved since
   the last complete cycle and nothing new is waiting, stop there (1 request).
2. Saved searches: trials entering or leaving are ``membership`` events; entering
   trials become watched.
3. Probe every watched trial's last-update date (1,000 a request) and fetch in
   full, batched, only those whose date moved.  Once every ``full_refresh_days``
   every watched trial is fetched in full instead, because some changes (a
   stale record turned UNKNOWN, references the registry adds) come without a
   new last-update date.
4. Each fetched record is archived raw, normalized, diffed and stored in its own
   transaction; any failure (any exception, not only ours) is logged with the
   trial id and recorded for that trial, where ``monitor status`` shows it
   (reported once), and the others carry on.  A record of a trial not asked for
   is never stored.  Only a snapshot archive that cannot be written stops the
   batch: nothing is stored without its raw copy.  A cycle that cannot finish
   leaves untouched the trials it did not reach, and does not advance the
   ``dataTimestamp``, so the next cycle tries again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from monitor.archive import SnapshotArchive
from monitor.batch import Batch
from monitor.checking import UNREAD, Checker, Result, Routes
from monitor.clock import Clock, utc_now
from monitor.errors import MonitorError, NotFoundError, SourceError, Stopped
from monitor.live_plan import LAST_FULL, membership_event, pending_backfills, same_raw
from monitor.model import Change, ChangeKind
from monitor.prepare import Prepared
from monitor.results import Results
from monitor.seen import LastSeen, fingerprint
from monitor.sources.base import Answer, Cycle, Source
from monitor.sources.files import Snapshot
from monitor.sources.registry import source_named
from monitor.store import Store
from monitor.workers import Workers

log = logging.getLogger(__name__)

STAMP = "data_timestamp"  # state keys, after the source's name: ctgov.data_timestamp
SETTLED = "settled"  # and the watched set's fingerprint once none of it waits to be seen (Live._settle)
Progress = Callable[[str, int], None]  # (what, how many more done)
SEEN_CHUNK = 2_000  # stored trials marked seen at once


@dataclass
class CycleReport:
    requests: int = 0
    probed: int = 0
    fetched: int = 0
    results: Results = field(default_factory=Results)  # the first LISTED in full, the others counted
    membership: list[tuple[str, Change]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # new ones only: each is reported once
    backfilled: int = 0
    skipped: bool = False  # the registry had not changed
    complete: bool = True
    plan: str = ""  # which plan ran: "ids", "changes", "load" or "reconcile" (monitor.live_plan)
    loading: bool = False  # a slice of the whole registry's first load ran; the next cycle goes on
    plan_reason: str = ""  # and why, in requests
    asked: dict = field(default_factory=dict)  # (day, saved search) -> its change query's answer, this cycle

    @property
    def changed(self) -> int:
        """How many trials were new or changed, listed or not (a capped list lists the first only)."""
        return self.results.count_of("new", "changed")


class Live:
    """A registry source wired to a store, an archive and a clock (a bare ClinicalTrials.gov
    client is taken as the ``ctgov`` source; ``client`` is then that client)."""

    def __init__(
        self,
        store: Store,
        client: Source | Any,
        archive: SnapshotArchive | None = None,
        now: Clock = utc_now,
        progress: Progress | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        routes: Routes | None = None,
        workers: Workers | None = None,
    ) -> None:
        self.source = client if isinstance(client, Source) else source_named("ctgov")(client)
        self.client = getattr(self.source, "client", self.source)
        self.store, self.archive, self.now = store, archive, now
        self.routes = routes
        self.progress = progress or (lambda what, n: None)
        self.should_stop = should_stop
        self.workers = workers or Workers()  # the second core for fetches of many answers
        self.load_pages = self.load_page_size = None  # the whole registry's first load: pages a cycle, page size
        self.checker = Checker(store, now, routes, archive)  # the per-trial path
        self.source.use_workers(self.workers)  # e.g. pages of full records decoded in the pool

    # --- fetching -------------------------------------------------------------------

    def fetch(self, ids: list[str], report: CycleReport | None = None) -> CycleReport:
        """Fetch ``ids`` in full now (batched), store what changed."""
        report = report or CycleReport()
        asked = set(ids)
        got: set[str] = set()

        def refused(nct: str, why: str) -> None:
            got.add(nct)  # reported as refused, not also as missing
            self._problem(report, nct, why)

        self.store_answers(self.source.records(ids, on_problem=refused), ids, report, got)
        for nct in sorted(asked - got):
            if self._valid(nct):
                self._problem(report, nct, f"not found on {self.source.title}")
        return report

    def store_answers(self, answers, keys: list[str], report: CycleReport, got: set[str] | None = None, what="fetch"):
        """Store the ``(key, answer)`` pairs of ``keys`` through the per-trial boundary, hundreds
        of versions a transaction; what was stored is marked seen, even when stopped part-way."""
        heads = self.store.versions.latest_heads(keys)  # one query, not one per trial
        seen: dict[str, tuple[str | None, str | None]] = {}

        def mark_seen() -> None:  # in chunks, so a first load holds no seen key to its end
            self.store.watches.mark_seen_many(seen)
            self.store.watches.clear_errors(k for k in seen if k not in self.checker.failures)  # not this run's
            seen.clear()

        def stored(key: str, outcome: tuple[Result, tuple[str | None, str | None]]) -> None:
            report.fetched += 1
            report.results.append(outcome[0])
            seen[key] = outcome[1]
            if len(seen) >= SEEN_CHUNK:
                mark_seen()

        batch = Batch(self.store, stored, lambda key, why: self._problem(report, key, why))
        pooled = self.workers.wanted(len(keys))  # normalized and projected in worker processes
        with self.workers.session():
            items = self.workers.prepared(answers, [k for k in keys if heads.get(k) is not None]) if pooled else None
            try:
                for key, answer, prepared in items or ((k, a, None) for k, a in answers):
                    if self.should_stop():
                        raise Stopped("stopped part-way; the trials not reached are fetched next cycle")
                    if got is not None:
                        got.add(key)
                    self._store(key, answer, report, heads, batch, prepared)
                    self.progress(what, 1)
            finally:  # what was stored is seen, even when the batch stops part-way
                if items is not None:
                    items.close()  # what is still in flight is cancelled
                batch.flush()
                mark_seen()

    def current(self, nct_id: str) -> Snapshot:
        """The registry's current record of one trial; nothing is stored."""
        return self.source.current(nct_id)

    def _store(self, key, answer: Answer, report, heads: dict, batch: Batch, prepared: Prepared | None = None):
        """One trial through the per-trial path (:class:`monitor.checking.Checker`), inside its
        boundary: whatever goes wrong with this trial is its problem alone.  ``heads``: the latest
        heads read for the fetch (used once: a second copy of a trial reads its head again);
        ``batch`` writes the versions hundreds at a time and holds each trial's outcome until
        its version is written."""

        def step() -> None:
            if batch.waiting(key):  # a second copy of a trial: compared with the first one, written
                batch.flush()
            head = heads.get(key)
            if head is UNREAD:  # a second copy of a trial: its head as the first copy left it
                head = self.store.versions.latest_head(key)
            if head is not None and (same := same_raw(head, key, answer)) is not None:
                batch.hold(key, same)  # byte-identical to the stored version: not normalized again
                return
            heads[key] = UNREAD  # used once: a second copy reads its head again
            result = self.checker.store_answer(key, answer, prepared, head, batch.write)
            batch.hold(key, (result, result.seen))

        self.checker.guard(key, step, heard=_heard(report))

    def _problem(self, report: CycleReport, key: str, message: str) -> None:
        """Record ``key``'s problem (where ``monitor status`` shows it); a new one goes in ``report``."""
        self.checker.problem(key, message, _heard(report))

    def _valid(self, key: str) -> bool:
        """Whether ``key`` is one of the source's keys (a malformed one was reported as refused)."""
        return self.source.owns(key)

    # --- history backfill -------------------------------------------------------------

    def backfill(self, key: str) -> int:
        """Store a trial's past versions from the registry's history, oldest
        first, before any version already stored; returns how many were added.
        The history endpoint is undocumented: any surprise fails closed."""
        try:
            added = self.checker.backfill(key, self.source.history(key, lambda: self.progress("backfill", 1)))
        except NotFoundError:
            self.store.watches.set_backfill(key, "failed")
            raise
        except MonitorError as exc:
            self.store.watches.set_backfill(key, "failed")
            raise SourceError(
                f"{key}: version history unavailable ({exc.message}); the trial is still watched"
            ) from exc
        self.store.watches.set_backfill(key, "done")
        return added

    # --- saved searches ---------------------------------------------------------------

    def refresh_query(self, target: str, since: str | None = None, report=None) -> list[tuple[str, Change]]:
        """Run a saved search; trials entering or leaving it are events, except on its first run,
        which sets the baseline.  ``since``: only what changed within it since then (joins)."""
        if since is not None and (events := self.source.search_changes(self, target, since, report)) is not None:
            return events
        hits = {hit.nct_id: hit for hit in self.source.search(target)}
        before = self.store.watches.members(target)
        now = self.now()
        if before is None:
            entered, left, events = list(hits), [], []
        else:
            entered = [k for k in hits if k not in before]
            left = [k for k in before if k not in hits]
            events = [(k, membership_event(target, ChangeKind.ADDED, hits[k].title, hits[k].status)) for k in entered]
            events += [(k, membership_event(target, ChangeKind.REMOVED, *before[k])) for k in left]
        joined = [(k, hits[k].title, hits[k].status) for k in entered]
        self.store.watches.update_members(target, joined, left, self.routed(events), now)
        pending_backfills(self.store, entered)
        return events

    def routed(self, events: list[tuple[str, Change]]) -> list[tuple[str, Change, list[str]]]:
        """Each saved-search event with the routes that hear of it (none without routes)."""
        return [(key, event, self.routes(key, [event]) if self.routes else []) for key, event in events]

    # --- the cycle ------------------------------------------------------------------------

    def cycle(
        self,
        full_refresh_days: float = 7,
        backfill_per_cycle: int = 10,
        trials: Sequence[str] | None = None,
        queries: list[str] | None = None,
        scope: str = "",
        registry: bool = False,
    ) -> CycleReport:
        """One polling cycle over every watch, over a watch group's ``trials`` and saved ``queries``
        (``scope`` names the group, keeping its state apart), or over the whole ``registry``."""
        report = CycleReport()
        start = self.source.requests
        self.checker.failures.clear()  # the trials that failed in this cycle keep their problem
        try:
            suffix = f".{scope}" if scope else ""
            with self.workers.session():  # one pool for the cycle's fetches, shut down at its end
                self._cycle(report, full_refresh_days, backfill_per_cycle, trials, queries, suffix, registry)
        except (SourceError, Stopped) as exc:
            report.complete = False
            report.problems.append(f"{self.source.title}: {exc.message}" if isinstance(exc, SourceError) else str(exc))
            log.warning("cycle abandoned: %s", exc)
        report.requests = self.source.requests - start
        return report

    def _watched(self, trials: Sequence[str] | None, queries: list[str] | None) -> list[str]:
        if trials is None and queries is None:  # every watched trial of this source's registry
            return [key for key in self.store.watches.watched_trials() if self._valid(key)]
        members = [key for query in queries or () for key in (self.store.watches.members(query) or {})]
        return sorted(set(trials or ()) | set(members))

    def _fingerprint(self, trials: Sequence[str] | None, queries: list[str] | None) -> str | None:
        return fingerprint(self.store, trials, queries)

    def _backfills(self, report: CycleReport, watched: Callable[[], list[str]], limit: int) -> None:
        """Backfill the first ``limit`` watched trials whose history waits (``watched`` read only when some wait)."""
        if limit <= 0:
            return
        pending = self.store.watches.pending_backfills(10_000)
        if not pending:
            return
        watching = set(watched())  # built once, not once per key
        for key in [k for k in pending if k in watching][:limit]:
            if self.should_stop():
                raise Stopped("stopped before the backfills; they are done next cycle")
            added = self.checker.guard(key, lambda key=key: self.backfill(key), "backfill", _heard(report))
            report.backfilled += added or 0

    def _cycle(self, report, full_refresh_days, backfill_per_cycle, trials, queries, suffix, registry=False) -> None:
        state = f"{self.source.name}.%s{suffix}"  # the state keys of this source and group
        changed = self.source.changed_since(self.store.service.get_state(state % STAMP))
        stamp = changed.watermark
        last_full = self.store.service.get_state(state % LAST_FULL)
        full_due = last_full is None or self.now() - datetime.fromisoformat(last_full) > timedelta(
            days=full_refresh_days
        )
        unchanged = stamp and stamp == self.store.service.get_state(state % STAMP) and not full_due
        fingerprint = self._fingerprint(trials, queries)
        settled = fingerprint is not None and fingerprint == self.store.service.get_state(state % SETTLED)
        seen = LastSeen(self.store.watches)  # read only as far as the plan needs it
        cycle = Cycle(self, report, [], seen, full_due, changed, trials, queries, suffix, registry=registry)
        if unchanged and settled and not self.source.unfinished(cycle):  # nothing new is waiting: not read
            report.skipped = True  # nothing to probe; waiting backfills still take their turn
            self._backfills(report, lambda: self._watched(trials, queries), backfill_per_cycle)
            return
        watched = self._watched(trials, queries)
        waiting = [] if settled else self._waiting(watched, seen)
        if unchanged and not waiting and not self.source.unfinished(cycle):  # e.g. a first load in slices
            report.skipped = True
            self._settle(state, fingerprint)
            self._backfills(report, lambda: watched, backfill_per_cycle)
            return
        searches = queries if queries is not None else [w.target for w in self.store.watches.all() if w.kind == "query"]
        searches = searches if self.source.searches else []
        since = self.source.search_since(cycle)
        for query in searches:
            report.membership += self.refresh_query(query, since, report)
        if searches:  # members may have entered or left
            watched, fingerprint = self._watched(trials, queries), self._fingerprint(trials, queries)
            seen = LastSeen(self.store.watches)
            waiting = self._waiting(watched, seen)
        backfilled = report.backfilled
        self._backfills(report, lambda: watched, backfill_per_cycle)
        if report.backfilled != backfilled:
            seen = LastSeen(self.store.watches)
        cycle.watched, cycle.seen, cycle.waiting = watched, seen, waiting
        due = self.source.due(cycle)  # the source's cheapest plan (monitor.sources.base.Source.due)
        if report.loading:  # a slice of a first load: the state moves when the load ends
            return
        if due:
            self.fetch(due, report)
        if full_due:
            self.store.service.set_state(state % LAST_FULL, self.now().isoformat())
        self.source.finish(cycle)
        self.store.service.set_state(state % STAMP, stamp)
        self._settle(state, fingerprint)  # every trial that waited was asked for: none waits any more

    def _waiting(self, watched: list[str], seen: LastSeen) -> list[str]:
        """The watched trials never seen nor tried (a trial whose fetch failed, e.g. not found, was tried).
        Unless ``seen`` was read whole already, only the keys held are read, a page at a time, not
        what was seen of each (at 570,000 watched trials, the first cycle after the configuration
        changed peaked at 539 MB reading it all, 261 MB reading the keys)."""
        if seen.whole:
            waiting = [k for k in watched if k not in seen.known]
        else:
            unheld = set(watched)
            unheld.difference_update(self.store.watches.held_keys())
            waiting = [k for k in watched if k in unheld]
        if waiting:
            failed = {key for key, _, _ in self.store.watches.trial_errors()}
            waiting = [k for k in waiting if k not in failed]
        return waiting

    def _settle(self, state: str, fingerprint: str | None) -> None:
        """Keep the watched set's fingerprint once every trial of it was asked for (a trial the registry
        does not have is reported, and comes with a new date if it appears): while it holds, an unchanged
        cycle reads neither the watched ids nor what was seen of them."""
        if self.store.service.get_state(state % SETTLED) != (fingerprint or ""):
            self.store.service.set_state(state % SETTLED, fingerprint or "")


def _heard(report: CycleReport):
    """A new trial problem goes in the cycle's report (each is reported once)."""
    return lambda key, message: report.problems.append(f"{key}: {message}")
