"""Now, and the ids the product makes, from one place.

Every timestamp the product writes (a version's load time, a change's detection time,
a delivery's attempts, the daemon's lock and run times) comes from :func:`utc_now`,
the default of every ``now: Clock`` parameter; every id it makes (a notification
sender's lease owner) comes from :func:`new_id`.  A test, or a user replaying history,
installs a fixed clock or a predictable id maker here once (:func:`installed`) and
every layer sees it, down to the store's timestamps.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]
IdMaker = Callable[[], str]


def system_now() -> datetime:
    """The machine's clock, in UTC."""
    return datetime.now(UTC)


def random_id() -> str:
    """Eight random hex digits: unique enough between the senders of one machine."""
    return uuid.uuid4().hex[:8]


class _Sources:
    now: Clock = system_now
    new_id: IdMaker = random_id


def utc_now() -> datetime:
    """Now, in UTC, from the installed clock (the machine's unless :func:`installed` says otherwise)."""
    return _Sources.now()


def new_id() -> str:
    """A new id from the installed id maker."""
    return _Sources.new_id()


@contextmanager
def installed(now: Clock | None = None, ids: IdMaker | None = None) -> Iterator[None]:
    """Within the block, :func:`utc_now` reads ``now`` and :func:`new_id` calls ``ids``
    (each left as it was when not given); restored afterwards."""
    before = (_Sources.now, _Sources.new_id)
    _Sources.now = now or before[0]
    _Sources.new_id = ids or before[1]
    try:
        yield
    finally:
        _Sources.now, _Sources.new_id = before


class SetClock:
    """A clock that says the time it is set to (a test, a replay of history): ``clock.at = ...``,
    ``clock.advance(days=8)``; pass it as any ``now: Clock`` or to :func:`installed`."""

    def __init__(self, at: datetime | str) -> None:
        self.at = datetime.fromisoformat(at).replace(tzinfo=UTC) if isinstance(at, str) else at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)
