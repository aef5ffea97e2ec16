"""Following live trials on ClinicalTrials.gov: fetch, backfill, saved searches, and
the polling cycle whose cost grows with what changed, not with what is watched.

A cycle:

1. ``GET /version``: when the registry's ``dataTimestamp`` has not moved since
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

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from monitor.archive import ArchiveError, SnapshotArchive
from monitor.classify import diff_records
from monitor.diff import fingerprint
from monitor.errors import MonitorError, NotFoundError, SourceError, Stopped
from monitor.live_plan import advance_watermark, latest_date, plan_probe, same_raw
from monitor.live_registry import load_registry, loaded, watches_registry
from monitor.model import Category, Change, ChangeKind, Severity
from monitor.pipeline import Clock, Result, Routes, as_new_version, ingest, utc_now
from monitor.sources.ctgov import CtgovClient
from monitor.sources.files import Payload, Snapshot
from monitor.store import NewVersion, Store

log = logging.getLogger(__name__)

STAMP = "ctgov.data_timestamp"
LAST_FULL = "ctgov.last_full_refresh"
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
    """The live source wired to a store, a client, an archive and a clock."""

    def __init__(
        self,
        store: Store,
        client: CtgovClient,
        archive: SnapshotArchive | None = None,
        now: Clock = utc_now,
        progress: Progress | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        routes: Routes | None = None,
    ) -> None:
        self.store, self.client, self.archive, self.now = store, client, archive, now
        self.routes = routes
        self.progress = progress or (lambda what, n: None)
        self.should_stop = should_stop

    # --- fetching -------------------------------------------------------------------

    def fetch(self, ids: list[str], report: CycleReport | None = None) -> CycleReport:
        """Fetch ``ids`` in full now (batched), store what changed."""
        report = report or CycleReport()
        asked = set(ids)
        got: set[str] = set()

        def refused(nct: str, why: str) -> None:
            got.add(nct)  # reported as refused, not also as missing
            self._problem(report, nct, why)

        for study in self.client.studies(ids, on_bad_id=refused):
            if self.should_stop():
                raise Stopped("stopped part-way; the trials not reached are fetched next cycle")
            key = study["protocolSection"]["identificationModule"]["nctId"]  # checked by the client
            got.add(key)
            self._store(key, study, report)
            self.progress("fetch", 1)
        for nct in sorted(asked - got):
            if self._valid(nct):
                self._problem(report, nct, "not found on ClinicalTrials.gov")
        return report

    def current(self, nct_id: str) -> Snapshot:
        """The registry's current record of one trial; nothing is stored."""
        return self._snapshot(self.client.study(nct_id), f"{self.client.url}/studies/{nct_id}")

    def _snapshot(self, study: dict, origin: str) -> Snapshot:
        return Payload(origin, json.dumps(study, ensure_ascii=False), study).snapshot()

    def _store(self, key: str, study: dict, report: CycleReport) -> None:
        """The per-trial boundary: whatever goes wrong with this trial is its problem alone."""
        try:
            if (same := same_raw(self.store, key, study, f"{self.client.url}/studies")) is not None:
                report.fetched += 1
                report.results.append(same)
                return
            snapshot = self._snapshot(study, f"{self.client.url}/studies")
            if snapshot.record.key != key:
                raise SourceError(f"the record of {key} normalizes to {snapshot.record.key}; not stored")
            if self.archive:
                self.archive.put(key, snapshot.record.last_update_posted, snapshot.raw, snapshot.raw_hash)
            result = ingest(self.store, snapshot, self.now, self.routes)
            self.store.mark_seen(key, snapshot.record.last_update_posted, snapshot.record.overall_status)
            self.store.clear_error(key)
        except ArchiveError:
            raise
        except MonitorError as exc:
            self._problem(report, key, exc.message)
            return
        except Exception as exc:  # the per-trial boundary: one bad trial never stops the others
            log.exception("%s: unexpected error", key)
            self._problem(report, key, f"unexpected error ({type(exc).__name__}: {exc}); not stored, see the log")
            return
        report.fetched += 1
        report.results.append(result)

    def _problem(self, report: CycleReport, key: str, message: str) -> None:
        log.warning("%s: %s", key, message)
        if self.store.record_error(key, message, self.now()):
            report.problems.append(f"{key}: {message}")

    @staticmethod
    def _valid(nct: str) -> bool:
        from monitor.normalize.identity import NCT_ID

        return bool(NCT_ID.fullmatch(nct))

    # --- history backfill -------------------------------------------------------------

    def backfill(self, key: str) -> int:
        """Store a trial's past versions from the registry's history, oldest
        first, before any version already stored; returns how many were added.
        The history endpoint is undocumented: any surprise fails closed."""
        try:
            entries = self.client.history(key)
            snapshots = []
            for entry in entries:
                study = self.client.history_version(key, entry["version"])
                snapshot = self._snapshot(study, f"{self.client.internal_url}/studies/{key}/history/{entry['version']}")
                if snapshot.record.last_update_posted is None:
                    import dataclasses

                    snapshot = Snapshot(
                        dataclasses.replace(snapshot.record, last_update_posted=entry["date"]),
                        snapshot.raw,
                        snapshot.origin,
                    )
                snapshots.append(snapshot)
                self.progress("backfill", 1)
            added = self._add_history(key, snapshots)
        except NotFoundError:
            self.store.set_backfill(key, "failed")
            raise
        except MonitorError as exc:
            self.store.set_backfill(key, "failed")
            raise SourceError(
                f"{key}: version history unavailable ({exc.message}); the trial is still watched"
            ) from exc
        self.store.set_backfill(key, "done")
        return added

    def _add_history(self, key: str, snapshots: list[Snapshot]) -> int:
        for snapshot in snapshots:
            if self.archive:
                self.archive.put(key, snapshot.record.last_update_posted, snapshot.raw, snapshot.raw_hash)
        if self.store.latest_head(key) is None:
            return sum(
                1
                for s in snapshots
                if ingest(self.store, s, self.now, backfill=True).status in ("new", "changed", "refreshed")
            )
        first = self.store.versions(key)[0]
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
        return self.store.prepend_versions(key, chain, diff_records(chain[-1].record, first.record))

    # --- saved searches ---------------------------------------------------------------

    def refresh_query(self, target: str) -> list[tuple[str, Change]]:
        """Run a saved search; trials entering or leaving it are events, except
        on its first run, which sets the baseline."""
        hits = {hit.nct_id: hit for hit in self.client.search(target)}
        before = self.store.members(target)
        now = self.now()
        if before is None:
            entered, left, events = list(hits), [], []
        else:
            entered = [k for k in hits if k not in before]
            left = [k for k in before if k not in hits]
            events = [(k, _membership(target, ChangeKind.ADDED, hits[k].title, hits[k].status)) for k in entered]
            events += [(k, _membership(target, ChangeKind.REMOVED, *before[k])) for k in left]
        routed = [(key, event, self.routes(key, [event]) if self.routes else []) for key, event in events]
        self.store.update_members(target, [(k, hits[k].title, hits[k].status) for k in entered], left, routed, now)
        for key in entered:
            if self.store.latest_head(key) is None and self.store.backfill_state(key) is None:
                self.store.set_backfill(key, "pending")
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
        start = self.client.requests
        try:
            self._cycle(report, full_refresh_days, backfill_per_cycle, trials, queries, f".{scope}" if scope else "")
        except (SourceError, Stopped) as exc:
            report.complete = False
            report.problems.append(f"ClinicalTrials.gov: {exc.message}" if isinstance(exc, SourceError) else str(exc))
            log.warning("cycle abandoned: %s", exc)
        report.requests = self.client.requests - start
        return report

    def _watched(self, trials: list[str] | None, queries: list[str] | None) -> list[str]:
        if trials is None and queries is None:
            return self.store.watched_trials()
        members = [key for query in queries or () for key in (self.store.members(query) or {})]
        return sorted(set(trials or ()) | set(members))

    def _cycle(self, report, full_refresh_days, backfill_per_cycle, trials, queries, suffix) -> None:
        stamp = self.client.data_timestamp()
        watched = self._watched(trials, queries)
        seen = self.store.last_seen()
        waiting = [k for k in watched if k not in seen]
        pending = [k for k in self.store.pending_backfills(10_000) if k in set(watched)][:backfill_per_cycle]
        last_full = self.store.get_state(LAST_FULL + suffix)
        full_due = last_full is None or self.now() - datetime.fromisoformat(last_full) > timedelta(
            days=full_refresh_days
        )
        if stamp == self.store.get_state(STAMP + suffix) and not waiting and not pending and not full_due:
            report.skipped = True
            return
        searches = queries if queries is not None else [w.target for w in self.store.watches() if w.kind == "query"]
        for query in searches:
            report.membership += self.refresh_query(query)
        watched = self._watched(trials, queries)
        pending = [k for k in self.store.pending_backfills(10_000) if k in set(watched)][:backfill_per_cycle]
        for key in pending:
            if self.should_stop():
                raise Stopped("stopped before the backfills; they are done next cycle")
            try:
                report.backfilled += self.backfill(key)
            except MonitorError as exc:
                self._problem(report, key, exc.message)
            except Exception as exc:  # the per-trial boundary
                log.exception("%s: unexpected error in the backfill", key)
                self._problem(report, key, f"backfill failed unexpectedly ({type(exc).__name__}: {exc}); see the log")
        seen = self.store.last_seen()
        whole = trials is None and queries is None and watches_registry(self)
        if whole and (full_due or not loaded(self, suffix)):
            due, mark = [], load_registry(self, report, suffix)
        elif full_due:
            due, mark = watched, None
            report.plan, report.plan_reason = "ids", "the full refresh: every watched trial in full"
        else:
            searches = list(queries) if queries and not trials else None
            probe, mark = plan_probe(self, report, watched, searches, suffix, whole)
            report.probed = len(probe)
            due = [
                nct
                for nct in (probe if whole else watched)
                if nct in probe and _moved(probe[nct], seen.get(nct, (None, None)))
            ]
        if due:
            self.fetch(due, report)
        if full_due:
            self.store.set_state(LAST_FULL + suffix, self.now().isoformat())
            mark = mark or latest_date(self.store.last_seen().get(k, (None, None))[0] for k in watched)
        advance_watermark(self.store, suffix, mark)
        self.store.set_state(STAMP + suffix, stamp)


def _moved(now: tuple[str, str | None], before: tuple[str | None, str | None]) -> bool:
    """Whether the registry's (date, status) of a trial moved since we last saw it."""
    date, status = now
    seen_date, seen_status = before
    return date != seen_date or (seen_status is not None and status != seen_status)


def _membership(target: str, kind: ChangeKind, title: str | None, status: str | None) -> Change:
    entering = kind == ChangeKind.ADDED
    value = {"query": target, "title": title, "status": status}
    verb = "Entered" if entering else "Left"
    return Change(
        category=Category.MEMBERSHIP,
        field="membership",
        change=kind,
        old=None if entering else value,
        new=value if entering else None,
        severity=Severity.MAJOR if entering else Severity.MINOR,
        summary=f"{verb} saved search {target!r}: {title or 'untitled'}" + (f" ({status})" if status else ""),
    )
