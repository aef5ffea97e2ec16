"""The daemon gives back what a cycle freed: a burst (a full refresh decodes and stores every watched trial
at once) must not stay the process's size for good.  The figures over 200 cycles are bench/memory_bench.py's."""

from __future__ import annotations

import os
import sys

import pytest

from monitor.daemon import Daemon
from monitor.heap import malloc_trim, return_freed_memory, tune_heap

glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or malloc_trim() is None, reason="malloc_trim is glibc's (Linux)"
)


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@glibc
def test_memory_freed_between_survivors_is_returned_to_the_system():
    burst, survivors = [], []
    for _ in range(6000):  # 8 kB blocks, each followed by a small one that stays: freed, they leave holes
        burst.append(bytes(8192))
        survivors.append(bytes(600))
    del burst
    before = rss_bytes()
    return_freed_memory()
    assert before - rss_bytes() > 10_000_000, "the holes (48 MB, of which glibc returns about half) go back"
    assert len(survivors) == 6000


def test_every_cycle_job_returns_freed_memory(monkeypatch, tmp_path):
    from monitor.config import Settings
    from monitor.store import Store

    returned = []
    monkeypatch.setattr("monitor.daemon.return_freed_memory", lambda: returned.append(True))
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    daemon = Daemon(store, Settings(), None)
    daemon._run_job("no-such-group")  # even a cycle that fails gives back what it freed
    assert returned == [True]
    store.close()


@glibc
def test_one_malloc_arena_for_every_thread_and_large_blocks_mapped():
    assert tune_heap() is True  # both mallopt calls accepted; a second call is the same


HELD = """
import os, sys
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
if sys.argv[1] == "tuned":
    from monitor.heap import tune_heap
    assert tune_heap()
body = bytearray(16 << 20)  # a page body, freed: glibc's own threshold would rise to its size
del body
before = rss()
bodies = [bytearray(2 << 20) for _ in range(64)]  # the next pages' bodies, 128 MB
survivors = [bytearray(1000) for _ in range(100)]  # allocated after them, still alive
del bodies
print(rss() - before)
"""


@glibc
@pytest.mark.parametrize("how, most", [("tuned", 8 << 20), ("untuned", None)])
def test_page_bodies_freed_are_given_back_at_once_in_a_tuned_process(how, most):
    import subprocess

    held = int(subprocess.run([sys.executable, "-c", HELD, how], capture_output=True, text=True, check=True).stdout)
    if most is None:
        assert held > 100 << 20, "untuned, glibc keeps them (what the tuning is for)"
    else:
        assert held < most, f"{held / 2**20:.0f} MB kept"


def test_every_command_tunes_the_heap_before_it_runs(monkeypatch):
    from monitor.cli import main

    tuned = []
    monkeypatch.setattr("monitor.cli.app.tune_heap", lambda: tuned.append(True))
    assert main(["--version"]) == 0
    assert tuned == [True]


def test_the_daemon_asks_for_one_arena_before_its_threads_start(monkeypatch, tmp_path):
    from monitor.config import Settings
    from monitor.store import Store

    asked = []
    monkeypatch.setattr("monitor.daemon.tune_heap", lambda: asked.append(True))
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    Daemon(store, Settings(), None)
    assert asked == [True]
    store.close()
