"""Run in a worker process of monitor.workers' pool by the tests: ways for a worker to die."""

from __future__ import annotations

import os
import struct
import sys


def half_answer() -> None:
    """Send the pool the first bytes of an answer of 1,000, then die (as a worker killed in the middle of
    sending its answer does): the pool's reader waits for the rest of it."""
    frame = sys._getframe()
    while frame is not None and "result_queue" not in frame.f_locals:  # the pool's loop in this worker
        frame = frame.f_back
    assert frame is not None, "not run by a process pool's worker"
    os.write(frame.f_locals["result_queue"]._writer.fileno(), struct.pack("!i", 1000) + b"half an answer")
    os._exit(1)
