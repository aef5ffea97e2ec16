"""`monitor run` as a real process against the local ClinicalTrials.gov-compatible
server, on a 1-second schedule; `monitor run --once`; `monitor status`."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from monitor.store import Store

from conftest import OPENING, ROOT, SEEDS, monitor_process, study, write_config
from receivers import Webhook


class Daemon:
    """`monitor run` as a real process (``options``: before `run`, e.g. "-v"), its log in a file."""

    def __init__(self, config: Path, *options: str) -> None:
        self.log = config.parent / f"daemon-{time.monotonic_ns()}.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "--config", str(config), *options, "run"],
            cwd=config.parent,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("w"),
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )

    def text(self) -> str:
        return self.log.read_text()

    def wait_for(self, predicate, what: str, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if predicate():
                return
            if self.process.poll() is not None:
                raise AssertionError(f"the daemon exited ({self.process.returncode}) before {what}:\n{self.text()}")
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}:\n{self.text()}")

    def stop(self, sig=signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=30)


def versions(db: Path, key: str) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db, timeout=30) as conn:
        try:
            return conn.execute("SELECT count(*) FROM versions WHERE trial_key = ?", (key,)).fetchone()[0]
        except sqlite3.OperationalError:
            return 0


def test_a_changed_record_appears_in_history_is_notified_once_and_sigterm_exits_cleanly(server, tmp_path):
    hook = Webhook()
    routes = f'notifications:\n  routes:\n    - name: hook\n      urls: ["{hook.url}"]\n'
    # This daemon reads the wall clock: keep the date-driven expected-event rules quiet.
    routes += "expected: {completion_grace_days: 100000, verification_days: 100000}\n"
    config = write_config(tmp_path / "monitor.yaml", server.url, ["NCT06821503", "NCT06302556"], extra=routes)
    db = tmp_path / "monitor.db"
    daemon = Daemon(config)
    try:
        daemon.wait_for(lambda: versions(db, "NCT06821503") == 1, "the first version")
        server.set_study(study(OPENING / "2026-03-10.json"))
        daemon.wait_for(lambda: versions(db, "NCT06821503") == 2, "the changed record")
        daemon.wait_for(lambda: len(hook.posts) == 1, "the notification")
        daemon.wait_for(lambda: "notified=1" in daemon.text(), "a cycle log line with the notification")
    finally:
        code = daemon.stop()
        hook.stop()
    assert [p["title"] for p in hook.posts] == [
        "NCT06821503 now recruiting; start slipped 2 months; 2 eligibility changes; +1 more"
    ]
    assert code == 0, daemon.text()
    assert "daemon stopped" in daemon.text()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    history = Store.open(str(db)).versions.history("NCT06821503")
    assert history[1].changes[0].summary == "Overall status NOT_YET_RECRUITING -> RECRUITING"
    line = next(line for line in daemon.text().splitlines() if "cycle group=trials" in line)
    for count in ("probed=", "fetched=", "changed=", "notified=", "failed=", "seconds="):
        assert count in line


def test_a_second_daemon_on_the_same_database_is_refused(server, tmp_path):
    config = write_config(tmp_path / "monitor.yaml", server.url, ["NCT06821503"])
    first = Daemon(config)
    try:
        first.wait_for(lambda: versions(tmp_path / "monitor.db", "NCT06821503") == 1, "the first daemon's cycle")
        second = monitor_process("--config", config, "run", cwd=tmp_path)
        assert second.returncode == 2
        assert second.stderr.startswith("error: another `monitor run` (")
        assert "is using this database; stop it first" in second.stderr
        assert first.process.poll() is None, "the first daemon runs on"
    finally:
        assert first.stop() == 0


def test_a_broken_trial_does_not_stop_the_others_and_sighup_reloads(server, tmp_path):
    config = write_config(tmp_path / "monitor.yaml", server.url, ["NCT06821503", "NCT09999999"])
    db = tmp_path / "monitor.db"
    daemon = Daemon(config)
    try:
        daemon.wait_for(lambda: versions(db, "NCT06821503") == 1, "the good trial")
        daemon.wait_for(lambda: "NCT09999999: not found on ClinicalTrials.gov" in daemon.text(), "the broken one")
        write_config(config, server.url, ["NCT06821503", "NCT09999999", "NCT06387628"])
        daemon.process.send_signal(signal.SIGHUP)
        daemon.wait_for(lambda: versions(db, "NCT06387628") == 1, "the trial added by the reload")
        assert "configuration reloaded" in daemon.text()
        config.write_text("watches: [oops")
        daemon.process.send_signal(signal.SIGHUP)
        daemon.wait_for(lambda: "configuration not reloaded" in daemon.text(), "the bad reload to be refused")
        assert daemon.process.poll() is None
    finally:
        assert daemon.stop(signal.SIGINT) == 0


def test_run_once_on_the_default_configuration_works_offline(tmp_path):
    shutil.copytree(ROOT / "config", tmp_path / "config")
    shutil.copytree(SEEDS, tmp_path / "seeds")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env.update(PYTHONPATH=str(ROOT), MONITOR_CTGOV_URL="http://127.0.0.1:9/api/v2")  # no network is needed
    result = monitor_process("run", "--once", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("seeds: cycle group=seeds probed=0 fetched=5 new=5 changed=0")
    assert "5 records: 5 new" in result.stdout
    assert (tmp_path / "monitor.db").exists()
    status = monitor_process("status", cwd=tmp_path, env=env)
    assert status.returncode == 0
    assert "daemon          not running" in status.stdout
    assert "group seeds (every 1 hour)" in status.stdout
    health = monitor_process("status", "--health", cwd=tmp_path, env=env)
    assert health.returncode == 1
    assert health.stderr == "error: no `monitor run` is alive on this database\n"


def test_status_shows_the_next_run_while_the_daemon_runs(server, tmp_path):
    config = write_config(tmp_path / "monitor.yaml", server.url, ["NCT06821503"], schedule="every 1 hour")
    daemon = Daemon(config)
    try:
        daemon.wait_for(lambda: versions(tmp_path / "monitor.db", "NCT06821503") == 1, "the first cycle")
        daemon.wait_for(
            lambda: "next run      20" in monitor_process("--config", config, "status", cwd=tmp_path).stdout,
            "status to show the next run time",
        )
    finally:
        assert daemon.stop() == 0


def test_status_says_a_kill_9ed_daemon_is_not_running_and_what_to_do(server, tmp_path):
    """Its lock row stays behind with a fresh heartbeat; its pid on this host is gone."""
    config = write_config(tmp_path / "monitor.yaml", server.url, ["NCT06821503"], schedule="every 1 hour")
    daemon = Daemon(config)
    try:
        daemon.wait_for(lambda: versions(tmp_path / "monitor.db", "NCT06821503") == 1, "the first cycle")
        running = monitor_process("--config", config, "status", cwd=tmp_path).stdout
        assert f"daemon          running ({os.uname().nodename}:{daemon.process.pid}," in running
    finally:
        daemon.process.kill()
        daemon.process.wait(timeout=30)
    text = monitor_process("--config", config, "status", cwd=tmp_path).stdout
    line = next(line for line in text.splitlines() if line.startswith("daemon "))
    assert line.startswith(f"daemon          not running: a stale lock of {os.uname().nodename}:{daemon.process.pid}")
    assert line.endswith("a process that is gone; the next `monitor run` takes the lock over")
    health = monitor_process("--config", config, "status", "--health", cwd=tmp_path)
    assert health.returncode == 1
    as_json = monitor_process("--config", config, "status", "--format", "json", cwd=tmp_path).stdout
    assert '"running": false' in as_json and '"stale": true' in as_json


def test_the_daemon_writes_a_next_run_time_only_when_it_moves(tmp_path):
    from monitor.config import load_settings
    from monitor.daemon import Daemon as Service
    from monitor.scheduler import add_group_job, make_scheduler

    store = Store.open(str(tmp_path / "monitor.db"))
    settings = load_settings(write_config(tmp_path / "monitor.yaml", "http://127.0.0.1:9/api/v2", ["NCT06821503"]))
    service = Service(store, settings, None)
    service.scheduler = make_scheduler(settings.daemon)
    writes, reads = [], []
    set_state, get_state = store.service.set_state, store.service.get_state
    store.service.set_state = lambda key, value: (writes.append((key, value)), set_state(key, value))
    store.service.get_state = lambda key: (reads.append(key), get_state(key))[1]
    first = datetime(2030, 1, 1, tzinfo=UTC)
    add_group_job(service.scheduler, "trials", settings.watches[0].schedule, 0, print, first)
    service.scheduler.start(paused=True)
    try:
        for _ in range(50):
            service._publish_next_runs()
        assert writes == [("group.trials.next_run", first.isoformat())]
        assert reads == [], "the daemon knows what it wrote: no database read every 0.2 s"
        service.scheduler.reschedule_job("group:trials", trigger="date", run_date=datetime(2031, 1, 1, tzinfo=UTC))
        service._publish_next_runs()
        assert writes[-1] == ("group.trials.next_run", "2031-01-01T00:00:00+00:00")
        assert len(writes) == 2
        assert get_state("group.trials.next_run") == "2031-01-01T00:00:00+00:00"
    finally:
        service.scheduler.shutdown(wait=False)
        store.close()


def test_the_service_says_at_start_how_to_follow_a_whole_registry_watch_no_group_has(server, tmp_path):
    config = write_config(tmp_path / "monitor.yaml", server.url, ["NCT06821503"], schedule="every 1 hour")
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    store.watches.add_watch("registry", "all", datetime(2026, 3, 1, tzinfo=UTC))
    store.close()
    daemon = Daemon(config)
    try:
        daemon.wait_for(lambda: "daemon started" in daemon.text(), "the start")
        daemon.wait_for(lambda: "the whole registry is watched" in daemon.text(), "the warning")
        assert "no watch group of the configuration has `all: true`: add one" in daemon.text()
    finally:
        assert daemon.stop() == 0
