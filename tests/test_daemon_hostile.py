"""`monitor run` and the CLI as real processes against a hostile local registry
(tests/ctgov_server.py): the healthy trials are stored, nothing foreign is, the bad
trial's error is in `monitor status`, and SIGTERM ends the daemon within its
shutdown timeout whatever the registry does."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from test_daemon import Daemon, versions

from monitor.config import Schedule, WatchGroup
from monitor.store import Store

from conftest import UNKNOWN, monitor_process, study
from conftest import write_config as daemon_config
from ctgov_server import Fault

SHUTDOWN_TIMEOUT = 3


def write_config(path: Path, server_url: str, trials: list[str], timeout: float = 5, retries: int = 1) -> Path:
    """The daemon's configuration, with the short shutdown timeout these tests measure against."""
    return daemon_config(path, server_url, trials, timeout=timeout, retries=retries, shutdown=SHUTDOWN_TIMEOUT)


def trial_error(db: Path, key: str) -> str | None:
    if not db.exists():
        return None
    with sqlite3.connect(db, timeout=30) as conn:
        try:
            row = conn.execute("SELECT last_error FROM trial_state WHERE trial_key = ?", (key,)).fetchone()
        except sqlite3.OperationalError:
            return None
    return row[0] if row else None


def malformed(key: str = "NCT06302556") -> bytes:
    record = study(UNKNOWN / "2026-02-02.json")
    record["protocolSection"]["statusModule"] = "RECRUITING"
    return json.dumps(record).encode()


def foreign() -> dict:
    record = study(UNKNOWN / "2026-02-02.json")
    record["protocolSection"]["identificationModule"]["nctId"] = "NCT09999999"
    return record


def test_the_daemon_stores_the_healthy_trials_and_shows_the_bad_ones_in_status(server, tmp_path):
    server.set_raw("NCT06302556", malformed(), "2026-02-02")
    server.extra.append(foreign())
    config = write_config(tmp_path / "monitor.yaml", server.url, ["NCT06821503", "NCT06302556", "NCT06387628"])
    db = tmp_path / "monitor.db"
    daemon = Daemon(config)
    try:
        daemon.wait_for(lambda: versions(db, "NCT06821503") == versions(db, "NCT06387628") == 1, "the healthy trials")
        daemon.wait_for(lambda: trial_error(db, "NCT06302556"), "the malformed trial's error")
        daemon.wait_for(lambda: trial_error(db, "NCT09999999"), "the foreign trial's problem")
        status = monitor_process("--config", config, "status", cwd=tmp_path)
    finally:
        assert daemon.stop() == 0, daemon.text()
    assert versions(db, "NCT06302556") == 0 and versions(db, "NCT09999999") == 0
    lines = status.stdout.splitlines()
    assert any(line.startswith("error           NCT06302556: ") for line in lines), status.stdout
    assert any(
        line.startswith("error           NCT09999999: ClinicalTrials.gov answered this trial when asked for ")
        for line in lines
    ), status.stdout
    assert "last run      never" not in status.stdout
    assert "NCT06302556" in daemon.text(), "logged with the trial id"


@pytest.mark.parametrize(
    "fault",
    [
        Fault("/api/v2/studies", status=200, hang=True, times=999),
        Fault("/api/v2/studies", status=200, drip=2.0, times=999),
        Fault("/api/v2/studies", status=429, retry_after="1000000000", times=999),
    ],
    ids=["a_hanging_registry", "a_dripping_registry", "retry_after_1e9"],
)
def test_sigterm_ends_the_daemon_within_its_shutdown_timeout_whatever_the_registry_does(server, tmp_path, fault):
    server.faults.append(fault)
    config = write_config(tmp_path / "monitor.yaml", server.url, ["NCT06821503"], timeout=600, retries=5)
    daemon = Daemon(config)
    daemon.wait_for(lambda: server.count("/api/v2/studies") >= 1, "the request the registry misbehaves on")
    daemon.process.send_signal(signal.SIGTERM)
    started = time.monotonic()
    code = daemon.process.wait(timeout=SHUTDOWN_TIMEOUT + 10)  # raises if SIGTERM is not honoured
    print(f"SIGTERM to exit: {time.monotonic() - started:.2f} s (shutdown timeout {SHUTDOWN_TIMEOUT} s)")
    assert code == 0, daemon.text()
    assert "daemon stopped" in daemon.text()
    db = tmp_path / "monitor.db"
    assert versions(db, "NCT06821503") == 0
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_failing_group_says_why_in_status_never_last_run_never(server, tmp_path):
    config = write_config(tmp_path / "monitor.yaml", server.root, ["NCT06821503"])  # no /v2: /version is 404
    once = monitor_process("--config", config, "run", "--once", cwd=tmp_path)
    assert once.returncode == 0
    status = monitor_process("--config", config, "status", cwd=tmp_path).stdout
    assert "last run      never" not in status
    assert (
        f"  last error    ClinicalTrials.gov: {server.root}: not a ClinicalTrials.gov API v2 base URL (GET /version answered 404); "
        "it usually ends in /api/v2"
    ) in status


def test_an_unexpected_group_failure_is_recorded(store_url, monkeypatch):
    import monitor.cycles
    from monitor.config import Settings
    from monitor.cycles import run_group

    def explode(*args):
        raise RuntimeError("boom")

    monkeypatch.setattr(monitor.cycles, "_run_ctgov", explode)
    store = Store.open(store_url)
    outcome = run_group(
        store, Settings(), WatchGroup(name="lupus", schedule=Schedule("every 1 hour", 3600), trials=("NCT06821503",))
    )
    assert not outcome.complete and outcome.failed == 1
    assert store.service.get_state("group.lupus.last_error") == "lupus: unexpected error (RuntimeError: boom); see the log"
    assert store.service.get_state("group.lupus.last_run")
    store.close()


# --- first steps -------------------------------------------------------------------------------------


@pytest.fixture
def live_cli(monitor, server, tmp_path):
    def run(*args):
        return monitor("--ctgov-url", server.url, "--rate", "0", "--snapshots", tmp_path / "archive", *args)

    return run


def test_watch_add_of_a_trial_the_registry_does_not_have_adds_nothing(live_cli, db_path):
    run = live_cli("watch", "add", "NCT06821503", "NCT09999998")
    assert run.code == 2
    assert run.err == (
        "error: NCT09999998 is not on ClinicalTrials.gov; nothing was added "
        "(check the id at https://clinicaltrials.gov/study/NCT09999998)\n"
    )
    assert "nothing is watched" in live_cli("watch", "list").out
    assert Store.open(f"sqlite:///{db_path}").versions.counts()["versions"] == 0


def test_fetch_with_an_unwritable_snapshot_archive_stores_nothing_and_exits_2(monitor, server, db_path, tmp_path):
    blocked = tmp_path / "archive"
    blocked.write_text("a file where the archive folder should be")
    config = tmp_path / "archive-on.yaml"
    config.write_text("storage:\n  archive: true\n")
    run = monitor(
        "--config", config, "--ctgov-url", server.url, "--rate", "0", "--snapshots", blocked, "fetch", "NCT06821503"
    )
    assert run.code == 2
    assert run.err.startswith(f"error: cannot write the snapshot archive at {blocked}/NCT06821503/")
    assert run.err.endswith(
        "nothing was stored for NCT06821503 (make the folder writable, or point `snapshots:` in the configuration "
        "elsewhere)\n"
    )
    assert run.err.count("\n") == 1
    assert Store.open(f"sqlite:///{db_path}").versions.counts()["versions"] == 0


def test_fetch_from_a_base_url_without_v2_names_the_url(monitor, server):
    run = monitor("--ctgov-url", server.root, "--rate", "0", "fetch", "NCT06821503")
    assert run.code == 2
    assert run.err == (
        f"error: {server.root}: not a ClinicalTrials.gov API v2 base URL (GET /version answered 404); "
        "it usually ends in /api/v2\n"
    )


def stopping_service(tmp_path):
    """A service with a one-second shutdown timeout and a scheduler that stops at once."""
    from dataclasses import replace

    from monitor.config import Settings
    from monitor.daemon import Daemon as Service

    class Scheduler:
        def shutdown(self, wait: bool) -> None:
            pass

    settings = Settings()
    settings = replace(settings, daemon=replace(settings.daemon, shutdown_timeout_seconds=1))
    service = Service(Store.open(f"sqlite:///{tmp_path / 'monitor.db'}"), settings, None)
    service.scheduler = Scheduler()
    return service


def test_a_thread_stuck_past_the_shutdown_timeout_makes_the_daemon_exit_without_it(tmp_path):
    import threading
    service = stopping_service(tmp_path)
    release = threading.Event()
    stuck = threading.Thread(target=release.wait, name="stuck-in-the-database")
    stuck.start()
    try:
        service._shutdown()
    finally:
        release.set()
        stuck.join()
    assert service.stuck, "the caller then ends the process with os._exit(0)"
    service.store.close()


def test_a_cycle_still_running_past_the_shutdown_timeout_makes_the_daemon_exit_without_it(tmp_path):
    """The scheduler's worker threads are daemon threads (they inherit it from APScheduler's own
    thread), yet concurrent.futures joins them at exit: a cycle that does not stop in time (the
    expected-event rules of a large group, a worker pool shutting down) kept the process alive
    past the timeout unless the daemon exits without it."""
    import threading
    service = stopping_service(tmp_path)
    release, started = threading.Event(), threading.Event()

    def cycle() -> None:  # as Daemon._run_job holds it, deaf to the stop
        with service.idle:
            service.running.add("big")
        started.set()
        release.wait()
        with service.idle:
            service.running.discard("big")
            service.idle.notify_all()

    worker = threading.Thread(target=cycle, name="ThreadPoolExecutor-0_0", daemon=True)
    worker.start()
    started.wait()
    try:
        service._shutdown()
    finally:
        release.set()
        worker.join()
    assert service.stuck, "the caller then ends the process with os._exit(0)"
    service.store.close()
