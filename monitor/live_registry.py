"""Watching the whole registry (``monitor watch add --all``, or a watch group with ``all: true``):
the first load and its reconciliation.

The first load pages through every study on ClinicalTrials.gov in full
(:func:`monitor.sources.ctgov_load.registry_pages`), each study through the per-trial boundary
of :meth:`monitor.live.Live._store`.  It is bounded (the registry's ``totalCount`` and 5%, or
``limits.max_registry_studies``; in the daemon
``ctgov.load_pages_per_cycle`` pages a cycle), stops between two trials when asked to
(SIGTERM), and resumes: the token of the page being read is kept in service state after every
page, with the pages and trials read so far, so a load stopped part-way (or a slice of it)
starts again at that page, and what was stored already is recognised by its raw payload and
not stored again.  A token the registry no longer accepts restarts the load from the first
page, once, with one log line.

Later cycles ask only what changed (:mod:`monitor.live_plan`); every ``ctgov.full_refresh_days``
the whole listing is read again, ids, dates and statuses only, 1,000 a page (a reconciliation):
a trial whose date or status moved, or that we never saw, is fetched in full, and a trial we
hold that the registry no longer lists is reported, as the id probe reports it for a smaller
watch set.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from monitor.errors import Stopped
from monitor.live_plan import LAST_FULL, advance_watermark, latest_date
from monitor.normalize.identity import NCT_ID
from monitor.seen import LastSeen
from monitor.sources.base import moved
from monitor.sources.ctgov_changes import listing
from monitor.sources.ctgov_load import FULL_PAGE, PLACE, registry_pages

if TYPE_CHECKING:  # the orchestrator imports this module
    from monitor.live import CycleReport, Live

log = logging.getLogger(__name__)

REGISTRY = ("registry", "all")  # the watch (kind, target) of `watch add --all`
TOKEN = "ctgov.load_token"  # + scope suffix: the page a stopped load resumes at ("" when none)
STOPPED = "stopped part-way through the registry; the next run resumes at the page it stopped in"
LOADED = "ctgov.loaded_at"  # + scope suffix: when the last whole pass ended
PAGES = "ctgov.load_pages"  # + scope suffix: pages read by the load in progress (or the last one)
TRIALS = "ctgov.load_trials"  # + scope suffix: and the trials on them
TOTAL = "ctgov.load_total"  # + scope suffix: the registry's totalCount when the load in progress started
STARTED = "ctgov.load_started"  # + scope suffix: the day the load in progress started (its watermark at most)
RECONCILED = "ctgov.reconciled"  # + scope suffix: "TIME TRIALS": the last reconciliation, and what it listed


def registry_watched(store) -> bool:
    """Whether the whole registry is watched (`monitor watch add --all` or a group's `all: true`)."""
    return any((w.kind, w.target) == REGISTRY for w in store.watches.all())


def watches_registry(live: Live) -> bool:
    return registry_watched(live.store)


def loaded(live: Live, suffix: str = "") -> bool:
    return bool(live.store.service.get_state(LOADED + suffix))


def begin_pass(store, suffix: str, today) -> None:
    """A pass from the first page: its day, and the last pass's unreadable studies forgotten (this
    pass names those still there)."""
    store.service.set_state(STARTED + suffix, today.isoformat())
    store.watches.forget_places(PLACE)


def load_registry(
    live: Live, report: CycleReport, suffix: str = "", page_size: int | None = None, pages: int | None = None
) -> tuple[bool, str | None]:
    """Read every study (resuming a stopped pass), store what is new or changed, at most
    ``pages`` pages (None: to the end).  Returns whether the pass reached the end, and the
    latest last-update date seen (the watermark of the change queries that follow)."""
    store = live.store
    token = store.service.get_state(TOKEN + suffix) or None
    from_start = token is None
    done = [0 if from_start else int(store.service.get_state(PAGES + suffix) or 0)]
    done.append(0 if from_start else int(store.service.get_state(TRIALS + suffix) or 0))
    report.plan = "load"
    report.plan_reason = "the whole registry, page by page" + (
        f" (resumed at page {done[0] + 1:,}, {done[1]:,} trials read)" if token else ""
    )
    log.info("plan=load: %s", report.plan_reason)
    listed: set[int] = set()  # NCT numbers: the whole registry's in a few dozen MB
    latest: str | None = None  # the latest last-update date read so far (not yet today's future)
    today = live.now().date()
    if from_start:
        begin_pass(store, suffix, today)

    def restarted() -> None:  # the stored token was refused: the pass starts again
        nonlocal from_start
        from_start, done[:] = True, [0, 0]
        begin_pass(store, suffix, today)

    read = 0
    total = store.service.get_state(TOTAL + suffix) if not from_start else None
    passing = registry_pages(
        live.client, token, page_size or FULL_PAGE, restarted, (done[0], done[1]), int(total) if total else None
    )
    for page in passing:
        if live.should_stop():
            raise Stopped(STOPPED)
        answers, dates = [], [latest]  # this page's dates beside the latest so far: no list of them all
        for key, why in page.unread.items():  # whose it is cannot be read: a problem named by its place
            live._problem(report, key, why)
        for key, why in page.refused.items():  # of the wrong shape: that trial's problem, never stored
            listed.add(_number(key))
            live._problem(report, key, why)
        for key, date, answer in page.studies:  # each one checked by registry_pages
            listed.add(_number(key))
            dates.append(date)
            answers.append((key, answer))
        latest = latest_date(dates, not_after=today)
        try:
            live.store_answers(answers, [key for key, _ in answers], report, what="load")
        except Stopped:
            raise Stopped(STOPPED) from None
        report.probed += len(page.studies)
        done[0], done[1], read = done[0] + 1, done[1] + len(page.studies), read + 1
        states = {TOKEN + suffix: page.next_token or "", PAGES + suffix: str(done[0]), TRIALS + suffix: str(done[1])}
        store.service.set_states({**states, **({TOTAL + suffix: str(page.total)} if page.total is not None else {})})
        if page.next_token and pages is not None and read >= pages:
            report.plan_reason += f": {done[0]:,} pages, {done[1]:,} trials read so far; the next cycle goes on"
            return False, None
    if from_start:
        _gone(live, report, store.watches.held_keys(), listed)
    store.service.set_state(LOADED + suffix, live.now().isoformat())
    # a pass of many cycles: a page read early may have changed since, so the change queries
    # that follow ask from the day the pass started at the latest
    started = store.service.get_state(STARTED + suffix) or today.isoformat()
    return True, min(latest, started) if latest else None


def reconcile(live: Live, report: CycleReport, seen: Mapping, suffix: str = "") -> tuple[list[str], str | None]:
    """The periodic reconciliation of the whole registry: every study's id, date and status,
    1,000 a page; returns the trials to fetch in full (their date or status moved, or we never
    saw them) and the latest date listed.  A trial we hold that is no longer listed is reported.
    What we saw is read a page's trials at a time, and the listing is kept as NCT numbers: the
    whole registry's reconciliation holds no 570,000-entry mapping of strings."""
    report.plan, report.plan_reason = "reconcile", "every study's id, date and status, 1,000 a page"
    log.info("plan=reconcile: %s", report.plan_reason)
    listed: set[int] = set()
    due: list[str] = []
    latest: str | None = None
    today = live.now().date()
    lazy = isinstance(seen, LastSeen) and not seen.whole
    for page in listing(live.client):
        if live.should_stop():
            raise Stopped("stopped part-way through the reconciliation; the next cycle does it again")
        known = live.store.watches.last_seen(page) if lazy else seen  # this page's trials only
        for key, now in page.items():
            listed.add(_number(key))
            if moved(now, known.get(key)):
                due.append(key)
        latest = latest_date([latest, *(d for d, _ in page.values())], not_after=today)
    report.probed = len(listed)
    _gone(live, report, live.store.watches.held_keys() if lazy else seen, listed)
    live.store.service.set_state(RECONCILED + suffix, f"{live.now().isoformat()} {len(listed)}")
    return due, latest


def _number(key: str) -> int:
    """An NCT id as its number (a listing of every study kept small); -1 for anything else."""
    return int(key[3:]) if NCT_ID.fullmatch(key) else -1


def _gone(live: Live, report: CycleReport, held: Iterable[str], listed: set[int]) -> None:
    """Each trial of ``held`` the registry's listing (NCT numbers) no longer has: that trial's problem."""
    for key in sorted({k for k in held if NCT_ID.fullmatch(k) and _number(k) not in listed}):  # held: maybe twice
        live._problem(report, key, "not found on ClinicalTrials.gov (no longer in its listing)")


def progress(state: dict[str, str], suffix: str = "") -> dict:
    """The whole registry's load and reconciliation, as ``monitor status`` shows them."""
    token, at = state.get(TOKEN + suffix), state.get(LOADED + suffix)
    reconciled = (state.get(RECONCILED + suffix) or "").split()
    return {
        "loaded": bool(at),
        "loaded_at": at or None,
        "pages": int(state.get(PAGES + suffix) or 0),
        "trials": int(state.get(TRIALS + suffix) or 0),
        "resumes_at_page": bool(token),
        "watermark": state.get(f"ctgov.watermark{suffix}") or None,
        "reconciled_at": reconciled[0] if reconciled else None,
        "reconciled_trials": int(reconciled[1]) if len(reconciled) > 1 else None,
    }


def first_load(live: Live, report: CycleReport, page_size: int = FULL_PAGE) -> CycleReport:
    """``watch add --all``: watch the whole registry and load it now (or resume the load), into
    ``report``. A stop or a registry failure part-way leaves what was stored, and the page to resume at."""
    live.store.watches.add_watch(*REGISTRY, live.now())
    start = live.client.requests
    try:
        with live.workers.session():  # one pool for the whole load, not one a page
            _, mark = load_registry(live, report, "", page_size)
        live.store.service.set_state(f"{live.source.name}.{LAST_FULL}", live.now().isoformat())
        advance_watermark(live.store, "", mark)
    finally:
        report.requests = live.client.requests - start
    return report
