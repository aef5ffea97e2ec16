"""The source protocol: what a registry (or any input a watch group can name) provides.

A source is a subclass of :class:`Source` registered in
:data:`monitor.sources.registry.SOURCES` under the word users write in the
configuration (``source: ctgov``).  The polling cycle (:class:`monitor.live.Live`)
asks it, in this order:

1. :meth:`Source.changed_since`: the registry's new *watermark* (a data
   timestamp, a date) and, when the registry can say, which trials changed since
   the last one.  An unmoved watermark with nothing else due ends the cycle.
2. :meth:`Source.search`: a saved search's trials (only sources with ``searches``).
3. :meth:`Source.due`: the watched trials to fetch in full, by the source's cheapest
   plan.  The default plan takes the trials :meth:`Source.changed_since` named, else asks
   :meth:`Source.known` (the ids it knows, each with its (last-update date, status): the
   cheap probe that tells which trials moved), and takes every watched trial at a full
   refresh; a registry with better plans overrides it (ClinicalTrials.gov: the id probe,
   the change query or the whole registry, :mod:`monitor.live_plan`), and keeps what they
   need next time in :meth:`Source.finish`.
4. :meth:`Source.records`: the moved trials' answers, each normalized, diffed and
   stored inside the per-trial boundary (:class:`monitor.checking.Checker`: a bad one
   is that trial's problem alone).
5. :meth:`Source.history`: a trial's past versions (only sources with ``history``),
   answers normalized in the same per-trial path.

Keys: :meth:`Source.parse_key` says whether a key typed by a user (or written in
the configuration) is one of this registry's, in its canonical form; the prefix
rules of every registry are listed in :mod:`monitor.sources.registry`.

A source never stores anything and never catches what it cannot handle: it
raises :class:`~monitor.errors.SourceError` (the cycle stops, untouched trials
wait for the next one) or reports a single trial through ``on_problem``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol

from monitor.errors import NotFoundError, ParseError, SourceError, UsageError
from monitor.model import TrialRecord
from monitor.sources.files import Snapshot

if TYPE_CHECKING:
    from monitor.config import Settings, WatchGroup
    from monitor.live import CycleReport, Live
    from monitor.seen import LastSeen
    from monitor.sources.ctgov_answers import SearchHit
    from monitor.workers import Workers

Seen = tuple[str, "str | None"]  # what the registry says of a trial: (last-update date, status)
OnProblem = Callable[[str, str], None]  # (trial key, what is wrong): one trial's problem, reported once


def shown_key(text: str) -> str:
    """A key as a user typed it, for an error line: as is when plain, otherwise quoted with its
    control characters escaped (no terminal escape reaches the screen), at most 60 characters."""
    if text and text.isprintable() and len(text) <= 60:
        return text
    return repr(text[:60] + ("…" if len(text) > 60 else ""))


@dataclass(frozen=True)
class Changed:
    """What :meth:`Source.changed_since` found: the registry's ``watermark`` now and,
    when the registry can tell, the ``keys`` of the trials changed since the old one
    (``None``: it cannot tell, so every watched trial is probed)."""

    watermark: str
    keys: frozenset[str] | None = None


@dataclass
class Cycle:
    """One polling cycle as a source's plan sees it (:meth:`Source.due`, :meth:`Source.finish`)."""

    live: Live  # the cycle's runner: its store, clock and fetch
    report: CycleReport  # the plan says which ran (``plan``, ``plan_reason``) and how many it probed
    watched: list[str]  # the trials the cycle is over
    seen: LastSeen  # what we last saw of each trial (a mapping read as far as the plan needs it)
    full_due: bool  # every watched trial is due in full (the periodic full refresh)
    changed: Changed  # what :meth:`Source.changed_since` said
    trials: list[str] | None = None  # the watch group's trials (None: every watch)
    queries: list[str] | None = None  # the watch group's saved searches (None: every watch)
    suffix: str = ""  # the group's scope, after the state keys
    registry: bool = False  # the watch group follows the whole registry (`all: true`)
    mark: str | None = None  # the watermark the plan reached (kept by :meth:`Source.finish`)
    waiting: list[str] = field(default_factory=list)  # watched trials never seen: asked for this cycle

    def problem(self, key: str, message: str) -> None:
        """One trial's problem, recorded where ``monitor status`` shows it."""
        self.live._problem(self.report, key, message)


def moved(now: Seen, before: tuple[str | None, str | None] | None) -> bool:
    """Whether the registry's (date, status) of a trial moved since we last saw it."""
    date, status = now
    seen_date, seen_status = before or (None, None)
    return date != seen_date or (seen_status is not None and status != seen_status)


class Answer(Protocol):
    """One trial's answer, received but not yet normalized: it is normalized inside
    the per-trial boundary, so a record that does not normalize is that trial's problem."""

    def snapshot(self) -> Snapshot: ...


@dataclass(frozen=True)
class Fetched:
    """An :class:`Answer` for sources whose normalizer reads the raw text."""

    origin: str  # the request or file, named in errors
    raw: str  # the text as received: stored, hashed and archived as it is
    normalize: Callable[[str], TrialRecord]

    def snapshot(self) -> Snapshot:
        try:
            record = self.normalize(self.raw)
        except ParseError as exc:
            raise ParseError(f"{self.origin}: {exc.message}") from exc
        return Snapshot(record, self.raw, self.origin)


class Source:
    """Base of every source.  Subclasses set the class attributes and implement
    :meth:`open`, :meth:`parse_key`, :meth:`known` and :meth:`records`; the rest is optional."""

    name: ClassVar[str]  # the word users write: `source: ctgov`
    title: ClassVar[str]  # the registry's name in messages: "ClinicalTrials.gov"
    key_hint: ClassVar[str]  # how its keys look, in errors: "an NCT id (NCT followed by 8 digits)"
    searches: ClassVar[bool] = False  # whether watch groups may give it saved searches (`queries`)
    keeps_history: ClassVar[bool] = False  # whether :meth:`history` reaches past versions

    url: str = ""  # where its answers come from, in origins and messages
    requests: int = 0  # requests made so far, retries included

    @classmethod
    def open(
        cls, settings: Settings, should_stop: Callable[[], bool] = lambda: False, group: WatchGroup | None = None
    ) -> Source:
        """The source, ready to ask, configured from ``settings`` (and the watch ``group`` it
        runs for, whose own settings it may read); :meth:`close` ends it."""
        raise NotImplementedError

    @classmethod
    def parse_key(cls, text: str) -> str | None:
        """``text`` as this registry's canonical key, or ``None`` when it is not one of its
        keys.  A key with this registry's prefix but the wrong form is a
        :class:`~monitor.errors.UsageError` saying what the form is."""
        raise NotImplementedError

    def changed_since(self, watermark: str | None) -> Changed:
        """The registry's watermark now (default: none kept, so every cycle probes)."""
        return Changed("")

    def known(self, keys: Iterable[str], on_problem: OnProblem | None = None) -> dict[str, Seen]:
        """Key -> (last-update date, status) for each of ``keys`` the registry knows."""
        raise NotImplementedError

    def due(self, cycle: Cycle) -> list[str]:
        """The watched trials to fetch in full this cycle: all of them at a full refresh, those
        :meth:`changed_since` named (and those never seen), or those whose probed date or status
        moved (a watched trial the registry does not know is that trial's problem)."""
        if cycle.full_due:
            return cycle.watched
        if cycle.changed.keys is not None:  # the registry said which trials changed: no probe
            return [k for k in cycle.watched if k in cycle.changed.keys or k not in cycle.seen]
        probe = self.probe(cycle.watched, cycle.problem)
        cycle.report.probed = len(probe)
        return [k for k in cycle.watched if k in probe and moved(probe[k], cycle.seen.get(k))]

    def probe(self, keys: list[str], problem: OnProblem) -> dict[str, Seen]:
        """:meth:`known` for ``keys``, each key it refuses or does not know told to ``problem``
        (once: a refused key is not also "not found"; a key of another registry is neither)."""
        refused: set[str] = set()

        def on_bad_key(key: str, why: str) -> None:
            refused.add(key)
            problem(key, why)

        found = self.known(keys, on_problem=on_bad_key)
        for key in keys:
            if key not in found and key not in refused and self.owns(key):
                problem(key, f"not found on {self.title}")
        return found

    def finish(self, cycle: Cycle) -> None:
        """After a complete cycle: keep what the plan needs next time (default: nothing)."""

    def use_workers(self, workers: Workers) -> None:
        """The cycle's worker pool, for a source that can hand it work of its own (default: none)."""

    def unfinished(self, cycle: Cycle) -> bool:
        """Whether a plan in progress (a first load in slices) runs even when nothing changed."""
        return False

    def search_since(self, cycle: Cycle) -> str | None:
        """The day saved searches are asked from for what changed within them, or None: each is
        read in full (the default)."""
        return None

    def search_changes(self, live: Live, target: str, since: str, report: CycleReport) -> list | None:
        """A saved search's events from what changed within it since ``since`` (None: read it in full)."""
        return None

    def owns(self, key: str) -> bool:
        """Whether ``key`` is one of this source's keys (a malformed one is not)."""
        try:
            return self.parse_key(key) == key
        except UsageError:
            return False

    def records(self, keys: Iterable[str], on_problem: OnProblem | None = None) -> Iterator[tuple[str, Answer]]:
        """(key, answer) for each of ``keys`` the registry has, each only of a trial asked for."""
        raise NotImplementedError

    def current(self, key: str) -> Snapshot:
        """The registry's current record of one trial (a :class:`~monitor.errors.NotFoundError` if none)."""
        problems: list[str] = []
        for found, answer in self.records([key], lambda k, why: problems.append(why)):
            if found == key:
                return answer.snapshot()
        raise NotFoundError(f"{key} is not on {self.title}" + (f" ({problems[0]})" if problems else ""))

    def history(self, key: str, progress: Callable[[], None] = lambda: None) -> list[Answer]:
        """The trial's past versions, oldest first (``progress`` is called after each), as
        answers the per-trial path normalizes (a :class:`Snapshot` is one, already normalized)."""
        raise SourceError(f"{self.title} keeps no version history")

    def search(self, query: str) -> list[SearchHit]:
        """The trials of a saved search (only when ``searches``)."""
        raise UsageError(f"{self.title} has no saved searches")

    def close(self) -> None:
        """Release what :meth:`open` took (connections)."""
