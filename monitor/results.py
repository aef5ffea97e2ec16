"""A cycle's or a load's results in bounded memory: the first :data:`LISTED` kept, the rest counted.

A first load of the whole registry stores hundreds of thousands of trials in one cycle; keeping
every :class:`~monitor.checking.Result` (title, origin, changes) for the cycle's report made the
process grow with the watched set.  :class:`Results` is a list of the first ``LISTED`` results
(and of every ``failed`` one, with its problem) that counts the others by status and keeps only
their keys (what :func:`monitor.cycles.expected_events` and :func:`monitor.watching.check_fetched`
ask of them).  What is stored and notified is not affected: versions, changes and deliveries are
written as each trial is checked.  A report of a capped list says so (:meth:`Results.note`:
``note: N more results not listed here``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

from monitor.checking import STORED

if TYPE_CHECKING:
    from monitor.checking import Result

LISTED = 5_000  # results kept in full; about 0.5 kB each, and more with their changes


class Results(list):
    """The first ``limit`` results in full (a list), the others counted by status and by key."""

    def __init__(self, results: Iterable[Result] = (), limit: int | None = None, keyed: bool = True) -> None:
        """``keyed=False``: no trial's key kept (None), for a report nothing asks which trials it
        holds (the whole registry's one-shot load: 570,000 keys in two sets were about 100 MB)."""
        super().__init__()
        self.limit = LISTED if limit is None else limit
        self.statuses: Counter[str] = Counter()  # every result's status, listed or not
        self.keys: set[str] | None = set() if keyed else None  # every result's trial
        self.stored: set[str] | None = set() if keyed else None  # the trials of the results that wrote a version
        self.unlisted = 0
        self.extend(results)

    def append(self, result: Result) -> None:
        self.statuses[result.status] += 1
        if self.keys is not None:
            self.keys.add(result.key)
            if result.status in STORED:
                self.stored.add(result.key)
        if len(self) < self.limit or result.status == "failed":  # every failure is listed, with its problem
            super().append(result)
        else:
            self.unlisted += 1

    def extend(self, results: Iterable[Result]) -> None:
        if not isinstance(results, Results):
            for result in results:
                self.append(result)
            return
        for result in results:
            self.append(result)
        self._count_unlisted(results)

    def __iadd__(self, results: Iterable[Result]) -> Results:  # type: ignore[override]
        self.extend(results)
        return self

    def __reduce__(self):  # pickled whole: list's own way would append the listed ones again
        return _restored, (list(self), self.limit, self.statuses, self.keys, self.stored, self.unlisted)

    def succeeded(self) -> Results:
        """These results but the ``failed`` ones (every one of which is listed)."""
        kept = Results(limit=self.limit, keyed=self.keys is not None)
        for result in self:
            if result.status != "failed":
                kept.append(result)
        kept._count_unlisted(self)
        return kept

    def _count_unlisted(self, other: Results) -> None:
        """Count and key ``other``'s unlisted results too (its listed ones were appended)."""
        self.statuses.update(other.statuses - Counter(r.status for r in other))
        if self.keys is not None:
            if other.keys is None:
                raise ValueError("results that keep no keys cannot be added to results that do")
            self.keys |= other.keys
            self.stored |= other.stored
        self.unlisted += other.unlisted

    @property
    def total(self) -> int:
        """Every result, listed or not."""
        return len(self) + self.unlisted

    def count_of(self, *statuses: str) -> int:
        """How many results, listed or not, have one of ``statuses``."""
        return sum(self.statuses[s] for s in statuses)

    def note(self) -> str:
        """The line a report adds when some results are not listed; empty when all are."""
        return f"note: {self.unlisted:,} more results not listed here" if self.unlisted else ""


def _restored(listed, limit, statuses, keys, stored, unlisted) -> Results:
    found = Results(limit=limit)
    found[:] = listed  # as they were: counted below
    found.statuses, found.keys, found.stored, found.unlisted = statuses, keys, stored, unlisted
    return found
