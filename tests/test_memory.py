"""The daemon gives back what a cycle freed: a burst (a full refresh decodes and stores every watched trial
at once) must not stay the process's size for good.  The figures over 200 cycles are bench/memory_bench.py's."""

from __future__ import annotations

import os
import sys

import pytest

from monitor.daemon import Daemon
from monitor.heap import malloc_trim, one_arena, return_freed_memory

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
def test_one_malloc_arena_for_every_thread():
    assert one_arena() is True  # mallopt(M_ARENA_MAX, 1) accepted; a second call is the same


def test_the_daemon_asks_for_one_arena_before_its_threads_start(monkeypatch, tmp_path):
    from monitor.config import Settings
    from monitor.store import Store

    asked = []
    monkeypatch.setattr("monitor.daemon.one_arena", lambda: asked.append(True))
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    Daemon(store, Settings(), None)
    assert asked == [True]
    store.close()
