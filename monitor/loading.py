"""``monitor load`` of any size, in flat memory: two passes over the files.

Pass 1 (:func:`survey`) reads one file at a time, checks and normalizes every
payload in it, and keeps only small facts about each one (its trial, registry
date, format, hashes and where it is); the payloads themselves are dropped with
the file.  Nothing is written, so the all-or-nothing promise of ``load`` holds:
any bad file, any payload that does not normalize, any trial with two different
copies of one registry date, and nothing is stored (unless a ``problems`` list
is given: then those are listed there and left out).

Pass 2 (:meth:`Survey.store`) stores each payload through the per-trial path
(:meth:`monitor.checking.Checker.check`: a trial that fails there is a ``failed`` result and its
recorded problem, the others are stored), oldest registry date first within each trial: in rounds
(the first copy of every trial, then the second, ...), its heads in one query and its versions
written hundreds of trials a transaction (:mod:`monitor.batch`: a version the database refuses is
refused alone).  Each payload is normalized once: pass 1 writes what it made of it (the snapshot,
pickled and compressed, about a third of the file's size) to an unnamed temporary file, the spool,
which pass 2 reads back instead of reading and normalizing the file again; what is stored is what
was checked, even if a file changes meanwhile.  The spool is gone when the load ends (in the
system's temporary folder: ``TMPDIR``).

Peak memory is one file's payloads plus about 300 bytes per payload (its :class:`Fact`).
"""

from __future__ import annotations

import pickle
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, NamedTuple

from monitor.batch import Batch
from monitor.checking import Checker, Result, Routes
from monitor.clock import Clock
from monitor.diff import fingerprint
from monitor.errors import ParseError, SourceError, StoreError
from monitor.limits import Limits
from monitor.results import Results
from monitor.sources.files import read_payloads_of, snapshot_files

if TYPE_CHECKING:
    from monitor.sources.files import Snapshot
    from monitor.store import Store

SIZE = struct.Struct("<I")  # the length of each spooled snapshot, before it


class Fact(NamedTuple):
    """What pass 1 keeps of one payload."""

    key: str
    date: tuple[str, str]  # registry date: lastUpdatePostDate, then versionHolder
    seq: int  # input order (ties keep it)
    raw_hash: str
    file: int  # index in Survey.files
    index: int  # the payload's position in its file
    form: str  # the record's format (API study or page)
    content: str  # the record's fingerprint
    spot: int  # where its snapshot is in the spool


@dataclass
class Survey:
    """Pass 1's findings: the files, a fact per good payload, the problems found."""

    files: list[Path] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (raw hash, problem): payloads that do not normalize
    spool: IO[bytes] | None = None  # every good payload's snapshot, as pass 1 made it (Fact.spot)

    @property
    def count(self) -> int:
        return len(self.facts) + len(self.failed)

    def store(
        self,
        store: Store,
        now: Clock,
        routes: Routes | None = None,
        problems: list[str] | None = None,
        progress: Callable[[str, int], None] | None = None,
    ) -> Results:
        """Pass 2: store every surveyed payload, each through the per-trial path.  Refused
        before anything is stored (unless ``problems`` lists them): a payload that does not
        normalize, two different copies of one trial with one registry date.  A trial that
        fails in the per-trial path is a ``failed`` result (and listed in ``problems``)."""
        stored = store.versions.raw_hashes()
        fresh = sorted((f for f in self.facts if f.raw_hash not in stored), key=lambda f: (f.key, f.date, f.seq))
        clashing = self._clashes(fresh)
        found = [problem for raw, problem in self.failed if raw not in stored]
        refuse(found + list(clashing.values()), problems)
        checker = Checker(store, now, routes)
        results = Results()  # the first LISTED in full, the others counted
        rounds: dict[str, int] = {}  # key -> copies of it so far
        todo: list[list[Fact]] = []  # round -> the copies in it
        for fact in self.facts:
            if fact.raw_hash in stored:
                key, number, title = stored[fact.raw_hash]
                origin = str(self.files[fact.file])
                note = f"same as version {number}"
                results.append(Result(key, title or key, "unchanged", number, origin, note=note))
        for fact in fresh:
            if fact.key in clashing:
                continue
            n = rounds[fact.key] = rounds.get(fact.key, -1) + 1
            if n == len(todo):
                todo.append([])
            todo[n].append(fact)
        for copies in todo:  # a round holds one copy of a trial: its heads read at once, its versions batched
            heads = store.versions.latest_heads(f.key for f in copies)
            origins: dict[str, str] = {}

            def refused(key: str, why: str, origins: dict[str, str] = origins) -> None:  # alone, by the database
                checker.problem(key, why)
                results.append(failed(checker, key, origins[key], problems))

            batch = Batch(store, lambda _key, result: results.append(result), refused)
            try:
                for _file, facts in _by_file(copies):
                    for fact in facts:
                        answer = self._spooled(fact)  # normalized in pass 1
                        origins[fact.key] = answer.origin
                        result = checker.check(fact.key, answer, head=heads.get(fact.key), write=batch.write)
                        if result is None:
                            results.append(failed(checker, fact.key, answer.origin, problems))
                        else:
                            batch.hold(fact.key, result)
                        if progress:
                            progress("records", 1)
            finally:  # what was read is written, even when a later file stops the load
                batch.flush()
        results.sort(key=lambda r: r.key)
        return results

    def _clashes(self, ordered: list[Fact]) -> dict[str, str]:
        """Trials with two different copies of one format and one registry date: {key: problem}."""
        seen: dict[tuple, Fact] = {}
        clashing: dict[str, str] = {}
        for fact in ordered:
            first = seen.setdefault((fact.key, fact.form, fact.date), fact)
            if first.content != fact.content and fact.key not in clashing:
                a, b = self.files[first.file], self.files[fact.file]
                where = f"twice in {a}" if a == b else f"in {a} and {b}"
                clashing[fact.key] = (
                    f"{fact.key}: two different copies with the same registry date ({fact.date[0] or 'no date'}) "
                    f"{where}; which one is the trial's record cannot be told"
                )
        return clashing

    def _spool(self, snap: Snapshot) -> int:
        """Write ``snap`` to the spool; where it is."""
        blob = zlib.compress(pickle.dumps(snap, pickle.HIGHEST_PROTOCOL), 1)
        try:
            if self.spool is None:  # unnamed, so gone with the process whatever happens; closed by close()
                self.spool = tempfile.TemporaryFile(prefix="monitor-load-")  # noqa: SIM115 (outlives this call)
            spot = self.spool.seek(0, 2)
            self.spool.write(SIZE.pack(len(blob)) + blob)
        except OSError as exc:
            raise _unwritable(exc) from exc
        return spot

    def flushed(self) -> Survey:
        """The spool on disk, every byte (a short write leaves its rest in the file's buffer: a full
        disk shows only here), so that a full disk is pass 1's error, before anything is stored."""
        try:
            if self.spool is not None:
                self.spool.flush()
        except OSError as exc:
            self.close()
            raise _unwritable(exc) from exc
        return self

    def _spooled(self, fact: Fact) -> Snapshot:
        assert self.spool is not None
        self.spool.seek(fact.spot)
        (size,) = SIZE.unpack(self.spool.read(SIZE.size))
        return pickle.loads(zlib.decompress(self.spool.read(size)))  # written by this process: trusted

    def close(self) -> None:
        """Remove the spool (also when the survey is collected)."""
        if self.spool is not None:
            with suppress(OSError):  # what it could not flush (a full disk) is dropped with it: the file is closed
                self.spool.close()
            self.spool = None


def _unwritable(exc: OSError) -> StoreError:
    return StoreError(
        f"could not write the load's temporary file in {tempfile.gettempdir()} ({exc.strerror or exc}); "
        "nothing was stored: set TMPDIR to a folder with room (about a third of the files' size)"
    )


def failed(checker: Checker, key: str, origin: str, problems: list[str] | None) -> Result:
    """The result of a trial the per-trial path could not store (its problem is recorded)."""
    problem = checker.failures[key]
    if problems is not None:
        problems.append(f"{key}: {problem}")
    return Result(key, key, "failed", None, origin, note=problem)


def refuse(found: list[str], problems: list[str] | None) -> None:
    """Raise the first of ``found`` problems, or add them to ``problems`` when skipping bad inputs."""
    if problems is not None:
        problems.extend(found)
    elif found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise SourceError(f"{found[0]}{more}; nothing was stored")


def _by_file(copies: list[Fact]) -> Iterable[tuple[int, list[Fact]]]:
    grouped: dict[int, list[Fact]] = {}
    for fact in sorted(copies, key=lambda f: (f.file, f.index)):
        grouped.setdefault(fact.file, []).append(fact)
    return grouped.items()


def survey(paths: Iterable[str | Path], problems: list[str] | None = None, limits: Limits | None = None) -> Survey:
    """Pass 1 over ``paths``: every file read and checked, one at a time; an unreadable or
    malformed file is an error (``nothing was stored``), or, with ``problems``, listed there."""
    try:
        files = snapshot_files(list(paths), problems)
    except SourceError as exc:  # raised only without a problems list
        raise SourceError(f"{exc.message}; nothing was stored") from exc
    found = Survey()
    unreadable: list[str] = []
    for path in files:
        try:
            payloads = read_payloads_of(path, limits)
        except SourceError as exc:
            unreadable.append(exc.message)
            continue
        found.files.append(path)
        for index, payload in enumerate(payloads):
            _note(found, payload, len(found.files) - 1, index)
    refuse(unreadable, problems)
    return found.flushed()


def _note(found: Survey, payload, file: int, index: int) -> None:
    try:
        snap = payload.snapshot()
    except ParseError as exc:
        found.failed.append((payload.raw_hash, exc.message))
        return
    record, date = snap.record, payload.registry_date(snap.record)
    spot = found._spool(snap)
    fact = Fact(
        record.key, date, len(found.facts), payload.raw_hash, file, index, record.source, fingerprint(record), spot
    )
    found.facts.append(fact)
