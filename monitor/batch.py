"""A fetch's versions written hundreds at a time, its results reported in order.

The live source normalizes and diffs each trial on its own (the per-trial
boundary), but writes the versions of a batch of trials together
(``store.versions.add_versions``, :mod:`monitor.store.bulk`: a few statements per batch, one
transaction, and a version the database refuses is refused alone).  A trial's
result counts only once its version is written: until then it is held here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.store import NewVersion, Store

BATCH_SIZE = 250  # trials per transaction: few statements per trial, a short write lock


class Batch:
    """Versions waiting to be written together, and the trials waiting for them.

    ``write`` stands in for ``store.versions.add_version`` (give it to
    :func:`monitor.pipeline.ingest`); ``hold`` keeps a trial's outcome until its
    batch is written; ``flush`` writes and hands each held trial, in the order
    held, to ``done`` (its version written, or nothing to write) or ``failed``
    (refused by the database, with the reason)."""

    def __init__(
        self,
        store: Store,
        done: Callable[[str, Any], None],
        failed: Callable[[str, str], None],
        size: int = BATCH_SIZE,
    ) -> None:
        self.store, self.done, self.failed, self.size = store, done, failed, size
        self.pending: list = []
        self.held: list[tuple[str, Any]] = []
        self.writing: set[str] = set()

    def write(self, new: NewVersion, number: int, routes=()) -> int:
        from monitor.store import PendingVersion  # start-up speed: `monitor diff A B` loads no SQLAlchemy

        self.pending.append(PendingVersion(new, number, tuple(routes)))
        self.writing.add(new.record.key)
        return number

    def waiting(self, key: str) -> bool:
        """Whether a version of ``key`` waits to be written (read nothing of it before a flush)."""
        return key in self.writing

    def hold(self, key: str, outcome: Any) -> None:
        self.held.append((key, outcome))
        if len(self.held) >= self.size:
            self.flush()

    def flush(self) -> None:
        pending, held = self.pending, self.held
        self.pending, self.held, self.writing = [], [], set()
        refused = self.store.versions.add_versions(pending) if pending else {}
        for key, outcome in held:
            if key in refused:
                self.failed(key, refused[key])
            else:
                self.done(key, outcome)
