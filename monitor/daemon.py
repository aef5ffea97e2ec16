"""`monitor run`: the long-running service, and `monitor run --once`.

* One daemon per database: a lock row with a heartbeat; a second `monitor run`
  on the same database is refused while the first is alive (APScheduler 3
  cannot share a job store between processes).  A dead holder (its heartbeat
  stopped, or its process is gone on this host) is replaced.
* SIGTERM and SIGINT: no new cycle starts; the cycles in flight may finish
  within ``daemon.shutdown_timeout_seconds``.  In its last
  ``ABANDON_GRACE_SECONDS`` (or last half, when shorter) they are told to stop:
  waits (backoff, Retry-After) and requests in flight end at once, and the cycle
  stops between two trials (each trial is its own transaction, so nothing is
  half-written).  At the timeout the process exits 0 whatever the registry does;
  a thread still stuck then (in the database, say) is left to the operating
  system, and its open transaction is rolled back, as after a crash.
* SIGHUP: the configuration is read again; a valid one replaces the schedule,
  an invalid one is logged and the old one kept.
* A failing trial or source is logged with its id and retried next cycle; an
  unexpected error in a cycle is logged and the daemon carries on.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from monitor.clock import Clock, utc_now
from monitor.config import Settings, load_settings
from monitor.cycles import GroupOutcome, run_group
from monitor.errors import MonitorError
from monitor.heap import return_freed_memory, tune_heap
from monitor.live_registry import registry_watched
from monitor.notify import Notifier
from monitor.scheduler import add_group_job, make_scheduler, next_runs
from monitor.store import Store

log = logging.getLogger(__name__)

LOCK = "daemon.lock"
HEARTBEAT_SECONDS = 10
NOTIFY_SECONDS = 30
STALE_AFTER = timedelta(seconds=6 * HEARTBEAT_SECONDS)
ABANDON_GRACE_SECONDS = 2.0


WHOLE_REGISTRY = (
    "the whole registry is watched (`monitor watch add --all`), but no watch group of the configuration has "
    "`all: true`: add one (`- name: registry` with `all: true`) for the service to follow it"
)


class DaemonRefused(MonitorError):
    """Another `monitor run` holds this database."""


def alive_here(owner: str) -> bool | None:
    """Whether the process named by ``owner`` (``host:pid``) is alive, if it is on this host."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class DaemonLock:
    def __init__(self, store: Store, now: Clock = utc_now) -> None:
        self.store, self.now = store, now
        self.owner = f"{socket.gethostname()}:{os.getpid()}"

    def stale(self, holder: dict) -> bool:
        alive = alive_here(holder.get("owner", ""))
        if alive is not None:
            return not alive
        beat = datetime.fromisoformat(holder["beat"])
        return self.now() - beat > STALE_AFTER

    def acquire(self) -> None:
        holder = self.store.service.take_lock(LOCK, self.owner, self.now(), self.stale)
        if holder is not None:
            raise DaemonRefused(
                f"another `monitor run` ({holder.get('owner')}, since {holder.get('since', '?')[:19]}) is using this "
                "database; stop it first, or point this one at another database with --db"
            )

    def beat(self) -> None:
        if not self.store.service.beat_lock(LOCK, self.owner, self.now()):
            log.error("the daemon lock was taken over by another process")

    def release(self) -> None:
        self.store.service.release_lock(LOCK, self.owner)


def run_once(store: Store, settings: Settings, now: Clock = utc_now) -> list[GroupOutcome]:
    """Every watch group's cycle, once, in order."""
    lock = DaemonLock(store, now)
    lock.acquire()
    try:
        outcomes = []
        for group in settings.watches:
            outcome = run_group(store, settings, group, now)
            log.info(outcome.line())
            outcomes.append(outcome)
        return outcomes
    finally:
        lock.release()


class Daemon:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        config: str | None,
        now: Clock = utc_now,
        reload: Callable[[str | None], Settings] = load_settings,
    ) -> None:
        tune_heap()  # before the scheduler's threads: each would keep its own arena's high-water mark
        self.store, self.settings, self.config, self.now, self.reload_settings = store, settings, config, now, reload
        self.lock = DaemonLock(store, now)
        self.stopping = threading.Event()
        self.reload_requested = threading.Event()
        self.abandon = threading.Event()
        self.idle = threading.Condition()
        self.running: set[str] = set()
        self.scheduler = None
        self.published: dict[str, str] = {}  # the next-run times last written, so unchanged ones cost nothing
        self.stuck = False  # a thread outlived the shutdown timeout: the caller must exit hard

    # --- signals ------------------------------------------------------------------------

    def install_signals(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stopping.set())
        signal.signal(signal.SIGINT, lambda *_: self.stopping.set())
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, lambda *_: self.reload_requested.set())

    # --- the loop -----------------------------------------------------------------------

    def serve(self) -> int:
        self.lock.acquire()
        try:
            self.scheduler = make_scheduler(self.settings.daemon)
            self._schedule(first_run=self.now())
            self.scheduler.add_job(self.lock.beat, "interval", seconds=HEARTBEAT_SECONDS, id="heartbeat")
            self.scheduler.add_job(self._notify, "interval", seconds=NOTIFY_SECONDS, id="notify")
            self.scheduler.start()
            groups = ", ".join(f"{g.name} ({g.schedule.text})" for g in self.settings.watches) or "none"
            log.info("daemon started: pid=%s groups=%s", os.getpid(), groups)
            if registry_watched(self.store) and not any(g.all for g in self.settings.watches):
                log.warning(WHOLE_REGISTRY)
            while not self.stopping.wait(0.2):
                if self.reload_requested.is_set():
                    self.reload_requested.clear()
                    self._reload()
                self._publish_next_runs()
            self._shutdown()
        finally:
            self.lock.release()
        log.info("daemon stopped")
        return 0

    def _schedule(self, first_run: datetime | None) -> None:
        for job in self.scheduler.get_jobs():
            if job.id.startswith("group:"):
                job.remove()
        for group in self.settings.watches:
            add_group_job(
                self.scheduler,
                group.name,
                group.schedule,
                self.settings.daemon.jitter_seconds,
                self._run_job,
                first_run,
            )

    def _publish_next_runs(self) -> None:
        """Write each group's next run time for `monitor status`, only when it changed.

        The scheduler keeps its jobs in memory (APScheduler's MemoryJobStore), not in
        its SQLAlchemy job store: the configuration is the truth about the jobs (they
        are replaced at every start and SIGHUP), a persistent store would keep pickled
        callables in the user's database, and `monitor status` would have to unpickle
        scheduler state to read one time.  One state row per group, written when its
        time moves, is all status needs."""
        for name, when in next_runs(self.scheduler).items():
            value = when.isoformat() if when else ""
            if self.published.get(name) != value:
                self.store.service.set_state(f"group.{name}.next_run", value)
                self.published[name] = value

    def _reload(self) -> None:
        try:
            settings = self.reload_settings(self.config)
            settings.require_files()
        except MonitorError as exc:
            log.error("configuration not reloaded, the old one stays: %s", exc.message)
            return
        if settings.database != self.settings.database:
            log.warning("the database setting changed; it takes effect at the next restart")
            settings = replace(settings, database=self.settings.database)
        self.settings = settings
        self._schedule(first_run=self.now())
        log.info("configuration reloaded: %d watch groups", len(settings.watches))

    def _run_job(self, name: str) -> None:
        if self.stopping.is_set():
            return
        with self.idle:
            self.running.add(name)
        try:
            while True:  # a slice of the whole registry's first load is followed by the next one at once
                group = self.settings.group(name)
                outcome = run_group(self.store, self.settings, group, self.now, should_stop=self.abandon.is_set)
                log.info(outcome.line())
                for problem in outcome.problems:
                    log.warning("%s", problem)
                if not (outcome.loading and outcome.complete) or self.stopping.is_set():
                    break
        except Exception:  # one failing cycle never takes the daemon down
            log.exception("cycle group=%s failed unexpectedly; it runs again next time", name)
        finally:
            return_freed_memory()
            with self.idle:
                self.running.discard(name)
                self.idle.notify_all()

    def _notify(self) -> None:
        """Retries and digests between cycles."""
        if not self.settings.notifications.routes or self.stopping.is_set():
            return

        try:
            Notifier(self.store, self.settings, now=self.now).send_due()
        except Exception:  # never take the daemon down
            log.exception("sending notifications failed unexpectedly; they are tried again")

    def _shutdown(self) -> None:
        log.info("stopping: waiting for %d cycle(s) in flight", len(self.running))
        timeout = self.settings.daemon.shutdown_timeout_seconds
        deadline = time.monotonic() + timeout
        self.scheduler.shutdown(wait=False)
        grace = min(ABANDON_GRACE_SECONDS, timeout / 2)
        with self.idle:
            if not self.idle.wait_for(lambda: not self.running, timeout=timeout - grace):
                log.warning("cycles still running after %g s: stopping them between two trials", timeout - grace)
                self.abandon.set()
                self.idle.wait_for(lambda: not self.running, timeout=grace)
        for thread in threading.enumerate():  # the scheduler's workers (a cycle, a notification job)
            if thread is not threading.current_thread() and not thread.daemon:
                thread.join(max(0.0, deadline - time.monotonic()))
                if thread.is_alive():
                    log.error("%s still busy after the %g s shutdown timeout; exiting without it", thread.name, timeout)
                    self.stuck = True
        if self.running:  # a cycle's thread is a daemon thread (APScheduler's), yet joined at exit
            log.error(
                "cycle(s) %s still busy after the %g s shutdown timeout; exiting without them",
                ", ".join(sorted(self.running)),
                timeout,
            )
            self.stuck = True
