"""Senders racing on purpose, for the one-sender-per-delivery tests: each
reads its due deliveries in step with the others (a barrier before and after
the read), so that every one of them sees the same pending rows before any
sends; only the claim can then keep a row from being sent twice."""

from __future__ import annotations

import contextlib
import threading


def stepped(barrier, read):
    """``DeliveryStore.due_deliveries`` read in step with the other senders."""

    def due_deliveries(self, route, now=None):
        _wait(barrier)  # everyone has stored what it had to store
        rows = read(self, route, now)
        _wait(barrier)  # everyone has read the same pending rows: now send
        return rows

    return due_deliveries


def _wait(barrier) -> None:
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait(timeout=60)  # a bound, not a timing: a sender that died must not hang the other


def notify_retry(barrier, config: str) -> None:
    """`monitor --config CONFIG notify retry` in a process of its own, in step with another."""
    import sys

    from monitor.cli import main
    from monitor.store.deliveries import DeliveryStore

    DeliveryStore.due_deliveries = stepped(barrier, DeliveryStore.due_deliveries)
    sys.exit(main(["--config", config, "notify", "retry"]))


def race_notify_retry(config: str) -> list[int]:
    """Two `monitor notify retry` processes started at once on ``config``, in step; their exit codes."""
    import multiprocessing

    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(2)
    senders = [spawn.Process(target=notify_retry, args=(barrier, config)) for _ in range(2)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(timeout=120)
    return [s.exitcode for s in senders]
