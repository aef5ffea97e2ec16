"""The one place where the stages run in order: read -> normalize -> store -> diff.

The CLI and the daemon both call these functions; so can any Python caller::

    from monitor.pipeline import load
    from monitor.store import Store
    results = load(Store.open("monitor.db"), ["seeds/"])
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.classify import diff_records
from monitor.clock import Clock, utc_now
from monitor.diff import fingerprint, hash_projection, project
from monitor.errors import NotFoundError, SourceError, UsageError
from monitor.limits import Limits
from monitor.model import Change, TrialRecord
from monitor.sources.files import Payload, Snapshot, read_payloads_of, read_snapshots, snapshot_files

if TYPE_CHECKING:
    from monitor.store import NewVersion, Store, StoredVersion, VersionHead

log = logging.getLogger(__name__)

UNREAD = object()  # ingest(head=...): the caller did not read the trial's head


@dataclass(frozen=True)
class Result:
    """What storing one snapshot did.

    ``status`` is ``new`` (first version of a trial), ``changed`` (a new version
    with changes), ``refreshed`` (a new version whose differences are only in
    fields one of the two formats does not show), ``unchanged`` (identical to a
    stored version; nothing written) or ``stale`` (older than the latest stored
    version; nothing written).
    """

    key: str
    title: str
    status: str
    version: int | None
    origin: str
    changes: tuple[Change, ...] = ()
    note: str | None = None


Routes = Callable[[str, list[Change]], list[str]]  # (trial, changes) -> the routes that hear of them


def ingest(
    store: Store,
    snapshot: Snapshot,
    now: Clock = utc_now,
    routes: Routes | None = None,
    backfill: bool = False,
    head: VersionHead | object | None = UNREAD,
    write: Callable[[NewVersion, int, list[str]], int] | None = None,
    prepared: tuple = (None, None, None),
) -> Result:
    """Store ``snapshot`` as a new version of its trial when it differs from
    every stored version, with the changes against the latest one and, when
    ``routes`` is given, their deliveries (the outbox), in one transaction.
    ``head``: the trial's latest head when the caller read it for a batch
    (None: no version stored); read here otherwise.  ``write``: stands in for
    ``store.versions.add_version`` (a batch that writes later, :mod:`monitor.batch`).
    ``prepared``: the record's content hash, projection and packed (record, raw) when a worker
    computed them (:mod:`monitor.workers`); any may be None (computed here, when needed)."""
    record = snapshot.record
    if head is UNREAD:
        head = store.versions.latest_head(record.key)
    content_hash, projected, packed = prepared
    if content_hash is None:
        projected = project(record)  # once: for the hash and, if the trial changed, for the diff
        content_hash = hash_projection(projected)

    def result(status: str, version: int | None, changes=(), note=None) -> Result:
        return Result(record.key, record.title, status, version, snapshot.origin, tuple(changes), note)

    def store_as(number: int, changes) -> int:
        deliveries = routes(record.key, list(changes)) if routes and changes else []
        new = as_new_version(snapshot, content_hash, now(), changes, backfill, packed)
        return (write or store.versions.add_version)(new, number, deliveries)

    if head is None:
        return result("new", store_as(1, ()))
    if content_hash == head.content_hash:
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
    latest = store.versions.latest_version(record.key)
    changes = diff_records(latest.record, record, projected)
    if not changes and record.last_update_posted == head.last_update_posted:
        # Differs only in what is noise (capitals, encoding, ...) on the same registry date: nothing to
        # keep. This also absorbs a change of the comparison form between releases.
        return result("unchanged", head.number, note=f"same as version {head.number} but for noise")
    return result("changed" if changes else "refreshed", store_as(head.number + 1, changes), changes)


def as_new_version(
    snapshot: Snapshot, content_hash: str, at: datetime, changes=(), backfill=False, packed=None
) -> NewVersion:
    from monitor.store import NewVersion

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


def read_payloads(
    paths: Iterable[str | Path], problems: list[str] | None = None, limits: Limits | None = None
) -> list[Payload]:
    """Every payload under ``paths``, read and recognised (within ``limits``) before
    anything is stored.  Every unreadable file is reported: in one error, or, when a
    ``problems`` list is given, appended to it (and the file left out)."""
    try:
        files = snapshot_files(list(paths), problems)
    except SourceError as exc:  # raised only without a problems list
        raise SourceError(f"{exc.message}; nothing was stored") from exc
    return _collect(lambda file: read_payloads_of(file, limits), files, problems)


def _collect(step, items, problems: list[str] | None = None) -> list:
    done: list = []
    found_problems: list[str] = []
    for item in items:
        try:
            found = step(item)
        except SourceError as exc:
            found_problems.append(exc.message)
            continue
        done.extend(found if isinstance(found, list) else [found])
    _refuse(found_problems, problems)
    return done


def _refuse(found: list[str], problems: list[str] | None) -> None:
    """Raise the first of ``found`` problems, or add them to ``problems`` when skipping bad inputs."""
    if problems is not None:
        problems.extend(found)
    elif found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise SourceError(f"{found[0]}{more}; nothing was stored")


def load(
    store: Store,
    paths: Iterable[str | Path],
    now: Clock = utc_now,
    routes: Routes | None = None,
    problems: list[str] | None = None,
    limits: Limits | None = None,
) -> list[Result]:
    """Load snapshot files and folders into the store (see :func:`store_payloads`), one file
    at a time in two passes (:mod:`monitor.loading`): flat memory for any number of files."""
    from monitor.loading import survey

    return survey(paths, problems, limits).store(store, now, routes, problems, limits=limits)


def store_payloads(
    store: Store,
    payloads: list[Payload],
    now: Clock = utc_now,
    routes: Routes | None = None,
    problems: list[str] | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> list[Result]:
    """Store payloads already read: all or nothing.

    Every payload is normalized before anything is stored; any bad one means
    nothing is stored (a :class:`SourceError`), unless a ``problems`` list is
    given: then the bad ones are listed there and the good ones stored.  A
    payload whose exact text is already stored is unchanged without being
    normalized again.  Within each trial, copies are stored oldest registry
    date first (``lastUpdatePostDate``, then ``versionHolder``), so a folder of
    versions is stored in order and identical copies collapse into one; two
    different copies of one format with the same registry date are a problem
    for that trial, not two versions.
    """
    stored = store.versions.raw_hashes()
    results = [
        Result(
            stored[p.raw_hash][0],
            stored[p.raw_hash][2] or stored[p.raw_hash][0],
            "unchanged",
            stored[p.raw_hash][1],
            p.origin,
            note=f"same as version {stored[p.raw_hash][1]}",
        )
        for p in payloads
        if p.raw_hash in stored
    ]
    found: list[str] = []
    read = _collect(_dated_snapshot, [p for p in payloads if p.raw_hash not in stored], found)
    ordered = sorted(read, key=lambda r: (r[0].record.key, r[1]))  # stable: ties keep the input order
    clashing = _clashes(ordered)
    found += clashing.values()
    _refuse(found, problems)
    for snap, _ in ordered:
        if snap.record.key in clashing:
            continue
        results.append(ingest(store, snap, now, routes))
        if progress:
            progress("records", 1)
    return sorted(results, key=lambda r: r.key)


def _dated_snapshot(payload: Payload) -> tuple[Snapshot, tuple[str, str]]:
    """A payload normalized, with its registry date."""
    snap = payload.snapshot()
    return snap, payload.registry_date(snap.record)


def _clashes(ordered: list[tuple[Snapshot, tuple[str, str]]]) -> dict[str, str]:
    """Trials with two different copies of one format and one registry date: {key: problem}."""
    seen: dict[tuple, tuple[str, Snapshot]] = {}
    clashing: dict[str, str] = {}
    for snap, date in ordered:
        record = snap.record
        content = fingerprint(record)
        first_content, first = seen.setdefault((record.key, record.source, date), (content, snap))
        if first_content != content and record.key not in clashing:
            where = f"twice in {snap.origin}" if first.origin == snap.origin else f"in {first.origin} and {snap.origin}"
            clashing[record.key] = (
                f"{record.key}: two different copies with the same registry date ({date[0] or 'no date'}) {where}; "
                "which one is the trial's record cannot be told"
            )
    return clashing


@dataclass(frozen=True)
class Comparison:
    """Two versions of one trial and the changes between them."""

    key: str
    old: TrialRecord
    new: TrialRecord
    old_label: dict
    new_label: dict
    changes: tuple[Change, ...]


def compare_files(old_path: str | Path, new_path: str | Path, limits: Limits | None = None) -> Comparison:
    """Diff two snapshot files of any supported format; nothing is stored."""
    old, new = read_single(old_path, limits), read_single(new_path, limits)
    if old.record.key != new.record.key:
        raise UsageError(
            f"{old_path} is {old.record.key} but {new_path} is {new.record.key}: "
            "diff compares two versions of one trial"
        )
    return Comparison(
        old.record.key,
        old.record,
        new.record,
        _file_label(old),
        _file_label(new),
        tuple(diff_records(old.record, new.record)),
    )


def compare_file_to_store(store: Store, path: str | Path, limits: Limits | None = None) -> Comparison:
    """A snapshot file against the latest stored version of its trial."""
    return compare_to_store(store, read_single(path, limits))


def compare_to_store(store: Store, snap: Snapshot) -> Comparison:
    """A snapshot (a file, or the registry's current record) against the latest
    stored version of its trial; nothing is stored."""
    latest = store.versions.latest_version(snap.record.key)
    if latest is None:
        raise NotFoundError(f"{snap.record.key} (from {snap.origin}) is not in the store: nothing to compare it with")
    return Comparison(
        snap.record.key,
        latest.record,
        snap.record,
        version_label(latest),
        _file_label(snap),
        tuple(diff_records(latest.record, snap.record)),
    )


def compare_versions(store: Store, key: str, old_ref: str | None = None, new_ref: str | None = None) -> Comparison:
    """Two stored versions of a trial: by default the latest and the one before."""
    history = store.versions.history(key)
    new = pick_version(history, new_ref) if new_ref else history[-1]
    if old_ref:
        old = pick_version(history, old_ref)
    elif new.number > 1:
        old = history[new.number - 2]
    else:
        raise NotFoundError(f"{key} has only one stored version: nothing to compare yet")
    if old.number == new.number:
        changes: tuple[Change, ...] = ()
    elif old.number == new.number - 1:
        changes = new.changes  # stored when the version was
    else:
        changes = tuple(diff_records(old.record, new.record))
    return Comparison(key, old.record, new.record, version_label(old), version_label(new), changes)


def pick_version(history: list[StoredVersion], ref: str) -> StoredVersion:
    """A version by number (``3``) or date (``2026-02-09``: the version
    current on that day)."""
    ref = ref.strip()
    key = history[0].trial_key
    if ref.isdigit():
        number = int(ref)
        if 1 <= number <= len(history):
            return history[number - 1]
        raise NotFoundError(f"{key} has no version {number} (versions 1 to {len(history)})")
    from monitor.normalize.text import parse_date

    day = parse_date(ref)
    if not day:
        raise UsageError(f"{ref!r} is not a version number or a date (YYYY-MM-DD)")
    current = [v for v in history if v.date <= day]
    if not current:
        raise NotFoundError(f"{key} has no version on or before {day} (the first is from {history[0].date})")
    return current[-1]


def version_label(version: StoredVersion) -> dict:
    seen = version.loaded_at.date().isoformat()
    label = {"version": version.number, "date": version.date, "source": version.source}
    return label | ({"seen": seen} if seen != version.date else {})


def _file_label(snapshot: Snapshot) -> dict:
    return {"version": None, "date": snapshot.record.last_update_posted, "source": snapshot.origin}


def read_single(path: str | Path, limits: Limits | None = None) -> Snapshot:
    found = read_snapshots(Path(path), limits)
    if len(found) != 1:
        raise UsageError(f"{path} holds {len(found)} trials: diff compares files that hold one trial each")
    return found[0]
