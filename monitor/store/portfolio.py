"""Reading across trials: the change feed and the portfolio's rows (``store.portfolio``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from monitor.model import Change
from monitor.store.database import Concern
from monitor.store.packing import naming, stored_record
from monitor.store.schema import changes, trial_state, trials, versions, watches

SEVERITY_RANK = {"minor": 0, "major": 1}


@dataclass(frozen=True)
class ChangeQuery:
    """Which changes to list; every rule is optional.  ``trials`` None means every trial."""

    since: datetime | None = None
    until: datetime | None = None
    trials: tuple[str, ...] | None = None
    categories: tuple[str, ...] = ()
    min_severity: str | None = None
    include_backfill: bool = False
    limit: int | None = None


@dataclass(frozen=True)
class FeedChange:
    """One stored change with where it belongs: trial, version and dates."""

    id: int
    trial_key: str
    title: str | None
    version: int | None  # None for a saved-search event, which belongs to no version
    registry_date: str | None  # the registry's last-update date of that version
    detected_at: datetime
    backfill: bool
    change: Change


@dataclass(frozen=True)
class TrialRow:
    """What the portfolio table shows of one trial (groups are added by the caller)."""

    key: str
    title: str | None
    overall_status: str | None
    versions: int
    last_version_date: str | None
    last_change_at: datetime | None
    last_stored_at: datetime | None  # when the latest version was stored
    last_error: str | None
    last_error_at: datetime | None
    watched: bool
    sources: tuple[str, ...]


class PortfolioStore(Concern):
    """Reads that join trials, versions, changes, watches and trial state."""

    def change_feed(self, query: ChangeQuery) -> list[FeedChange]:
        """Stored changes across trials, newest first (then trial, then order within the version)."""
        stmt = (
            select(
                changes,
                trials.c.title,
                versions.c.number.label("version_number"),
                versions.c.last_update_posted,
            )
            .join(trials, trials.c.key == changes.c.trial_key, isouter=True)
            .join(versions, versions.c.id == changes.c.version_id, isouter=True)
        )
        if query.since is not None:
            stmt = stmt.where(changes.c.detected_at >= query.since)
        if query.until is not None:
            stmt = stmt.where(changes.c.detected_at < query.until)
        if query.trials is not None:
            stmt = stmt.where(changes.c.trial_key.in_(query.trials))
        if query.categories:
            stmt = stmt.where(changes.c.category.in_(query.categories))
        if query.min_severity:
            allowed = [s for s, rank in SEVERITY_RANK.items() if rank >= SEVERITY_RANK[query.min_severity]]
            stmt = stmt.where(changes.c.severity.in_(allowed))
        if not query.include_backfill:
            stmt = stmt.where(changes.c.backfill.is_(False))
        stmt = stmt.order_by(changes.c.detected_at.desc(), changes.c.trial_key, changes.c.id)
        if query.limit is not None:
            stmt = stmt.limit(query.limit)
        with self._reading() as conn:
            return [
                FeedChange(
                    id=r.id,
                    trial_key=r.trial_key,
                    title=r.title,
                    version=r.version_number,
                    registry_date=r.last_update_posted,
                    detected_at=r.detected_at,
                    backfill=bool(r.backfill),
                    change=Change.from_dict(dict(r._mapping)),
                )
                for r in conn.execute(stmt)
            ]

    def latest_changes(self) -> dict[str, list[Change]]:
        """Each trial's changes of its latest detection (backfilled history aside), in stored order."""
        last = (
            select(changes.c.trial_key, func.max(changes.c.detected_at).label("at"))
            .where(changes.c.backfill.is_(False))
            .group_by(changes.c.trial_key)
            .subquery()
        )
        stmt = (
            select(changes)
            .join(last, (last.c.trial_key == changes.c.trial_key) & (last.c.at == changes.c.detected_at))
            .where(changes.c.backfill.is_(False))
            .order_by(changes.c.trial_key, changes.c.id)
        )
        found: dict[str, list[Change]] = {}
        with self._reading() as conn:
            for r in conn.execute(stmt):
                found.setdefault(r.trial_key, []).append(Change.from_dict(dict(r._mapping)))
        return found

    def trial_rows(self) -> list[TrialRow]:
        """Every stored or watched trial, by key."""
        latest = (
            select(
                versions.c.trial_key,
                func.max(versions.c.number).label("number"),
                func.count().label("count"),
            )
            .group_by(versions.c.trial_key)
            .subquery()
        )
        last_change = (
            select(changes.c.trial_key, func.max(changes.c.detected_at).label("at"))
            .where(changes.c.backfill.is_(False))
            .group_by(changes.c.trial_key)
            .subquery()
        )
        stmt = (
            select(
                trials.c.key,
                trials.c.title,
                versions.c.number,
                versions.c.record,
                versions.c.raw,
                versions.c.last_update_posted,
                versions.c.loaded_at,
                latest.c.count,
                last_change.c.at,
                trial_state.c.last_error,
                trial_state.c.last_error_at,
            )
            .join(latest, latest.c.trial_key == trials.c.key)
            .join(versions, (versions.c.trial_key == latest.c.trial_key) & (versions.c.number == latest.c.number))
            .join(last_change, last_change.c.trial_key == trials.c.key, isouter=True)
            .join(trial_state, trial_state.c.trial_key == trials.c.key, isouter=True)
            .order_by(trials.c.key)
        )
        with self._reading() as conn:
            watched = set(conn.execute(select(watches.c.target).where(watches.c.kind == "trial")).scalars())
            sources: dict[str, set[str]] = {}
            for key, source in conn.execute(select(versions.c.trial_key, versions.c.source).distinct()):
                if source:
                    sources.setdefault(key, set()).add(source)
            rows = []
            for r in conn.execute(stmt):
                with naming(r.key, r.number):
                    record = stored_record(r.record, r.raw)
                rows.append(
                    TrialRow(
                        key=r.key,
                        title=r.title,
                        overall_status=record.get("overall_status"),
                        versions=r.count,
                        last_version_date=r.last_update_posted,
                        last_change_at=r.at,
                        last_stored_at=r.loaded_at,
                        last_error=r.last_error,
                        last_error_at=r.last_error_at,
                        watched=r.key in watched,
                        sources=tuple(sorted(sources.get(r.key, ()))),
                    )
                )
            stored = {row.key for row in rows}
            pending = conn.execute(
                select(watches.c.target, trial_state.c.last_error, trial_state.c.last_error_at)
                .join(trial_state, trial_state.c.trial_key == watches.c.target, isouter=True)
                .where(watches.c.kind == "trial")
            )
            for r in pending:
                if r.target not in stored:
                    rows.append(
                        TrialRow(r.target, None, None, 0, None, None, None, r.last_error, r.last_error_at, True, ())
                    )
        return sorted(rows, key=lambda row: row.key)
