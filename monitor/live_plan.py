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
latest last-update date a complete cycle saw, kept in service state per scope; the change
query asks from the watermark day itself, inclusive (one day of overlap: a day's updates can
be published late), and what it answers twice is deduplicated as the probe's answer is: a
trial is fetched only when its date or status moved from what we last saw, and versions are
keyed by registry date anyway.
The change plan cannot see deletions or status-only moves: the periodic full refresh
(``ctgov.full_refresh_days``, 7 by default) still fetches every watched trial and reports
those, and :meth:`monitor.live.Live.fetch` skips normalizing a record whose raw payload is
byte-identical to its latest stored version.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import date

from monitor.model import Category, Change, ChangeKind, Severity
from monitor.pipeline import Result
from monitor.sources.ctgov import PAGE_LIMIT
from monitor.sources.ctgov_changes import ask_from, changed_since
from monitor.sources.files import raw_hash

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
        found = run_change_query(live.client, plan)
        learned = PER_DAY + (suffix + ".searches" if plan.searches else "")
        store.service.set_state(learned, f"{learned_per_day(len(found), plan, today):.1f}")
        mark = latest_date((d for d, _ in found.values()), not_after=today)
        if whole:
            return found, mark
        wanted = set(watched)
        return {k: v for k, v in found.items() if k in wanted}, mark
    refused: set[str] = set()

    def on_bad_id(nct: str, why: str) -> None:
        refused.add(nct)
        live._problem(report, nct, why)

    probe = live.client.probe(watched, on_bad_id=on_bad_id)
    for nct in watched:
        if nct not in probe and nct not in refused and live._valid(nct):
            live._problem(report, nct, "not found on ClinicalTrials.gov")
    return probe, latest_date((d for d, _ in probe.values()), not_after=today)


def advance_watermark(store, suffix: str, mark: str | None) -> None:
    """Keep the later of the stored watermark and ``mark`` (a complete cycle's latest date)."""
    before = store.service.get_state(WATERMARK + suffix)
    if mark and (before is None or mark > before):
        store.service.set_state(WATERMARK + suffix, mark)


def run_change_query(client, plan: Plan) -> dict[str, tuple[str, str | None]]:
    """The change query of ``plan``: NCT id -> (last-update date, status)."""
    assert plan.since is not None
    if not plan.searches:
        return changed_since(client, plan.since)
    found: dict[str, tuple[str, str | None]] = {}
    for search in plan.searches:
        found.update(changed_since(client, plan.since, search))
    return found


def learned_per_day(found: int, plan: Plan, today: date) -> float:
    """Changes per day asked, for the next cycle's estimate (at least one)."""
    assert plan.since is not None
    days = max((today - date.fromisoformat(plan.since)).days + 1, 1)
    return max(found / days, 1.0)


def same_raw(store, key: str, answer) -> tuple[Result, tuple[str | None, str | None]] | None:
    """An ``unchanged`` result, with the (date, status) seen, when ``answer`` (a ClinicalTrials.gov
    study as received) is byte-identical to the latest stored version's raw payload: not normalized."""
    study, raw = getattr(answer, "study", None), getattr(answer, "raw", None)
    if study is None or raw is None:
        return None
    latest = store.versions.latest_raw_hash(key)
    if latest is None or raw_hash(raw) != latest[1]:
        return None
    status = study["protocolSection"].get("statusModule") or {}
    title = study["protocolSection"]["identificationModule"].get("briefTitle") or ""
    seen = ((status.get("lastUpdatePostDateStruct") or {}).get("date"), status.get("overallStatus"))
    note = f"same raw payload as version {latest[0]}"
    return Result(key, title, "unchanged", latest[0], answer.origin, note=note), seen


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
