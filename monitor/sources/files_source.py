"""``source: files``: snapshot files and folders as a :class:`~monitor.sources.base.Source`.

The files of a watch group's ``snapshots`` are the registry: the trials they
hold are the ids it knows, each file a record, and the copies of one trial
(oldest registry date first) its history.  Keys of records without an NCT id
are this source's: ``ORG-...`` (the organization's study id) and ``TITLE-...``
(:mod:`monitor.normalize.identity`).  The daemon loads a group's snapshots all
or nothing through :func:`monitor.pipeline.load`; this class serves the cycle
and any Python caller one trial at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.errors import NotFoundError, ParseError
from monitor.limits import Limits
from monitor.normalize.identity import LOCAL_KEY
from monitor.sources.base import Answer, OnProblem, Seen, Source
from monitor.sources.files import Payload, Snapshot, read_payloads_of, snapshot_files

if TYPE_CHECKING:
    from monitor.config import Settings, WatchGroup


class FilesSource(Source):
    name = "files"
    title = "the snapshot files"
    key_hint = "a key shown by `monitor load` such as ORG-2024-0530"
    keeps_history = True

    def __init__(self, paths: Iterable[str | Path], limits: Limits | None = None) -> None:
        self.paths = list(paths)
        self.limits = limits
        self.url = ", ".join(map(str, self.paths))
        self._read: list[tuple[Snapshot, tuple[str, str], Payload]] | None = None

    @classmethod
    def open(
        cls, settings: Settings, should_stop: Callable[[], bool] = lambda: False, group: WatchGroup | None = None
    ) -> FilesSource:
        return cls(group.snapshots if group else (), settings.limits)

    @classmethod
    def parse_key(cls, text: str) -> str | None:
        candidate = text.strip()
        return candidate if LOCAL_KEY.fullmatch(candidate) else None

    def _copies(self, on_problem: OnProblem | None = None) -> list[tuple[Snapshot, tuple[str, str], Payload]]:
        """Every record in the files, normalized, oldest registry date first (read once)."""
        if self._read is None:
            found = []
            for file in snapshot_files(self.paths):
                for payload in read_payloads_of(file, self.limits):
                    try:
                        snapshot = payload.snapshot()
                    except ParseError as exc:
                        if on_problem:
                            on_problem(payload.origin, exc.message)
                        continue
                    found.append((snapshot, payload.registry_date(snapshot.record), payload))
            self._read = sorted(found, key=lambda copy: (copy[0].record.key, copy[1]))
        return self._read

    def known(self, keys: Iterable[str], on_problem: OnProblem | None = None) -> dict[str, Seen]:
        wanted = set(keys)
        return {
            s.record.key: (s.record.last_update_posted or "", s.record.overall_status)
            for s, _, _ in self._copies(on_problem)
            if s.record.key in wanted
        }

    def records(self, keys: Iterable[str], on_problem: OnProblem | None = None) -> Iterator[tuple[str, Answer]]:
        wanted = set(keys)
        if not self.paths:  # asked outside a watch group: nothing to read them from
            for key in sorted(wanted):
                if on_problem:
                    on_problem(key, "the key of a snapshot file: `monitor load FILE` reads it; no registry has it")
            return
        for snapshot, _, payload in self._copies(on_problem):
            if snapshot.record.key in wanted:
                yield snapshot.record.key, payload

    def history(self, key: str, progress: Callable[[], None] = lambda: None) -> list[Snapshot]:
        if not self.paths:  # asked outside a watch group (`monitor backfill ORG-...`): nothing to read
            raise NotFoundError(
                f"{key} is the key of a snapshot file: no registry keeps its history; "
                "`monitor load FILE...` stores its versions"
            )
        return [snapshot for snapshot, _, _ in self._copies() if snapshot.record.key == key]
