"""Expected-event state: which rules are true now for which trial (``store.expected``).

:meth:`ExpectedStore.apply_findings` compares a trial's findings with the
rules stored as true: a rule newly true gets a row and one ``expected`` event,
a rule no longer true loses its row and gets one "resolved" event, each event
with its deliveries, all in one transaction.  A rule still true writes
nothing, so each rule fires once per episode.

The first evaluation of a trial is a baseline: the rules true then are stored
(``monitor check`` and the portfolio show them) without an event, and the trial
is marked in ``expected_seen``; only later transitions are events.  A user who
adds 300 overdue trials is not sent 300 alerts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from monitor.errors import StoreError
from monitor.model import Category, Change, ChangeKind, Severity, TrialRecord
from monitor.store.database import Concern, Database, reason
from monitor.store.packing import naming, stored_record
from monitor.store.rows import keyed_rows
from monitor.store.schema import expected_seen, expected_state, trial_heads, versions
from monitor.store.versions import VersionStore

CHUNK = 500  # trial keys per query


def fired(rule: str, summary: str) -> Change:
    return Change(Category.EXPECTED, rule, ChangeKind.ADDED, None, summary, Severity.MAJOR, summary)


def resolved(rule: str, was: str, status: str | None) -> Change:
    text = f"Resolved ({rule}), now {status or 'no status'}; was: {was}"
    return Change(Category.EXPECTED, rule, ChangeKind.REMOVED, was, None, Severity.MAJOR, text)


class ExpectedStore(Concern):
    """The rules true now, their baselines, and their events with deliveries."""

    def __init__(self, db: Database, versions: VersionStore) -> None:
        super().__init__(db)
        self.versions = versions  # events and their deliveries are written in the state's transaction

    def expected_true(self, key: str | None = None, keys: Iterable[str] | None = None) -> dict[tuple[str, str], str]:
        """``{(trial, rule): summary}`` of the rules stored as true (of one trial, of ``keys``, or all)."""
        query = select(expected_state)
        if key is not None:
            query = query.where(expected_state.c.trial_key == key)
        with self._reading() as conn:
            return {(r.trial_key, r.rule): r.summary for r in keyed_rows(conn, query, expected_state.c.trial_key, keys)}

    def expected_seen(self, keys: Iterable[str] | None = None) -> set[str]:
        """The trials the rules have evaluated at least once (their baseline is stored), of ``keys`` or all."""
        query = select(expected_seen.c.trial_key)
        with self._reading() as conn:
            return {r.trial_key for r in keyed_rows(conn, query, expected_seen.c.trial_key, keys)}

    def unevaluated(self) -> set[str]:
        """The trials stored (a head) whose latest record the rules have not evaluated: never evaluated,
        or given a version since (by `monitor load`, `fetch`, ...: its turning day was forgotten), or
        evaluated before schema 0009.  One anti-join, usually empty."""
        query = (
            select(trial_heads.c.trial_key)
            .outerjoin(expected_seen, expected_seen.c.trial_key == trial_heads.c.trial_key)
            .where(expected_seen.c.trial_key.is_(None) | expected_seen.c.due.is_(None))
        )
        with self._reading() as conn:
            return set(conn.execute(query).scalars())

    def expected_seen_count(self) -> int:
        """How many trials the rules have evaluated at least once."""
        with self._reading() as conn:
            return conn.execute(select(func.count()).select_from(expected_seen)).scalar_one()

    def expected_counts(self) -> dict[str, int]:
        """``{rule: trials}`` for the rules stored as true now."""
        query = select(expected_state.c.rule, func.count()).group_by(expected_state.c.rule)
        with self._reading() as conn:
            return {rule: count for rule, count in conn.execute(query)}

    def latest_records(self, keys: Iterable[str]) -> dict[str, TrialRecord]:
        """The latest stored record of each of ``keys`` (those stored), a few queries in all."""
        keys = sorted(set(keys))
        found: dict[str, TrialRecord] = {}
        with self._reading() as conn:
            for start in range(0, len(keys), CHUNK):
                chunk = keys[start : start + CHUNK]
                latest = (
                    select(versions.c.trial_key, func.max(versions.c.number).label("number"))
                    .where(versions.c.trial_key.in_(chunk))
                    .group_by(versions.c.trial_key)
                    .subquery()
                )
                query = select(versions.c.trial_key, versions.c.number, versions.c.record, versions.c.raw).join(
                    latest, (versions.c.trial_key == latest.c.trial_key) & (versions.c.number == latest.c.number)
                )
                for row in conn.execute(query):
                    with naming(row.trial_key, row.number):
                        found[row.trial_key] = TrialRecord.from_dict(stored_record(row.record, row.raw))
        return found

    def apply_baselines(self, baselines: list[tuple[str, dict[str, str], date, int]], now: datetime) -> None:
        """The first evaluation of many trials (``(key, {rule: summary}, due, version)``, none evaluated
        before): each one's baseline, the rules true now without an event, and the next day they can turn
        (kept only while ``version`` is still the trial's latest: see :meth:`set_due`), :data:`CHUNK`
        trials a transaction (a first load of the whole registry is not 570,000 transactions)."""
        for start in range(0, len(baselines), CHUNK):
            part = baselines[start : start + CHUNK]
            try:
                with self.engine.begin() as conn:
                    conn.execute(insert(expected_seen), [{"trial_key": key, "since": now} for key, *_ in part])
                    rows = [
                        {"trial_key": key, "rule": rule, "since": now, "summary": summary}
                        for key, found, _, _ in part
                        for rule, summary in sorted(found.items())
                    ]
                    if rows:
                        conn.execute(insert(expected_state), rows)
                    _write_days(conn, [(key, due, version) for key, _, due, version in part])
            except IntegrityError:  # another process evaluated one of them meanwhile: one at a time
                for key, found, _, _ in part:
                    self.apply_findings(key, found, None, now)
                self.set_due([(key, due, version) for key, _, due, version in part])
            except SQLAlchemyError as exc:
                raise StoreError(f"the database refused the expected-event baselines: {reason(exc)}") from exc

    def due_keys(self, today: date) -> set[str]:
        """The evaluated trials whose rules can have turned by ``today`` (their day came) or whose day is
        not known yet (evaluated before schema 0009, or since the rules or their settings changed)."""
        column = expected_seen.c.due
        query = select(expected_seen.c.trial_key).where(column.is_(None) | (column <= today))
        with self._reading() as conn:
            return set(conn.execute(query).scalars())

    def set_due(self, days: list[tuple[str, date | None, int]]) -> None:
        """Store each trial's next turning day (``(key, day, version)``; day None: not known), one
        transaction, where ``version`` is still the trial's latest: a version stored since the rules
        read it (``monitor load`` meanwhile) leaves the day unknown, so the next daily pass reads it."""
        if not days:
            return
        try:
            with self.engine.begin() as conn:
                _write_days(conn, days)
        except SQLAlchemyError as exc:
            raise StoreError(f"the database refused the expected-event days: {reason(exc)}") from exc

    def forget_due(self) -> None:
        """Every trial's next turning day unknown (the rules or their settings changed): the next daily
        pass evaluates every trial once."""
        try:
            with self.engine.begin() as conn:
                conn.execute(update(expected_seen).values(due=None))
        except SQLAlchemyError as exc:
            raise StoreError(f"the database refused the expected-event days: {reason(exc)}") from exc

    def apply_findings(
        self,
        key: str,
        findings: dict[str, str],
        status: str | None,
        now: datetime,
        routes: Callable[[str, list[Change]], Iterable[str]] | None = None,
        rules: Iterable[str] | None = None,
    ) -> list[Change]:
        """Record ``findings`` (``{rule: summary}``, the rules true now) for
        ``key``; only ``rules`` (default: every rule named in findings or
        stored) are compared.  Returns the events written: none on the
        trial's first evaluation, which stores its baseline silently."""
        try:
            with self.engine.begin() as conn:
                seen = conn.execute(select(expected_seen.c.trial_key).where(expected_seen.c.trial_key == key))
                baseline = seen.first() is None
                if baseline:
                    conn.execute(insert(expected_seen).values(trial_key=key, since=now))
                stored = {
                    r.rule: r.summary
                    for r in conn.execute(select(expected_state).where(expected_state.c.trial_key == key))
                }
                scope = set(rules) if rules is not None else set(stored) | set(findings)
                events: list[Change] = []
                for rule in sorted(scope):
                    if rule in findings and rule not in stored:
                        conn.execute(
                            insert(expected_state).values(trial_key=key, rule=rule, since=now, summary=findings[rule])
                        )
                        if not baseline:
                            events.append(fired(rule, findings[rule]))
                    elif rule in stored and rule not in findings:
                        conn.execute(
                            expected_state.delete().where(
                                (expected_state.c.trial_key == key) & (expected_state.c.rule == rule)
                            )
                        )
                        events.append(resolved(rule, stored[rule], status))
                for event in events:
                    change_id = self.versions._insert_event(conn, key, now, event)
                    chosen = list(routes(key, [event])) if routes else []
                    self.versions._insert_deliveries(conn, chosen, f"c:{change_id}", key, now)
        except SQLAlchemyError as exc:
            raise StoreError(f"{key}: the database refused the expected-event state: {reason(exc)}") from exc
        return events


def _write_days(conn, days: list[tuple[str, date | None, int]]) -> None:
    """:meth:`ExpectedStore.set_due` in the open transaction ``conn``."""
    head = select(trial_heads.c.number).where(trial_heads.c.trial_key == expected_seen.c.trial_key)
    query = (
        update(expected_seen)
        .where(expected_seen.c.trial_key == bindparam("key"), head.scalar_subquery() == bindparam("version"))
        .values(due=bindparam("day"))
    )
    for start in range(0, len(days), CHUNK):
        rows = [{"key": key, "day": day, "version": version} for key, day, version in days[start : start + CHUNK]]
        conn.execute(query, rows)

