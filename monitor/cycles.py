"""One watch group's cycle, whatever its source: the unit the daemon schedules.

A snapshot group loads its folders; a registry group (``source: ctgov``, or any
source of :mod:`monitor.sources.registry`) makes sure its trials and saved
searches are watched, then runs a polling cycle over them through its source.
Either way the outcome is counted the same way and logged as one line:

    cycle group=lupus probed=12 fetched=1 new=0 changed=1 notified=0 failed=0 seconds=0.42 plan=ids

(``plan``: how the registry was asked what changed, :mod:`monitor.live_plan`; ``-v`` logs why.)

A group never raises: any failure, expected or not, is counted, logged, and kept
as the group's last error, so ``monitor status`` always says what went wrong.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from monitor.archive import SnapshotArchive
from monitor.checking import Routes
from monitor.clock import Clock, utc_now
from monitor.config import Settings, WatchGroup
from monitor.errors import MonitorError
from monitor.expected import RULES
from monitor.expected_events import record_expected
from monitor.live import Live
from monitor.live_registry import REGISTRY
from monitor.model import Change
from monitor.notify import Notifier
from monitor.pipeline import load
from monitor.results import Results
from monitor.routing import router_for
from monitor.seen import fingerprint
from monitor.sources.registry import source_named
from monitor.store import Store

log = logging.getLogger(__name__)


@dataclass
class GroupOutcome:
    group: str
    probed: int = 0
    fetched: int = 0
    failed: int = 0
    notified: int = 0
    seconds: float = 0.0
    complete: bool = True
    results: Results = field(default_factory=Results)  # the first LISTED in full, the others counted
    membership: list[tuple[str, Change]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    expected: list[tuple[str, Change]] = field(default_factory=list)  # expected-event rules fired or resolved
    plan: str = ""  # which plan the registry cycle ran ("ids", "changes", "load", "reconcile"): monitor.live_plan
    loading: bool = False  # a slice of the whole registry's first load ran; the daemon runs the next one at once

    def count(self, status: str) -> int:
        return self.results.count_of(status)

    def line(self) -> str:
        return (
            f"cycle group={self.group} probed={self.probed} fetched={self.fetched} new={self.count('new')} "
            f"changed={self.count('changed') + len(self.membership)} notified={self.notified} failed={self.failed} "
            f"seconds={self.seconds:.2f}"
            + (f" plan={self.plan}" if self.plan else "")
            + (" loading=1" if self.loading else "")
            + ("" if self.complete else " incomplete=1")
        )


def make_live(
    store: Store,
    settings: Settings,
    now: Clock = utc_now,
    should_stop=lambda: False,
    progress=None,
    group: str | None = None,
    source: str = "ctgov",
) -> Live:
    """The polling cycle over the source users call ``source`` (:data:`monitor.sources.registry.SOURCES`)."""
    watches = settings.group(group) if group and any(g.name == group for g in settings.watches) else None
    return Live(
        store,
        source_named(source).open(settings, should_stop, watches),
        SnapshotArchive(settings.snapshots) if settings.storage.archive else None,
        now=now,
        progress=progress,
        should_stop=should_stop,
        routes=routes_for(store, settings, group),
    )


def routes_for(store: Store, settings: Settings, group: str | None = None) -> Routes | None:
    """Which routes hear of a trial's changes, found by ``group``; None without routes."""
    if not settings.notifications.routes:
        return None
    router = router_for(
        settings, lambda query: (store.watches.members(query) or {}).keys(), lambda key: phases_of(store, key)
    )
    return lambda key, changes: router.routes_for(key, changes, group)


def phases_of(store: Store, key: str) -> tuple[str, ...]:
    """The phases of a trial's latest stored version (none for a trial not stored yet)."""
    latest = store.versions.latest_version(key)
    return latest.record.phases if latest else ()


def run_group(
    store: Store,
    settings: Settings,
    group: WatchGroup,
    now: Clock = utc_now,
    should_stop: Callable[[], bool] = lambda: False,
) -> GroupOutcome:
    """Run one group's cycle; a failure is counted and reported, never raised."""
    outcome = GroupOutcome(group.name)
    started = time.perf_counter()
    try:
        store.fresh_connections()
        if group.snapshots:
            results = load(
                store, list(group.snapshots), now, routes_for(store, settings, group.name), limits=settings.limits
            )
            failed = [r for r in results if r.status == "failed"]  # each listed, its problem recorded
            outcome.results += results.succeeded()
            outcome.fetched += results.total - len(failed)
            outcome.failed += len(failed)
            outcome.problems += [f"{r.key}: {r.note}" for r in failed]
        if group.trials or group.queries or group.all:
            _run_ctgov(store, settings, group, now, should_stop, outcome)
    except MonitorError as exc:
        _failed(outcome, f"{group.name}: {exc.message}")
    except Exception as exc:  # a group never takes the daemon down, and always says why it failed
        log.exception("cycle group=%s failed unexpectedly", group.name)
        _failed(outcome, f"{group.name}: unexpected error ({type(exc).__name__}: {exc}); see the log")
    try:
        outcome.expected = expected_events(store, settings, group, outcome, now)
    except Exception as exc:  # the rules never stop a cycle's notifications
        log.exception("%s: expected-event rules failed", group.name)
        outcome.problems.append(f"{group.name}: expected-event rules failed: {exc}")
    if settings.notifications.routes and not should_stop():  # when stopping, deliveries wait in the outbox

        try:
            sent = Notifier(store, settings, now=now).send_due()
            outcome.notified = sent.sent
            outcome.problems += sent.problems
        except Exception as exc:  # deliveries stay pending and are tried again
            log.exception("group %s: sending notifications failed unexpectedly", group.name)
            outcome.problems.append(f"{group.name}: sending notifications failed ({type(exc).__name__}: {exc})")
    outcome.seconds = time.perf_counter() - started
    stamp = now().isoformat()
    store.service.set_state(f"group.{group.name}.last_run", stamp)
    store.service.set_state(f"group.{group.name}.last_result", outcome.line())
    store.service.set_state(f"group.{group.name}.last_error", outcome.problems[-1] if outcome.problems else "")
    return outcome


def _failed(outcome: GroupOutcome, problem: str) -> None:
    outcome.failed += 1
    outcome.complete = False
    outcome.problems.append(problem)


EVALUATED = "expected.evaluated"  # + group: the UTC date of the group's last pass over the trials due
RULES_STATE = "expected.rules"  # the rules and their settings the stored turning days were computed for
REGISTERED = "watches.registered"  # + group: the fingerprint of the group's watches when last registered


def expected_events(store: Store, settings: Settings, group: WatchGroup, outcome: GroupOutcome, now: Clock):
    """The expected-event rules over the group's trials, on ``now``'s date (:mod:`monitor.expected_events`).

    The rules read a trial's latest version and the date, so they can only turn on a new version or a
    new day.  Each cycle evaluates the trials it stored a version of, those stored but never
    evaluated (one query over the heads finds them, usually none) and those given a new version
    since their evaluation by `monitor load`, `fetch`, ... (their day is unknown); the first cycle of each UTC day
    also evaluates the group's trials whose next turning day (``expected_seen.due``, written at each
    evaluation) has come: a few hundred a day, not every watched record.  When the rules or their
    settings change, every trial's day is forgotten and the next pass evaluates them all once.
    An unchanged cycle reads no record and no id list."""
    stored = outcome.results.stored
    today, state = now().date().isoformat(), f"{EVALUATED}.{group.name}"
    rules = f"{','.join(RULES)}|{settings.expected!r}"
    if store.service.get_state(RULES_STATE) != rules:
        store.expected.forget_due()
        store.service.set_state(RULES_STATE, rules)
    whole_day = store.service.get_state(state) != today
    fresh = store.expected.unevaluated()
    due = store.expected.due_keys(now().date()) if whole_day else set()
    events = []
    if stored or fresh or due:  # else nothing to evaluate: no id list read
        keys = stored | fresh | due
        if not group.all:  # the whole registry holds every stored trial; a group, its own
            held = set(group.trials) | outcome.results.keys
            for query in group.queries:
                held |= set((store.watches.members(query) or {}).keys())
            keys &= held
        events = record_expected(store, keys, now(), settings.expected, routes_for(store, settings, group.name))
    if whole_day:
        store.service.set_state(state, today)
    return events


def register_watches(store: Store, group: WatchGroup, now: Clock) -> list[str]:
    """Watch the group's trials, saved searches (and the whole registry, for ``all: true``) when the
    configuration or the watches changed since the last time (the group's fingerprint and the
    watches' tally): an unchanged cycle reads no watch.  Returns the trials newly watched."""
    mark = f"{fingerprint(store, group.trials, group.queries)}:{int(bool(group.all))}:"
    state = f"{REGISTERED}.{group.name}"
    if store.service.get_state(state) == mark + store.watches.tally():
        return []
    if group.all:  # the whole registry: the same watch, and state, as `monitor watch add --all`
        store.watches.ensure_watches(REGISTRY[0], [REGISTRY[1]], now())
    added = store.watches.ensure_watches("trial", group.trials, now())
    store.watches.ensure_watches("query", group.queries, now())
    store.service.set_state(state, mark + store.watches.tally())
    return added


def _run_ctgov(store, settings, group, now, should_stop, outcome: GroupOutcome) -> None:
    """A registry group's cycle through its source (named for the first one; any source runs here)."""
    # Watches are registered only when the configuration changed: one query when it did not.
    backfill = settings.ctgov.backfill and source_named(group.source).keeps_history and not group.all
    added = register_watches(store, group, now)
    if added and backfill:
        stored = store.versions.latest_heads(added)
        for key in added:
            if key not in stored:
                store.watches.set_backfill(key, "pending")
    live = make_live(store, settings, now, should_stop, group=group.name, source=group.source)
    live.load_pages, live.load_page_size = settings.ctgov.load_pages_per_cycle, settings.ctgov.load_page_size
    try:
        report = live.cycle(
            full_refresh_days=settings.ctgov.full_refresh_days,
            backfill_per_cycle=settings.ctgov.backfill_per_cycle if backfill else 0,
            trials=group.trials,  # the configuration's tuple: its fingerprint is computed once (monitor.seen)
            queries=list(group.queries),
            scope="" if group.all else group.name,
            registry=group.all,
        )
    finally:
        live.source.close()
    outcome.probed += report.probed
    outcome.plan, outcome.loading = report.plan, report.loading
    outcome.fetched += report.fetched
    outcome.results += report.results
    outcome.membership += report.membership
    outcome.problems += report.problems
    outcome.failed += len(report.problems)
    outcome.complete = outcome.complete and report.complete
