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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from monitor.archive import ArchiveError, SnapshotArchive
from monitor.batch import Batch
from monitor.classify import diff_records
from monitor.clock import Clock, utc_now
from monitor.diff import fingerprint
from monitor.errors import MonitorError, NotFoundError, SourceError, Stopped
from monitor.live_plan import LAST_FULL, advance_watermark, latest_date, membership_event, plan_probe, same_raw
from monitor.live_registry import load_registry, loaded, watches_registry
from monitor.model import Change, ChangeKind
from monitor.pipeline import UNREAD, Result, Routes, as_new_version, ingest
from monitor.sources.base import Answer, Source
from monitor.sources.ctgov import CtgovClient
from monitor.sources.ctgov_source import CtgovSource
from monitor.sources.files import Snapshot
from monitor.store import NewVersion, Store
from monitor.workers import Prepared, Workers

log = logging.getLogger(__name__)

STAMP = "data_timestamp"  # state keys, after the source's name: ctgov.data_timestamp
Progress = Callable[[str, int], None]  # (what, how many more done)


@dataclass
class CycleReport:
    requests: int = 0
    probed: int = 0
    fetched: int = 0
    results: list[Result] = field(default_factory=list)
    membership: list[tuple[str, Change]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # new ones only: each is reported once
    backfilled: int = 0
    skipped: bool = False  # the registry had not changed
    complete: bool = True
    plan: str = ""  # which plan ran: "ids", "changes" or "load" (monitor.live_plan)
    plan_reason: str = ""  # and why, in requests

    @property
    def changed(self) -> list[Result]:
        return [r for r in self.results if r.status in ("new", "changed")]


class Live:
    """A registry source wired to a store, an archive and a clock (a bare
    :class:`CtgovClient` is taken as the ``ctgov`` source; ``client`` is then that client)."""

    def __init__(
        self,
        store: Store,
        client: Source | CtgovClient,
        archive: SnapshotArchive | None = None,
        now: Clock = utc_now,
        progress: Progress | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        routes: Routes | None = None,
        workers: Workers | None = None,
    ) -> None:
        self.source = client if isinstance(client, Source) else CtgovSource(client)
        self.client = getattr(self.source, "client", self.source)
        self.store, self.archive, self.now = store, archive, now
        self.routes = routes
        self.progress = progress or (lambda what, n: None)
        self.should_stop = should_stop
        self.workers = workers or Workers()  # the second core for fetches of many answers

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

        def stored(key: str, outcome: tuple[Result, tuple[str | None, str | None]]) -> None:
            report.fetched += 1
            report.results.append(outcome[0])
            seen[key] = outcome[1]

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
                self.store.watches.mark_seen_many(seen)
                self.store.watches.clear_errors(seen)

    def current(self, nct_id: str) -> Snapshot:
        """The registry's current record of one trial; nothing is stored."""
        return self.source.current(nct_id)

    def _store(self, key, answer: Answer, report, heads: dict, batch: Batch, prepared: Prepared | None = None) -> None:
        """The per-trial boundary: whatever goes wrong with this trial is its problem alone.
        ``heads``: the latest heads read for the fetch (used once: a second copy of
        a trial reads its head again); ``batch`` writes the versions hundreds at a
        time and holds each trial's outcome until its version is written."""
        try:
            if batch.waiting(key):  # a second copy of a trial: compared with the first one, written
                batch.flush()
            if heads.get(key) is not None and (same := same_raw(self.store, key, answer)) is not None:
                batch.hold(key, same)  # byte-identical to the stored version: not normalized again
                return
            snapshot = prepared.snapshot(answer) if prepared else answer.snapshot()  # prepared: by a worker
            if snapshot.record.key != key:
                raise SourceError(f"the record of {key} normalizes to {snapshot.record.key}; not stored")
            if self.archive:
                self.archive.put(key, snapshot.record.last_update_posted, snapshot.raw, snapshot.raw_hash)
            head, heads[key] = heads.get(key), UNREAD
            done = (prepared.content_hash, prepared.projected, prepared.packed) if prepared else (None,) * 3
            result = ingest(self.store, snapshot, self.now, self.routes, head=head, write=batch.write, prepared=done)
            batch.hold(key, (result, (snapshot.record.last_update_posted, snapshot.record.overall_status)))
        except ArchiveError:
            raise
        except MonitorError as exc:
            self._problem(report, key, exc.message)
            return
        except Exception as exc:  # the per-trial boundary: one bad trial never stops the others
            log.exception("%s: unexpected error", key)
            self._problem(report, key, f"unexpected error ({type(exc).__name__}: {exc}); not stored, see the log")

    def _problem(self, report: CycleReport, key: str, message: str) -> None:
        log.warning("%s: %s", key, message)
        if self.store.watches.record_error(key, message, self.now()):
            report.problems.append(f"{key}: {message}")

    def _valid(self, key: str) -> bool:
        """Whether ``key`` is one of the source's keys (a malformed one was reported as refused)."""
        try:
            return self.source.parse_key(key) == key
        except MonitorError:
            return False

    # --- history backfill -------------------------------------------------------------

    def backfill(self, key: str) -> int:
        """Store a trial's past versions from the registry's history, oldest
        first, before any version already stored; returns how many were added.
        The history endpoint is undocumented: any surprise fails closed."""
        try:
            snapshots = self.source.history(key, lambda: self.progress("backfill", 1))
            added = self._add_history(key, snapshots)
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

    def _add_history(self, key: str, snapshots: list[Snapshot]) -> int:
        for snapshot in snapshots:
            if self.archive:
                self.archive.put(key, snapshot.record.last_update_posted, snapshot.raw, snapshot.raw_hash)
        if self.store.versions.latest_head(key) is None:
            return sum(
                1
                for s in snapshots
                if ingest(self.store, s, self.now, backfill=True).status in ("new", "changed", "refreshed")
            )
        first = self.store.versions.history(key)[0]
        older = [s for s in snapshots if s.record.last_update_posted and s.record.last_update_posted < first.date]
        chain: list[NewVersion] = []
        for snapshot in older:
            content = fingerprint(snapshot.record)
            if chain and content == chain[-1].content_hash:
                continue
            found = diff_records(chain[-1].record, snapshot.record) if chain else []
            chain.append(as_new_version(snapshot, content, self.now(), found))
        if chain and chain[-1].content_hash == first.content_hash:
            chain.pop()
        if not chain:
            return 0
        return self.store.versions.prepend_versions(key, chain, diff_records(chain[-1].record, first.record))

    # --- saved searches ---------------------------------------------------------------

    def refresh_query(self, target: str) -> list[tuple[str, Change]]:
        """Run a saved search; trials entering or leaving it are events, except
        on its first run, which sets the baseline."""
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
        routed = [(key, event, self.routes(key, [event]) if self.routes else []) for key, event in events]
        members = [(k, hits[k].title, hits[k].status) for k in entered]
        self.store.watches.update_members(target, members, left, routed, now)
        for key in entered:
            if self.store.versions.latest_head(key) is None and self.store.watches.backfill_state(key) is None:
                self.store.watches.set_backfill(key, "pending")
        return events

    # --- the cycle ------------------------------------------------------------------------

    def cycle(
        self,
        full_refresh_days: float = 7,
        backfill_per_cycle: int = 10,
        trials: list[str] | None = None,
        queries: list[str] | None = None,
        scope: str = "",
    ) -> CycleReport:
        """One polling cycle over every watch, or over a watch group's ``trials``
        and saved ``queries`` (``scope`` names the group, keeping its state apart)."""
        report = CycleReport()
        start = self.source.requests
        try:
            suffix = f".{scope}" if scope else ""
            with self.workers.session():  # one pool for the cycle's fetches, shut down at its end
                self._cycle(report, full_refresh_days, backfill_per_cycle, trials, queries, suffix)
        except (SourceError, Stopped) as exc:
            report.complete = False
            report.problems.append(f"{self.source.title}: {exc.message}" if isinstance(exc, SourceError) else str(exc))
            log.warning("cycle abandoned: %s", exc)
        report.requests = self.source.requests - start
        return report

    def _watched(self, trials: list[str] | None, queries: list[str] | None) -> list[str]:
        if trials is None and queries is None:  # every watched trial of this source's registry
            return [key for key in self.store.watches.watched_trials() if self._valid(key)]
        members = [key for query in queries or () for key in (self.store.watches.members(query) or {})]
        return sorted(set(trials or ()) | set(members))

    def _backfills(self, report: CycleReport, watched: list[str], limit: int) -> None:
        """Backfill the first ``limit`` watched trials whose history waits."""
        if limit <= 0:
            return
        watching = set(watched)  # built once, not once per key
        for key in [k for k in self.store.watches.pending_backfills(10_000) if k in watching][:limit]:
            if self.should_stop():
                raise Stopped("stopped before the backfills; they are done next cycle")
            try:
                report.backfilled += self.backfill(key)
            except MonitorError as exc:
                self._problem(report, key, exc.message)
            except Exception as exc:  # the per-trial boundary
                log.exception("%s: unexpected error in the backfill", key)
                self._problem(report, key, f"backfill failed unexpectedly ({type(exc).__name__}: {exc}); see the log")

    def _cycle(self, report, full_refresh_days, backfill_per_cycle, trials, queries, suffix) -> None:
        state = f"{self.source.name}.%s{suffix}"  # the state keys of this source and group
        changed = self.source.changed_since(self.store.service.get_state(state % STAMP))
        stamp = changed.watermark
        watched = self._watched(trials, queries)
        seen = self.store.watches.last_seen()
        waiting = [k for k in watched if k not in seen]
        last_full = self.store.service.get_state(state % LAST_FULL)
        full_due = last_full is None or self.now() - datetime.fromisoformat(last_full) > timedelta(
            days=full_refresh_days
        )
        if stamp and stamp == self.store.service.get_state(state % STAMP) and not waiting and not full_due:
            report.skipped = True  # nothing to probe; waiting backfills still take their turn
            self._backfills(report, watched, backfill_per_cycle)
            return
        searches = queries if queries is not None else [w.target for w in self.store.watches.all() if w.kind == "query"]
        searches = searches if self.source.searches else []
        for query in searches:
            report.membership += self.refresh_query(query)
        watched = self._watched(trials, queries)
        backfilled = report.backfilled
        self._backfills(report, watched, backfill_per_cycle)
        if report.backfilled != backfilled:
            seen = self.store.watches.last_seen()
        if isinstance(self.source, CtgovSource):  # its plans: the id probe, the change query, the whole registry
            due, mark = self._ctgov_due(report, watched, seen, full_due, trials, queries, suffix)
        else:
            due, mark = self._due(report, watched, seen, full_due, changed), None
        if due:
            self.fetch(due, report)
        if full_due:
            self.store.service.set_state(state % LAST_FULL, self.now().isoformat())
        if isinstance(self.source, CtgovSource):
            if full_due and not mark:  # what was seen is read once, not once per watched trial
                seen = self.store.watches.last_seen()
                mark = latest_date((seen.get(k, (None, None))[0] for k in watched), not_after=self.now().date())
            advance_watermark(self.store, suffix, mark)
        self.store.service.set_state(state % STAMP, stamp)

    def _due(self, report: CycleReport, watched: list[str], seen: dict, full_due: bool, changed) -> list[str]:
        """The trials to fetch in full, for any source: all of them at a full refresh, those the
        source says changed (and those never seen), or those whose probed date or status moved."""
        if full_due:
            return watched
        if changed.keys is not None:  # the registry said which trials changed: no probe
            return [key for key in watched if key in changed.keys or key not in seen]  # and first seen
        refused: set[str] = set()

        def on_bad_id(nct: str, why: str) -> None:
            refused.add(nct)
            self._problem(report, nct, why)

        probe = self.source.known(watched, on_problem=on_bad_id)
        report.probed = len(probe)
        for nct in watched:
            if nct not in probe and nct not in refused and self._valid(nct):
                self._problem(report, nct, f"not found on {self.source.title}")
        return [nct for nct in watched if nct in probe and _moved(probe[nct], seen.get(nct, (None, None)))]

    def _ctgov_due(self, report, watched, seen, full_due, trials, queries, suffix) -> tuple[list[str], str | None]:
        """ClinicalTrials.gov's plans (:mod:`monitor.live_plan`): the whole registry loaded page by
        page, every watched trial at a full refresh, or the cheaper of the id probe and the change
        query; with the watermark the cycle reached."""
        whole = trials is None and queries is None and watches_registry(self)
        if whole and (full_due or not loaded(self, suffix)):
            return [], load_registry(self, report, suffix)
        if full_due:
            report.plan, report.plan_reason = "ids", "the full refresh: every watched trial in full"
            return watched, None
        searches = list(queries) if queries and not trials else None
        probe, mark = plan_probe(self, report, watched, searches, suffix, whole)
        report.probed = len(probe)
        due = [
            nct
            for nct in (probe if whole else watched)
            if nct in probe and _moved(probe[nct], seen.get(nct, (None, None)))
        ]
        return due, mark


def _moved(now: tuple[str, str | None], before: tuple[str | None, str | None]) -> bool:
    """Whether the registry's (date, status) of a trial moved since we last saw it."""
    date, status = now
    seen_date, seen_status = before
    return date != seen_date or (seen_status is not None and status != seen_status)

