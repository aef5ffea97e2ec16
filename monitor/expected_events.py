"""The expected-event rules across the stored portfolio (the orchestration
around the pure rules of :mod:`monitor.expected`).

:func:`findings_now` lists what is true now (``monitor check``);
:func:`record_expected` evaluates trials after a cycle and writes the events
of the rules that became true or stopped being true, with their deliveries.
A trial's first evaluation is a silent baseline (see
:mod:`monitor.store.expected`): only transitions after it are events.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from monitor.checking import Routes
from monitor.errors import StoreError
from monitor.expected import DEFAULT, RULES, Thresholds, day, evaluate
from monitor.messages import markdown_text
from monitor.model import Change, TrialRecord
from monitor.store import Store

log = logging.getLogger(__name__)

BASELINES = 500  # first evaluations (and next turning days) written a transaction
NEVER = date.max  # the next turning day of a record whose rules no later day changes


@dataclass(frozen=True)
class Flag:
    key: str
    title: str
    status: str | None
    rule: str
    summary: str

    def to_dict(self) -> dict:
        return {
            "trial": self.key,
            "title": self.title,
            "status": self.status,
            "rule": self.rule,
            "summary": self.summary,
        }


def findings_now(
    store: Store, today: date, thresholds: Thresholds = DEFAULT, rules: Iterable[str] | None = None
) -> list[Flag]:
    """Every rule true on ``today`` for the latest version of every stored trial."""
    chosen = list(rules) if rules else list(RULES)
    flags = []
    for key, record in sorted(store.expected.latest_records(store.versions.latest_heads()).items()):
        flags += [
            Flag(key, record.title, record.overall_status, f.rule, f.summary)
            for f in evaluate(record, today, thresholds, chosen)
        ]
    return sorted(flags, key=lambda f: (chosen.index(f.rule), f.key))


def record_expected(
    store: Store,
    keys: Iterable[str],
    now: datetime,
    thresholds: Thresholds = DEFAULT,
    routes: Routes | None = None,
) -> list[tuple[str, Change]]:
    """Evaluate each of ``keys`` on ``now``'s date against its latest stored
    version; store and route the events.  A trial not stored yet is skipped;
    a trial evaluated for the first time has its baseline stored, no event."""
    events = []
    wanted = sorted(set(keys))
    if not wanted:
        return events
    today = now.date()
    stored: dict[str, dict[str, str]] = {}
    for (key, rule), summary in store.expected.expected_true(keys=wanted).items():  # of these trials only
        stored.setdefault(key, {})[rule] = summary
    seen = store.expected.expected_seen(wanted)
    baselines: list[tuple[str, dict[str, str], date, int]] = []
    days: list[tuple[str, date | None, int]] = []  # each evaluated trial's next turning day, written in batches
    baselined = flagged = 0
    for key, record, version in _latest_records(store, wanted):  # a trial not stored yet is skipped
        try:
            if isinstance(record, StoreError):  # its stored record cannot be read: it stays due
                raise record
            found = {f.rule: f.summary for f in evaluate(record, today, thresholds)}
            due = next_due(record, today, thresholds, set(found)) or NEVER
            if key not in seen:
                baselines.append((key, found, due, version))  # written in batches: no event
                baselined, flagged = baselined + 1, flagged + bool(found)
                if len(baselines) >= BASELINES:
                    store.expected.apply_baselines(baselines, now)
                    baselines.clear()
                continue
            if set(found) != set(stored.get(key, {})):  # else nothing became true or stopped being true
                for event in store.expected.apply_findings(key, found, record.overall_status, now, routes, RULES):
                    events.append((key, event))
            days.append((key, due, version))  # only once its events are written: a failure leaves it due
            if len(days) >= BASELINES:
                store.expected.set_due(days)
                days.clear()
        except Exception as exc:  # one bad trial never stops the others
            log.exception("%s: expected-event rules failed", key)
            store.watches.record_error(key, f"expected-event rules failed: {exc}", now)
    store.expected.apply_baselines(baselines, now)
    store.expected.set_due(days)
    if baselined:
        log.info(
            "expected-event rules: %d trial(s) evaluated for the first time, %d with a rule true now "
            "(a baseline, not notified: see `monitor check`)",
            baselined,
            flagged,
        )
    return events


def next_due(
    record: TrialRecord, today: date, thresholds: Thresholds = DEFAULT, now: set[str] | None = None
) -> date | None:
    """The first day after ``today`` on which the rules true for ``record`` (unchanged) differ from
    today's, or None when no later day changes them.  The rules turn on their dates only where a date
    or a threshold is crossed: a record date, the start of its month, the day after it, and each grace
    period's end, so those days are tried in order.  Stored as ``expected_seen.due``: the first cycle
    of a day evaluates only the trials due.  ``now``: the rules true on ``today``, when known."""
    if now is None:
        now = {f.rule for f in evaluate(record, today, thresholds)}
    for when in sorted(d for d in _turning_days(record, thresholds) if d > today):
        if {f.rule for f in evaluate(record, when, thresholds)} != now:
            return when
    return None


def _turning_days(record: TrialRecord, t: Thresholds) -> set[date]:
    """Every day on which a rule could turn for ``record``: see :func:`next_due`."""
    days: set[date] = set()
    offsets = (0, 1, t.completion_grace_days + 1, 365 + t.results_grace_days + 1, t.verification_days + 1)
    texts = (record.start_date.date, record.primary_completion_date.date, record.completion_date.date)
    for text in (*texts, record.status_verified):
        when = day(text)
        if when is None:
            continue
        days.add(when.replace(day=1))
        for offset in offsets:
            with suppress(OverflowError):  # a date near 9999-12-31: no later day
                days.add(when + timedelta(days=offset))
    return days


def _latest_records(store: Store, keys: list[str], chunk: int = 1_000):
    """``(key, latest stored record, its version number)`` of each of ``keys``, a thousand at a time
    (memory stays flat).  The numbers are read first: a version stored meanwhile is never taken for
    the one evaluated (:meth:`~monitor.store.expected.ExpectedStore.set_due` keeps the day only while
    it is the latest).  A chunk with a record that cannot be read is read again one trial at a time:
    the damaged one comes as its :class:`StoreError` (that trial's problem), never taking the others."""
    for start in range(0, len(keys), chunk):
        part = keys[start : start + chunk]
        numbers = {key: head.number for key, head in store.versions.latest_heads(part).items()}
        try:
            records = sorted(store.expected.latest_records(part).items())
        except StoreError:
            records = []
            for key in part:
                try:
                    records += store.expected.latest_records([key]).items()
                except StoreError as exc:
                    records.append((key, exc))
        for key, record in records:
            yield key, record, numbers.get(key, 0)


def render_flags(flags: list[Flag], today: date, fmt: str) -> str:
    """What `monitor check` prints: the flags by rule, as text, a Markdown table, or JSON."""
    if fmt == "json":
        return json.dumps({"today": today.isoformat(), "flags": [f.to_dict() for f in flags]}, indent=2)
    if not flags:
        return f"No expected-event rule is true on {today.isoformat()}."
    lines = []
    for rule in RULES:
        group = [f for f in flags if f.rule == rule]
        if not group:
            continue
        if fmt == "markdown":
            lines += [f"### {rule} ({len(group)})", "", "| trial | status | finding |", "|---|---|---|"]
            lines += [f"| {f.key} | {_cell(f.status)} | {_cell(f.summary)} |" for f in group]
            lines.append("")
        else:
            lines.append(f"{rule} ({len(group)})")
            lines += [f"  {f.key}  {f.summary}" for f in group]
    return "\n".join(lines).rstrip()


def _cell(text: str | None) -> str:
    """A table cell: escaped like every Markdown value (no link, mention or tag), and no ``|`` or line break."""
    return markdown_text(text or "").replace("|", "\\|").replace("\n", " ")
