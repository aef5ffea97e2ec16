"""The per-trial path: one trial's answer normalized, diffed against its head and stored.

Every way in goes through here: a file load (:mod:`monitor.loading`), a registry
fetch or cycle and a backfill (:mod:`monitor.live`), the daemon (:mod:`monitor.cycles`)
and the CLI, which call those.  A :class:`Checker` binds the store, the clock, the
routes and the archive once; then, per trial:

* :meth:`Checker.check` is the whole operation inside the per-trial boundary:
  normalize the answer (or take the record a worker prepared, :class:`monitor.prepare.Prepared`),
  check that it is the trial asked for, archive its raw text, diff it against the
  trial's head and write the version with its changes and deliveries in one
  transaction (:func:`ingest`; or hand it to the batched writer, :mod:`monitor.batch`).
* :meth:`Checker.guard` is the boundary itself: any exception (ours or not) is
  logged with the trial's key and recorded as that trial's problem, where
  ``monitor status`` shows it; the other trials carry on.  Only the store's own failures
  pass through: a :class:`~monitor.errors.StoreError` (a full or read-only database, an
  archive that cannot be written: no version is stored without its raw copy), which no
  other trial could get past either, and :class:`~monitor.errors.Stopped` (not an ``Exception``).
* :meth:`Checker.backfill` stores a trial's past versions, oldest first, before its
  stored ones (the caller guards it: the CLI reports it, the cycle records it).

Files keep their all-or-nothing check: a file of the wrong shape is refused before
anything is stored (:mod:`monitor.loading`, pass 1); the boundary is for what goes
wrong with one trial after that.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from monitor.classify import diff_records
from monitor.clock import Clock, utc_now
from monitor.diff import UNHASHED, fingerprint, hash_projection, project
from monitor.errors import MonitorError, SourceError, StoreError
from monitor.model import Change
from monitor.sources.files import Snapshot

if TYPE_CHECKING:
    from monitor.archive import SnapshotArchive
    from monitor.prepare import Prepared
    from monitor.sources.base import Answer
    from monitor.store import NewVersion, Store, VersionHead

log = logging.getLogger(__name__)

Routes = Callable[[str, list[Change]], list[str]]  # (trial, changes) -> the routes that hear of them
Write = Callable[["NewVersion", int, list[str]], int]  # VersionStore.add_version, or a batch's write
Heard = Callable[[str, str], None]  # (trial key, its problem): told of a new one
UNREAD = object()  # head=UNREAD: the caller did not read the trial's head
STORED = ("new", "changed", "refreshed")  # the statuses that wrote a version
T = TypeVar("T")


@dataclass(frozen=True)
class Result:
    """What storing one snapshot did.

    ``status`` is ``new`` (first version of a trial), ``changed`` (a new version
    with changes), ``refreshed`` (a new version whose differences are only in
    fields one of the two formats does not show), ``unchanged`` (identical to a
    stored version; nothing written), ``stale`` (older than the latest stored
    version; nothing written) or ``failed`` (the trial's problem is the ``note``;
    nothing written).  ``seen``: the record's (last-update date, status).
    """

    key: str
    title: str
    status: str
    version: int | None
    origin: str
    changes: tuple[Change, ...] = ()
    note: str | None = None
    seen: tuple[str | None, str | None] | None = field(default=None, compare=False, repr=False)


class Checker:
    """The per-trial path bound to a store, a clock, the routes and (optionally) an archive.
    ``on_problem(key, message)`` hears each trial problem the first time it is recorded."""

    def __init__(
        self,
        store: Store,
        now: Clock = utc_now,
        routes: Routes | None = None,
        archive: SnapshotArchive | None = None,
        on_problem: Heard | None = None,
    ) -> None:
        self.store, self.now, self.routes, self.archive = store, now, routes, archive
        self.on_problem = on_problem
        self.failures: dict[str, str] = {}  # key -> its problem, for every trial that failed here

    def check(
        self, key: str, answer: Answer, prepared: Prepared | None = None, head: Any = UNREAD, write: Write | None = None
    ) -> Result | None:
        """One trial, start to end, inside the boundary: its result, or None when it failed
        (its problem recorded, and in :attr:`failures`)."""
        return self.guard(key, lambda: self.store_answer(key, answer, prepared, head, write))

    def store_answer(
        self, key: str, answer: Answer, prepared: Prepared | None = None, head: Any = UNREAD, write: Write | None = None
    ) -> Result:
        """One trial's answer normalized, diffed and stored (raises: :meth:`check` guards it).
        ``prepared``: what a worker made of the answer; ``head``: the head the caller read
        (None: no version stored); ``write``: stands in for :meth:`VersionStore.add_version`."""
        snapshot = self.snapshot(key, answer, prepared)
        done = (prepared.content_hash, prepared.projection(), prepared.packed) if prepared else (None, None, None)
        return ingest(self.store, snapshot, self.now, self.routes, head=head, write=write, prepared=done)

    def snapshot(self, key: str, answer: Answer, prepared: Prepared | None = None) -> Snapshot:
        """The answer normalized (or as the worker prepared it), checked to be ``key``'s, archived."""
        snapshot = prepared.snapshot(answer) if prepared else answer.snapshot()
        if snapshot.record.key != key:
            raise SourceError(f"the record of {key} normalizes to {snapshot.record.key}; not stored")
        if self.archive:
            self.archive.put(key, snapshot.record.last_update_posted, snapshot.raw, snapshot.raw_hash)
        return snapshot

    def guard(self, key: str, step: Callable[[], T], doing: str = "", heard: Heard | None = None) -> T | None:
        """The per-trial boundary: ``step()``'s value, or None when it raised (recorded for
        ``key``; ``heard``, or the checker's ``on_problem``, hears of it when it is new)."""
        try:
            return step()
        except StoreError:  # the database refuses writes (full, read-only) or the archive cannot be written
            raise
        except MonitorError as exc:
            self._record(key, exc, exc.message, heard)
        except Exception as exc:  # the per-trial boundary: one bad trial never stops the others
            if doing:
                log.exception("%s: unexpected error in the %s", key, doing)
                message = f"{doing} failed unexpectedly ({type(exc).__name__}: {exc}); see the log"
            else:
                log.exception("%s: unexpected error", key)
                message = f"unexpected error ({type(exc).__name__}: {exc}); not stored, see the log"
            self._record(key, exc, message, heard)
        return None

    def _record(self, key: str, exc: Exception, message: str, heard: Heard | None) -> None:
        """Record the trial's problem; when the store cannot even record it (a read-only or full
        database), nothing more can be stored: the trial's own error stops the run."""
        try:
            self.problem(key, message, heard)
        except Exception as failure:
            raise exc from failure

    def problem(self, key: str, message: str, heard: Heard | None = None) -> None:
        """Record ``key``'s problem where ``monitor status`` shows it; a new one is heard.  A
        store that cannot even record it (read-only, full) is a :class:`StoreError` naming it."""
        self.failures[key] = message
        heard = heard or self.on_problem
        try:
            new = self.store.watches.record_error(key, message, self.now())
        except StoreError:
            raise
        except Exception as exc:  # the database refuses every write: nothing more can be stored
            raise StoreError(f"{key}: {message}") from exc
        if new and heard:
            heard(key, message)  # a new problem: said once, by whoever runs the cycle (CLI or daemon)
        else:  # one already reported (or nobody to hear it): the log says it, once
            log.warning("%s: %s", key, message)

    def backfill(self, key: str, answers: Iterable[Answer]) -> int:
        """Store a trial's past versions (oldest first) before its stored ones, in one
        transaction; a trial with none stored gets them as its versions.  Returns how many
        were added.  Every answer is normalized and archived before anything is written."""
        snapshots = [self.snapshot(key, answer) for answer in answers]
        if self.store.versions.latest_head(key) is None:  # a new trial's whole history: one batched transaction
            from monitor.store import PendingVersion  # start-up speed: SQLAlchemy loads only when writing

            chain = history_chain(snapshots, self.now)
            refused = self.store.versions.add_versions([PendingVersion(new, n) for n, new in enumerate(chain, 1)])
            if refused:
                raise StoreError(next(iter(refused.values())))
            return len(chain)
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


def history_chain(snapshots: list[Snapshot], now: Clock) -> list[NewVersion]:
    """A new trial's history (oldest first) as the versions :func:`ingest` would store one by
    one, with the same rules (an identical, already-kept, stale or noise-only copy is left out),
    to be written together (``store.versions.add_versions``)."""
    chain: list[NewVersion] = []
    for snapshot in snapshots:
        record = snapshot.record
        projected = project(record)
        content = hash_projection(projected)
        changes: list[Change] = []
        if chain:
            head = chain[-1]
            date, before = record.last_update_posted, head.record.last_update_posted
            if content == head.content_hash or any(
                (v.content_hash, v.record.last_update_posted) == (content, date) for v in chain
            ):
                continue
            if date and before and date < before:
                continue
            changes = diff_records(head.record, record, projected)
            if not changes and date == before:
                continue
        chain.append(as_new_version(snapshot, content, now(), changes, backfill=True))
    return chain


def ingest(
    store: Store,
    snapshot: Snapshot,
    now: Clock = utc_now,
    routes: Routes | None = None,
    backfill: bool = False,
    head: VersionHead | object | None = UNREAD,
    write: Write | None = None,
    prepared: tuple = (None, None, None),
) -> Result:
    """Store ``snapshot`` as a new version of its trial when it differs from
    every stored version, with the changes against the latest one and, when
    ``routes`` is given, their deliveries (the outbox), in one transaction.
    ``head``: the trial's latest head when the caller read it for a batch
    (None: no version stored); read here otherwise.  ``write``: stands in for
    :meth:`VersionStore.add_version` (a batch that writes later, :mod:`monitor.batch`).
    ``prepared``: the record's content hash, projection and packed (record, raw) when a worker
    computed them (:mod:`monitor.workers`); any may be None (computed here, when needed), and the
    hash :data:`~monitor.diff.UNHASHED` (a new trial's first version is stored so)."""
    record = snapshot.record
    if head is UNREAD:
        head = store.versions.latest_head(record.key)
    content_hash, projected, packed = prepared
    seen = (record.last_update_posted, record.overall_status)

    def result(status: str, version: int | None, changes=(), note=None) -> Result:
        return Result(record.key, record.title, status, version, snapshot.origin, tuple(changes), note, seen)

    def store_as(number: int, changes) -> int:
        deliveries = routes(record.key, list(changes)) if routes and changes else []
        new = as_new_version(snapshot, content_hash or UNHASHED, now(), changes, backfill, packed)
        return (write or store.versions.add_version)(new, number, deliveries)

    if head is None:  # a first version is stored unhashed (hashed when first compared with)
        return result("new", store_as(1, ()))
    if not content_hash:
        projected = project(record)  # once: for the hash and, if the trial changed, for the diff
        content_hash = hash_projection(projected)
    latest = None
    if head.content_hash == UNHASHED:  # its hash, from the stored record
        latest = store.versions.latest_version(record.key)
    if content_hash == (latest.content_hash if latest else head.content_hash):
        return result("unchanged", head.number, note=f"same as version {head.number}")
    same = store.versions.known_hashes(record.key).get((content_hash, record.last_update_posted))
    if same is not None:
        return result("unchanged", same, note=f"same as version {same}")
    if record.last_update_posted and head.last_update_posted and record.last_update_posted < head.last_update_posted:
        return result(
            "stale",
            None,
            note=f"last updated {record.last_update_posted}, older than version {head.number} "
            f"({head.last_update_posted}); not stored",
        )
    latest = latest or store.versions.latest_version(record.key)
    changes = diff_records(latest.record, record, projected)
    if not changes and record.last_update_posted == head.last_update_posted:
        # Differs only in what is noise (capitals, encoding, ...) on the same registry date: nothing to
        # keep. This also absorbs a change of the comparison form between releases.
        return result("unchanged", head.number, note=f"same as version {head.number} but for noise")
    return result("changed" if changes else "refreshed", store_as(head.number + 1, changes), changes)


def as_new_version(
    snapshot: Snapshot, content_hash: str, at: datetime, changes=(), backfill=False, packed=None
) -> NewVersion:
    from monitor.store import NewVersion  # start-up speed: SQLAlchemy loads only when a version is written

    return NewVersion(
        snapshot.record,
        snapshot.raw,
        snapshot.raw_hash,
        content_hash,
        snapshot.origin,
        at,
        tuple(changes),
        backfill,
        packed,
    )
