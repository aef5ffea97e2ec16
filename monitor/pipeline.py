"""Snapshot files in and comparisons out: ``load``, ``diff`` and their helpers.

Each trial of a load goes through the per-trial path (:mod:`monitor.checking`, which
this module's ``ingest``, ``Result`` and clock come from); the CLI and the daemon
call these functions, and so can any Python caller::

    from monitor.pipeline import load
    from monitor.store import Store
    results = load(Store.open("monitor.db"), ["seeds/"])
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.checking import UNREAD, Result, Routes, as_new_version, ingest
from monitor.classify import diff_records
from monitor.clock import Clock, utc_now
from monitor.errors import NotFoundError, SourceError, UsageError
from monitor.limits import Limits
from monitor.loading import refuse, survey
from monitor.model import Change, TrialRecord
from monitor.normalize.text import parse_date
from monitor.results import Results
from monitor.sources.files import Payload, Snapshot, read_payloads_of, read_snapshots, snapshot_files

if TYPE_CHECKING:
    from monitor.store import Store, StoredVersion

# The per-trial path's names, for the callers that know them from here.
__all__ = ["UNREAD", "Clock", "Result", "Routes", "as_new_version", "ingest", "load", "utc_now"]


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
    done: list[Payload] = []
    found: list[str] = []
    for file in files:
        try:
            done += read_payloads_of(file, limits)
        except SourceError as exc:
            found.append(exc.message)
    refuse(found, problems)
    return done


def load(
    store: Store,
    paths: Iterable[str | Path],
    now: Clock = utc_now,
    routes: Routes | None = None,
    problems: list[str] | None = None,
    limits: Limits | None = None,
) -> Results:
    """Load snapshot files and folders into the store, one file at a time in two passes
    (:mod:`monitor.loading`): flat memory for any number of files, each payload normalized once.  Every file is read and
    checked before anything is stored: one bad file and nothing is (unless a ``problems``
    list is given: the bad ones are listed there, the good ones stored).  Each trial then
    goes through the per-trial path (:class:`monitor.checking.Checker`): a trial that fails
    there is a ``failed`` result, its problem recorded, and the others are stored.  The results
    list the first :data:`monitor.results.LISTED` (and every failure) and count the others."""
    found = survey(paths, problems, limits)
    try:
        return found.store(store, now, routes, problems)
    finally:
        found.close()  # the spool of pass 1


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
