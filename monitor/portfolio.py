"""The portfolio: changes across trials and one row per trial (library; the CLI and the web page call it).

Watch groups come from the configuration: a trial belongs to a group when the
group names it, when one of the group's saved searches holds it, or when one
of its versions was loaded from one of the group's snapshot folders.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from monitor.aggregate import aggregate
from monitor.config import Settings
from monitor.errors import UsageError
from monitor.model import Category, Change, Severity
from monitor.render import headline
from monitor.sources.registry import check_key
from monitor.store import ChangeQuery, FeedChange, Store, TrialRow

_SPAN = re.compile(r"(\d+)\s*([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
CATEGORIES = tuple(c.value for c in Category)
SEVERITIES = tuple(s.value for s in Severity)


def parse_when(text: str, now: datetime, option: str = "--since") -> datetime:
    """``7d``, ``24h``, ``30m``, ``2w`` (before ``now``), a date (its start, UTC) or an ISO date-time."""
    value = text.strip()
    span = _SPAN.fullmatch(value)
    if span:
        try:
            return now - timedelta(**{_UNITS[span.group(2)]: int(span.group(1))})
        except OverflowError:  # before the year 1
            raise UsageError(f"{option} {text!r} reaches back before any date: give a shorter span") from None
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), UTC)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"{option} {text!r} is not a date (2026-03-01), a date-time or a span such as 24h, 7d, 2w"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def group_members(settings: Settings, store: Store, rows: list[TrialRow] | None = None) -> dict[str, set[str]]:
    """Watch group name -> the trial keys in it."""
    rows = store.portfolio.trial_rows() if rows is None else rows
    members: dict[str, set[str]] = {}
    for group in settings.watches:
        keys = set(group.trials)
        for query in group.queries:
            keys |= set(store.watches.members(query) or {})
        if group.snapshots:
            folders = [Path(folder).resolve() for folder in group.snapshots]
            for row in rows:
                if any(_under(source, folders) for source in row.sources):
                    keys.add(row.key)
        members[group.name] = keys
    return members


def _under(source: str, folders: list[Path]) -> bool:
    if "://" in source:
        return False
    path = Path(source).resolve()
    return any(path == folder or folder in path.parents for folder in folders)


MAX_LIMIT = 1_000_000_000


@dataclass(frozen=True)
class ChangeFilter:
    """``monitor changes``' options as values; ``query()`` turns them into a store query."""

    since: str | None = None
    until: str | None = None
    watches: tuple[str, ...] = ()
    trials: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    min_severity: str | None = None
    include_backfill: bool = False
    limit: int | None = None

    def query(self, settings: Settings, store: Store, now: datetime) -> ChangeQuery:
        for category in self.categories:
            if category not in CATEGORIES:
                raise UsageError(f"unknown category {category!r}: one of {', '.join(CATEGORIES)}")
        if self.min_severity is not None and self.min_severity not in SEVERITIES:
            raise UsageError(f"unknown severity {self.min_severity!r}: minor or major")
        if self.limit is not None and not 1 <= self.limit <= MAX_LIMIT:  # a database integer has 64 bits
            raise UsageError(f"--limit {self.limit}: give a number from 1 to {MAX_LIMIT}")
        keys: set[str] | None = None
        if self.trials:
            keys = {check_key(t) for t in self.trials}
        if self.watches:
            members = group_members(settings, store)
            unknown = [w for w in self.watches if w not in members]
            if unknown:
                known = ", ".join(sorted(members)) or "none configured"
                raise UsageError(f"no watch group named {unknown[0]!r} (groups: {known})")
            in_groups = set().union(*(members[w] for w in self.watches))
            keys = in_groups if keys is None else keys | in_groups
        return ChangeQuery(
            since=parse_when(self.since, now, "--since") if self.since else None,
            until=parse_when(self.until, now, "--until") if self.until else None,
            trials=tuple(sorted(keys)) if keys is not None else None,
            categories=tuple(self.categories),
            min_severity=self.min_severity,
            include_backfill=self.include_backfill,
            limit=self.limit,
        )


def changes(store: Store, settings: Settings, wanted: ChangeFilter, now: datetime) -> list[FeedChange]:
    """Stored changes across trials, newest first."""
    return store.portfolio.change_feed(wanted.query(settings, store, now))


def events(found: list[FeedChange]) -> list[list[FeedChange]]:
    """Changes grouped by the event that brought them (a trial's version, or one saved-search event), in order."""
    grouped: dict[tuple, list[FeedChange]] = {}
    for item in found:
        ident = (item.trial_key, item.version, item.detected_at) if item.version else (item.trial_key, item.id)
        grouped.setdefault(ident, []).append(item)
    return list(grouped.values())


def folded(found: list[FeedChange]) -> list[FeedChange]:
    """What a person reads: each event's changes aggregated as `monitor diff` says them (43 sites added in one
    line, one time-frame edit made to 3 outcomes said once); the stored changes stay one per row in JSON and CSV."""
    out: list[FeedChange] = []
    for group in events(found):
        out += [replace(group[0], change=change) for change in aggregate([i.change for i in group])]
    return out


def by_trial(found: list[FeedChange]) -> list[tuple[str, list[FeedChange]]]:
    """Changes grouped by trial, the trial with the most severe (then most, then newest) changes first;
    within a trial most severe first, then newest."""
    groups: dict[str, list[FeedChange]] = {}
    for item in found:
        groups.setdefault(item.trial_key, []).append(item)

    def rank(item: FeedChange) -> tuple:
        return (item.change.severity != Severity.MAJOR, -item.detected_at.timestamp(), item.id)

    ordered = [(key, sorted(items, key=rank)) for key, items in groups.items()]
    ordered.sort(
        key=lambda pair: (
            -sum(1 for i in pair[1] if i.change.severity == Severity.MAJOR),
            -len(pair[1]),
            -max(i.detected_at.timestamp() for i in pair[1]),
            pair[0],
        )
    )
    return ordered


@dataclass(frozen=True)
class PortfolioRow:
    """One trial in the portfolio table."""

    trial: TrialRow
    groups: tuple[str, ...]
    last_checked: datetime | None
    last_changes: tuple[Change, ...] = field(default=())

    @property
    def last_headline(self) -> str | None:
        if not self.last_changes:
            return None

        return headline(sorted(self.last_changes, key=lambda c: c.severity != Severity.MAJOR))


def portfolio(store: Store, settings: Settings, groups: tuple[str, ...] = ()) -> list[PortfolioRow]:
    """Every stored or watched trial, or only those of ``groups``, by key."""
    rows = store.portfolio.trial_rows()
    members = group_members(settings, store, rows)
    unknown = [g for g in groups if g not in members]
    if unknown:
        raise UsageError(f"no watch group named {unknown[0]!r} (groups: {', '.join(sorted(members)) or 'none'})")
    runs = {
        key.removeprefix("group.").removesuffix(".last_run"): value
        for key, value in store.service.state_with_prefix("group.").items()
        if key.endswith(".last_run") and value
    }
    last = store.portfolio.latest_changes()
    found = []
    for row in rows:
        in_groups = tuple(sorted(name for name, keys in members.items() if row.key in keys))
        if groups and not set(in_groups) & set(groups):
            continue
        checks = [aware(row.last_stored_at)] + [_stamp(runs.get(name)) for name in in_groups]
        moments = [moment for moment in checks if moment is not None]
        found.append(PortfolioRow(row, in_groups, max(moments) if moments else None, tuple(last.get(row.key, ()))))
    return found


def _stamp(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def aware(moment: datetime | None) -> datetime | None:
    """SQLite gives back naive date-times: they are UTC."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


