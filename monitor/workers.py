"""The second core for bulk fetches: normalize and project in worker processes.

A fetch of many answers (a first load, a whole-registry page, a full refresh)
spends most of its CPU normalizing each registry answer (JSON to
:class:`TrialRecord`, with its schema checks), projecting it for comparison when the
trial has a stored version (:func:`monitor.diff.project`, hashed by
:func:`monitor.diff.hash_projection`; a new trial is stored unhashed) and packing it.
Neither needs the store, so :class:`Workers` runs them (:mod:`monitor.prepare`) in a
pool of processes while the parent keeps everything that touches the store (heads,
diff, the batched writes), in the registry's order.

* Only a fetch of at least ``POOL_MIN`` answers uses the pool; smaller ones, and
  any answer that is not a plain registry payload, take the serial path.
* At most ``IN_FLIGHT`` chunks of ``CHUNK`` answers are out at a time: memory
  stays flat whatever the size of the fetch.
* A worker's failure on one trial comes back as that trial's exception, raised
  where the serial path would have raised it (the per-trial boundary); a chunk
  whose worker died is prepared again in the parent, so nothing is lost; the
  next fetch of the session starts a new pool.
* The pool lives as long as the outermost :meth:`Workers.session` (a cycle, or
  one fetch) and is shut down when it ends, stopped part-way or not.
* ``MONITOR_WORKERS`` sets the number of workers (``0``: no pool); the default
  is one a core.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from typing import Any

from monitor.config import environment  # the environment is read in one place
from monitor.errors import ConfigError
from monitor.limits import Limits
from monitor.prepare import Decoded, Prepared, decode, prepare
from monitor.sources.files import Payload

log = logging.getLogger(__name__)

POOL_MIN = 200  # answers in one fetch before the pool is worth its start-up
CHUNK = 25  # answers a task: few round trips, small enough to keep both cores busy
IN_FLIGHT = 4  # chunks submitted ahead per worker: bounded memory, no idle worker
MAX_WORKERS = 32  # MONITOR_WORKERS at most: each worker holds IN_FLIGHT chunks and a whole interpreter
PARENT_CHECK_SECONDS = 1.0  # how often a worker looks whether its parent is still there
STUCK_SECONDS = 5.0  # a worker dead this long and its pool still not broken: stuck on its half-sent answer


def default_workers() -> int:
    """``MONITOR_WORKERS`` when set (0 turns the pool off), otherwise one worker a core."""
    given = environment("MONITOR_WORKERS")
    if given is None:
        return os.cpu_count() or 1
    given = given.strip()
    if not (given.isascii() and given.isdigit()):  # str.isdigit() also takes '²' and '٣'
        raise ConfigError(f"MONITOR_WORKERS: {given!r} should be a whole number of worker processes (0: none)")
    if len(given) > 3 or int(given) > MAX_WORKERS:
        raise ConfigError(f"MONITOR_WORKERS: {given} is too many: at most {MAX_WORKERS} worker processes (0: none)")
    return int(given)


def _quiet(parent: int | None = None) -> None:
    """A worker leaves Ctrl-C to the parent, which stops between trials and shuts the pool down;
    and ends itself once ``parent`` is gone (a ``kill -9``-ed parent never shuts the pool down)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if parent is not None:
        threading.Thread(target=_end_with, args=(parent,), name="parent-watch", daemon=True).start()


def _end_with(parent: int) -> None:
    """In a worker: look every ``PARENT_CHECK_SECONDS`` whether the parent is still there."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(0)


class Workers:
    """A pool of worker processes, started on first use within a :meth:`session`."""

    def __init__(self, workers: int | None = None, minimum: int = POOL_MIN) -> None:
        self.workers = default_workers() if workers is None else workers
        self.minimum = minimum
        self.pool: ProcessPoolExecutor | None = None
        self.depth = 0
        self.diffed: set[str] = set()  # the keys of the fetch under way that have a stored version
        self.broken: list[str] = []  # once the pool fails in a fetch, the parent prepares the rest

    @contextmanager
    def session(self) -> Iterator[Workers]:
        """Keep the pool (once started) until the outermost session ends, then shut it down."""
        self.depth += 1
        try:
            yield self
        finally:
            self.depth -= 1
            if self.depth == 0:
                self.close()

    def close(self) -> None:
        pool, self.pool = self.pool, None
        if pool is not None:
            if _worker_dead(pool):  # its manager may wait for ever for a dead worker's half-sent answer
                time.sleep(0.2)  # a worker's plain death is seen within milliseconds: the pool is broken
                if _worker_dead(pool):
                    _unstick(pool)
            pool.shutdown(wait=True, cancel_futures=True)

    def wanted(self, count: int) -> bool:
        """Whether a fetch of ``count`` answers goes through the pool."""
        return self.workers > 0 and count >= self.minimum

    def _pool(self) -> ProcessPoolExecutor:
        if self.pool is not None and self.pool._broken:  # a worker died (its failure was said): a new pool
            self.close()  # for what follows, not one refusal and its warning a fetch for the rest of the session
        if self.pool is None:
            context = multiprocessing.get_context("spawn")  # no fork: the daemon has threads
            self.pool = ProcessPoolExecutor(
                self.workers, mp_context=context, initializer=_quiet, initargs=(os.getpid(),)
            )
        return self.pool

    def decoding(self, count: int) -> bool:
        """Whether a fetch of ``count`` trials decodes its pages here: only within a session
        (whose end shuts the pool down) and for a fetch that uses the pool."""
        return self.depth > 0 and self.wanted(count)

    def decode_page(
        self, body: bytes, origin: str, asked: Iterable[str], limits: Limits, registry: bool = False
    ) -> PagePieces | None:
        """Send the pieces of a ``/studies`` page to the workers (decoded, normalized and
        prepared there); None when the page is not one :func:`split_page` cuts.  ``registry``: a
        page of the whole registry (:func:`decode` checks each study there; its ``nextPageToken``
        is read here, in :attr:`PagePieces.token`); otherwise a page of trials asked for by id."""
        from monitor.sources.ctgov_pages import split_page  # start-up speed: a worker loads httpx only for pages

        split = split_page(body)
        if split is None or (split.token is not None and not registry):  # more after it: read the old way
            return None
        wanted = frozenset(k for k in asked if k in self.diffed)
        futures: list[Future | None] = []
        pieces = split.pieces(body, CHUNK)
        for first, piece in pieces:
            future = None
            if not self.broken:
                try:
                    future = self._pool().submit(decode, piece, origin, wanted, limits, first if registry else None)
                except Exception as exc:  # a broken pool
                    _broken(self.broken, exc)
            futures.append(future)
        sizes = [min(CHUNK, len(split.starts) - first) for first, _ in pieces]
        return PagePieces(futures, origin, self.broken, split.token, sizes, self.pool)

    def processes(self) -> list[int]:
        """The process ids of the pool's workers (none when no pool runs)."""
        return list(getattr(self.pool, "_processes", None) or {})

    def prepared(
        self, answers: Iterable[tuple[str, Any]], diffed: Iterable[str] = ()
    ) -> Iterator[tuple[str, Any, Prepared | None]]:
        """``(key, answer, prepared)`` for each answer, in order; ``prepared`` is None for an
        answer the parent prepares itself.  ``diffed``: the keys whose projection is wanted
        back (trials with a stored version).  Closing the iterator cancels what is in flight."""
        pool, diffed, source = self._pool(), set(diffed), iter(answers)
        self.diffed, self.broken = diffed, []  # for the pages this fetch decodes here (decode_page)
        window: deque[tuple[list, list[bool], Future | None]] = deque()
        broken = self.broken  # once the pool fails, the parent prepares the rest itself

        def submit() -> bool:
            chunk = list(islice(source, CHUNK))
            if not chunk:
                return False
            sent = [type(a) is Payload and a.study is not None for _, a in chunk]
            jobs = [(a.origin, a.raw, k in diffed) for (k, a), s in zip(chunk, sent, strict=True) if s]
            future = None
            if jobs and not broken:
                try:
                    future = pool.submit(prepare, jobs)
                except Exception as exc:  # a broken pool
                    _broken(broken, exc)
            window.append((chunk, sent, future))
            return True

        try:
            while len(window) < IN_FLIGHT * self.workers and submit():
                pass
            while window:
                chunk, sent, future = window.popleft()
                done = iter(_results(future, len(chunk), broken, pool))
                submit()
                for (key, answer), s in zip(chunk, sent, strict=True):
                    yield key, answer, next(done) if s else getattr(answer, "prepared", None)
        finally:
            for _, _, future in window:
                if future is not None:
                    future.cancel()
            if hasattr(source, "close"):  # a source decoding its pages here cancels what it sent
                source.close()


def _broken(broken: list[str], exc: BaseException) -> None:
    if not broken:
        log.warning("the worker pool failed (%s: %s); the trials left are prepared here", type(exc).__name__, exc)
    broken.append(type(exc).__name__)


def _results(future: Future | None, size: int, broken: list[str], pool) -> list[Prepared | None]:
    """A chunk's results; Nones (the parent prepares) when its worker failed as a whole."""
    if future is None:
        return [None] * size
    try:
        return answer(future, pool)
    except Exception as exc:  # the worker died (killed, out of memory) or its answer did not travel
        _broken(broken, exc)
        return [None] * size


def answer(future: Future, pool: ProcessPoolExecutor | None) -> Any:
    """``future.result()``, but never a wait for ever.  A worker killed in the middle of sending
    its answer leaves ``pool`` reading the rest of it for ever, never broken (a limit of Python's
    process pool): once one of its workers has been dead for ``STUCK_SECONDS`` with the pool still
    not broken, the pool is unstuck (:func:`_unstick`) and the answer raises
    :class:`BrokenProcessPool`, as any dead worker's does (its trials are then prepared here)."""
    dead_since: float | None = None
    while True:
        try:
            return future.result(timeout=1.0)
        except FutureTimeout:
            pass
        if pool is None or not _worker_dead(pool):
            continue
        if dead_since is None:
            dead_since = time.monotonic()
        elif time.monotonic() - dead_since >= STUCK_SECONDS:
            _unstick(pool)
            try:
                return future.result(timeout=STUCK_SECONDS)
            except FutureTimeout:
                raise BrokenProcessPool("a worker died and its pool did not say so; it was stopped") from None


def _worker_dead(pool: ProcessPoolExecutor) -> bool:
    """Whether a worker of ``pool`` is dead while the pool does not know it (is not broken)."""
    return not pool._broken and any(not p.is_alive() for p in list((pool._processes or {}).values()))


def _unstick(pool: ProcessPoolExecutor) -> None:
    """End a pool stuck reading a dead worker's half-sent answer: its other workers killed and the
    monitor's own copy of the answers' pipe closed, its reader gets to the end of the pipe, and the
    pool breaks as for any dead worker (its pending answers raise :class:`BrokenProcessPool`)."""
    log.warning("a worker process died in the middle of its answer; the worker pool is stopped")
    for process in list((pool._processes or {}).values()):
        process.kill()
    pool._result_queue._writer.close()


@dataclass
class PagePieces:
    """A page's pieces out with the workers (:meth:`Workers.decode_page`)."""

    futures: list[Future | None]
    origin: str
    broken: list[str]
    token: str | None = None  # the page's nextPageToken (None: the last page)
    sizes: list[int] | None = None  # the studies the cutting found in each piece
    pool: ProcessPoolExecutor | None = None  # the pool the pieces were sent to

    def studies(self) -> list[Decoded] | None:
        """The page's studies, in order; None when a piece did not decode cleanly, its worker
        failed, or it holds another number of studies than the cutting found (a study cut at a
        ``"protocolSection"`` key that does not start it, or not cut at one that does not come
        first: the JSON paths of the studies after it would be wrong); the page is then read the
        old way."""
        found: list[Decoded] = []
        for at, future in enumerate(self.futures):
            if future is None:
                return None
            try:
                done = answer(future, self.pool)
            except Exception as exc:  # the worker died (killed, out of memory)
                _broken(self.broken, exc)
                done = None
            if done is None or (self.sizes is not None and len(done) != self.sizes[at]):
                return None
            found += [
                Decoded(self.origin, raw, None, key, prepared, refused, updated)
                for key, raw, prepared, refused, updated in done
            ]
        return found

    def cancel(self) -> None:
        for future in self.futures:
            if future is not None:
                future.cancel()
