"""Which plan a polling cycle runs: probe every watched id, or ask what changed since a watermark.

The two plans answer the same question (each trial's last-update date and status) at
different costs, counted in requests after ``GET /version``:

* **ids**: ``filter.ids`` probes, ``ceil(watched / 1,000)`` requests; it also sees a trial the
  registry no longer has, and a status that moved without a new date.
* **changes**: ``filter.advanced=AREA[LastUpdatePostDate]RANGE[day,MAX]``
  (:mod:`monitor.sources.ctgov_changes`), ``ceil(expected changes / 1,000)`` pages, at least
  one, registry-wide or within each saved search of a group that watches only searches.  The
  expected count is the updates per day the last such change query found (registry-wide: 5,000
  a day before any) times the days asked (the watermark day to today, both included).

The cheaper plan runs; a tie, or no watermark yet, keeps the id probe.  The watermark is the
latest last-update date a complete cycle saw, at least the day of the ``dataTimestamp`` it
started from (:func:`finish_watermark`), kept in service state per scope; the change query
asks from the watermark day itself, inclusive (one day of overlap: a day's updates can be
published late), and what it answers twice is deduplicated as the probe's answer is: a
trial is fetched only when its date or status moved from what we last saw, and versions are
keyed by registry date anyway.
Saved searches are change-driven too: between two full refreshes a search with a baseline is
asked only what changed within it since the watermark (:func:`search_changes`): a trial it
answers that is not a member joins (the ``membership`` event users see), a member it answers has
its title and status refreshed.  A member the plan's answer says was updated since then, but that
the search's change query did not answer, is asked once more by id within the search
(:func:`search_leaves`): not answered, it has left.  A member leaving without an update the plan
saw (the plan asked within the searches only, or the registry deleted it) is seen by the full
refresh, which pages each search in full as before (:meth:`monitor.live.Live.refresh_query`).
The change plan cannot see deletions or status-only moves: the periodic full refresh
(``ctgov.full_refresh_days``, 7 by default) still fetches every watched trial and reports
those, and :meth:`monitor.live.Live.fetch` skips normalizing a record whose raw payload is
byte-identical to its latest stored version.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from datetime import date

from monitor.checking import Result
from monitor.model import Category, Change, ChangeKind, Severity
from monitor.prepare import Decoded
from monitor.sources.ctgov import PAGE_LIMIT
from monitor.sources.ctgov_changes import ask_from, change_pages, changed_since, still_within
from monitor.sources.files import raw_hash
from monitor.sources.queries import parse_query

log = logging.getLogger(__name__)

LAST_FULL = "last_full_refresh"  # state key, after the source's name (+ group): the last full refresh
WATERMARK = "ctgov.watermark"  # + scope suffix: the latest last-update date a complete cycle saw
PER_DAY = "ctgov.changes_per_day"  # registry-wide updates per day asked, as the last change query found
# (+ scope suffix + ".searches": the same within a group's saved searches)
DEFAULT_PER_DAY = 5_000  # registry-wide updates per registry day, before we have seen any ("a few thousand")


@dataclass(frozen=True)
class Plan:
    kind: str  # "ids" or "changes"
    reason: str  # one line, for -v and the cycle report
    since: str | None = None  # the first day the change query asks for
    searches: tuple[str, ...] = ()  # change queries within these saved searches (else registry-wide)


def choose_plan(
    watched: int,
    watermark: str | None,
    today: date,
    per_day: float = DEFAULT_PER_DAY,
    searches: dict[str, int] | None = None,
    registry_wide_only: bool = False,
    within_per_day: float | None = None,
) -> Plan:
    """The cheaper plan for ``watched`` trials.  ``searches`` (saved search -> members) is
    given when the watched set is exactly their members; ``registry_wide_only`` when the
    watched set is the whole registry (``watch add --all``: no id probe)."""
    probes = math.ceil(watched / PAGE_LIMIT)
    if watermark is None:
        return Plan("ids", f"{_n(probes, 'probe request')}: no watermark yet (the first cycle)")
    since = ask_from(watermark)
    days = max((today - date.fromisoformat(since)).days, 0) + 1  # inclusive of both ends
    expected = per_day * days
    wide = max(1, math.ceil(expected / PAGE_LIMIT))
    options = [(wide, "registry-wide", ())]
    if searches:
        inside = (per_day if within_per_day is None else within_per_day) * days
        within = sum(max(1, math.ceil(min(n, inside) / PAGE_LIMIT)) for n in searches.values())
        options.append((within, "within the saved searches", tuple(searches)))
    pages, where, chosen = min(options, key=lambda o: o[0])
    change_cost = f"about {_n(pages, 'change-query page')} {where} since {since}"
    if registry_wide_only:
        return Plan("changes", f"{change_cost} (the whole registry is watched: no id probe)", since, chosen)
    if pages < probes:
        return Plan("changes", f"{change_cost} vs {_n(probes, 'probe request')}", since, chosen)
    return Plan("ids", f"{_n(probes, 'probe request')} vs {change_cost}")


def plan_probe(live, report, watched: list[str], searches: list[str] | None, suffix: str, whole: bool):
    """Choose the plan, run it, and say which ran and why (``report.plan``, a ``-v`` log line).
    Returns NCT id -> (last-update date, status) of the trials to compare with what we saw,
    and the latest last-update date the registry answered (the next watermark)."""
    store, today = live.store, live.now().date()
    members = {q: len(store.watches.members(q) or {}) for q in searches} if searches else None
    per_day = float(store.service.get_state(PER_DAY) or DEFAULT_PER_DAY)
    within = store.service.get_state(PER_DAY + suffix + ".searches")
    watermark = store.service.get_state(WATERMARK + suffix)
    plan = choose_plan(len(watched), watermark, today, per_day, members, whole, float(within) if within else None)
    report.plan, report.plan_reason = plan.kind, plan.reason
    log.info("plan=%s: %s", plan.kind, plan.reason)
    if plan.kind == "changes":
        found = run_change_query(live.client, plan, getattr(report, "asked", None))
        learned = PER_DAY + (suffix + ".searches" if plan.searches else "")
        store.service.set_state(learned, f"{learned_per_day(len(found), plan, today):.1f}")
        mark = latest_date((d for d, _ in found.values()), not_after=today)
        search_leaves(live, report, found)
        if whole:
            return found, mark
        wanted = set(watched)
        return {k: v for k, v in found.items() if k in wanted}, mark
    probe = live.source.probe(watched, lambda nct, why: live._problem(report, nct, why))
    search_leaves(live, report, probe)
    return probe, latest_date((d for d, _ in probe.values()), not_after=today)


def advance_watermark(store, suffix: str, mark: str | None) -> None:
    """Keep the later of the stored watermark and ``mark`` (a complete cycle's latest date)."""
    before = store.service.get_state(WATERMARK + suffix)
    if mark and (before is None or mark > before):
        store.service.set_state(WATERMARK + suffix, mark)


def finish_watermark(cycle) -> None:
    """Advance the watermark to the latest date the complete cycle saw, and at least to the day of the
    registry's ``dataTimestamp`` the cycle started from: its plan (the id probe, the change query, a
    full refresh, a reconciliation) read the registry after ``/version`` answered, so every update
    published before that is seen.  (After a full refresh the latest record date is usually days or
    years old: the next change query would ask from it, and the id probe would look cheaper.)  A first
    load of many cycles keeps the day it started (:func:`monitor.live_registry.load_registry`)."""
    store, today = cycle.live.store, cycle.live.now().date()
    mark = cycle.mark
    if cycle.report.plan != "load":
        mark = latest_date([mark, stamp_day(cycle.changed.watermark)], not_after=today)
    if cycle.full_due and not mark:  # what was seen is read once, not once per watched trial
        seen = store.watches.last_seen()
        mark = latest_date((seen.get(k, (None, None))[0] for k in cycle.watched), today)
    advance_watermark(store, cycle.suffix, mark)


def stamp_day(stamp: str | None) -> str | None:
    """The day of a ``dataTimestamp`` (``2026-03-10T09:00:00`` -> ``2026-03-10``), None when it has none."""
    try:
        return date.fromisoformat((stamp or "")[:10]).isoformat()
    except ValueError:
        return None


def run_change_query(client, plan: Plan, asked: dict | None = None) -> dict[str, tuple[str, str | None]]:
    """The change query of ``plan``: NCT id -> (last-update date, status).  ``asked``: the change
    queries this cycle already ran ((day, search) -> answer), not asked again."""
    assert plan.since is not None
    if not plan.searches:
        return changed_since(client, plan.since)
    found: dict[str, tuple[str, str | None]] = {}
    for search in plan.searches:
        answer = (asked or {}).get((plan.since, search))
        if answer is None:
            found.update(changed_since(client, plan.since, search))
        else:
            found.update((k, (d, status)) for k, (d, status, _) in answer.items())
    return found


def search_since(live, suffix: str, full_due: bool) -> str | None:
    """The day saved searches are asked from (their change query), or None when they are paged in
    full: at a full refresh (it sees trials leaving) and before any watermark."""
    watermark = live.store.service.get_state(WATERMARK + suffix)
    if full_due or watermark is None:
        return None
    return ask_from(watermark)


def search_changes(live, target: str, since: str, report) -> list[tuple[str, Change]] | None:
    """A saved search's trials updated since ``since`` (one change query within it, 1,000 a page):
    those not yet members join it, with their ``membership`` event; members have their title and
    status refreshed.  None before the search's first run (its baseline pages it in full)."""
    store = live.store
    before = store.watches.members(target)
    if before is None:
        return None
    hits: dict[str, tuple[str, str | None, str | None]] = {}
    for page in change_pages(live.client, since, target):
        hits.update(page)
    report.asked[(since, target)] = hits  # the plan's change query within this search, answered already
    entered = [(k, title, status) for k, (_, status, title) in hits.items() if k not in before]
    updated = [(k, t, st) for k, (_, st, t) in hits.items() if k in before and before[k] != (t, st)]
    events = [(k, membership_event(target, ChangeKind.ADDED, title, status)) for k, title, status in entered]
    store.watches.update_members(target, entered, [], live.routed(events), live.now())
    store.watches.refresh_members(target, updated)
    pending_backfills(store, [key for key, _, _ in entered])
    return events


def search_leaves(live, report, answered: dict[str, tuple[str, str | None]]) -> None:
    """Members of the saved searches asked this cycle (``report.asked``) that ``answered`` (the
    plan's answer: NCT id -> (date, status)) says were updated on or after the day the search was
    asked from, but that its change query did not answer: asked again by id within the search, and
    those still not answered have left it, with the ``membership`` event users see."""
    for (day, search), hits in list(report.asked.items()):
        members = live.store.watches.members(search) or {}
        gone = sorted(k for k in members if k not in hits and k in answered and (answered[k][0] or "") >= day)
        if not gone or any(key == "filter.ids" for key, _ in parse_query(search)):
            continue
        left = [k for k in gone if k not in still_within(live.client, search, gone)]
        events = [(k, membership_event(search, ChangeKind.REMOVED, *members[k])) for k in left]
        if left:
            live.store.watches.update_members(search, [], left, live.routed(events), live.now())
            report.membership += events


def pending_backfills(store, entered: list[str]) -> None:
    """Trials that joined a saved search and are not stored yet: their history is fetched next."""
    for key in entered:
        if store.versions.latest_head(key) is None and store.watches.backfill_state(key) is None:
            store.watches.set_backfill(key, "pending")


def learned_per_day(found: int, plan: Plan, today: date) -> float:
    """Changes per day asked, for the next cycle's estimate (at least one)."""
    assert plan.since is not None
    days = max((today - date.fromisoformat(plan.since)).days + 1, 1)
    return max(found / days, 1.0)


def same_raw(head, key: str, answer) -> tuple[Result, tuple[str | None, str | None]] | None:
    """An ``unchanged`` result, with the (date, status) seen, when ``answer`` (a ClinicalTrials.gov
    study as received) is byte-identical to the latest stored version's raw payload: not normalized.
    ``head``: the trial's latest head (:class:`monitor.store.VersionHead`), read with the fetch's
    other heads: its raw hash answers without a query of its own."""
    study, raw = getattr(answer, "study", None), getattr(answer, "raw", None)
    whole = study is not None or isinstance(answer, Decoded)  # a worker's study: its text is decoded here
    if not whole or raw is None or head.raw_hash is None or raw_hash(raw) != head.raw_hash:
        return None
    if study is None:  # decoded by a worker, which kept only its text: read again, as it is the stored one
        study = json.loads(raw)
    status = study["protocolSection"].get("statusModule") or {}
    title = study["protocolSection"]["identificationModule"].get("briefTitle") or ""
    seen = ((status.get("lastUpdatePostDateStruct") or {}).get("date"), status.get("overallStatus"))
    note = f"same raw payload as version {head.number}"
    return Result(key, title, "unchanged", head.number, answer.origin, note=note), seen


def latest_date(dates, not_after: date | None = None) -> str | None:
    """The latest full ``YYYY-MM-DD`` date among ``dates`` (None when there is none); with
    ``not_after``, a later date is left out (a record dated in the future must not become the
    watermark: every change query after it would ask from that day and miss every change)."""
    full = [d for d in dates if isinstance(d, str) and len(d) == 10]
    if not_after is not None:
        full = [d for d in full if d <= not_after.isoformat()]
    return max(full) if full else None


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def membership_event(target: str, kind: ChangeKind, title: str | None, status: str | None) -> Change:
    """A saved search's event: a trial entering or leaving it."""
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
