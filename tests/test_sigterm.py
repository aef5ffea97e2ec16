"""SIGTERM during a long command, and a parent that dies: `monitor fetch` stops cleanly with exit
143, nothing half-written; worker processes end themselves when their parent is killed."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from conftest import ROOT
from ctgov_server import Fault

ALL = ["NCT06302556", "NCT06387628", "NCT06821503"]


def wait_until(predicate, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_sigterm_stops_a_fetch_with_exit_143_and_nothing_half_written(server, tmp_path):
    db = tmp_path / "monitor.db"
    server.faults.append(Fault("/studies", hang=True))  # the batch never comes: the fetch is waiting for it
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "--db", str(db), "--ctgov-url", server.url, "--rate", "0", "fetch", *ALL],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until(lambda: server.count("/studies") >= 1 or process.poll() is not None, "the batch asked for")
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 143, err
    assert err.splitlines()[-1] == (
        "error: stopped by SIGTERM between two trials; what was stored stays: run `monitor fetch` again to go on"
    )
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM versions").fetchone() == (0,)


ORPHAN = """
import os, time
from monitor.workers import Workers

if __name__ == "__main__":
    workers = Workers(2, minimum=1)
    workers._pool().submit(os.getpid).result()  # the pool's workers started
    print(" ".join(map(str, workers.processes())), flush=True)
    time.sleep(600)
"""


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state  # a zombie has ended


def test_worker_processes_end_themselves_when_their_parent_is_killed(tmp_path):
    script = tmp_path / "orphan.py"
    script.write_text(ORPHAN)
    parent = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        workers = [int(pid) for pid in parent.stdout.readline().split()]
        assert workers and all(running(pid) for pid in workers)
    finally:
        parent.kill()  # as `kill -9`: the parent never shuts its pool down
        parent.wait(timeout=30)
    wait_until(lambda: not any(running(pid) for pid in workers), "the orphaned workers to end")
