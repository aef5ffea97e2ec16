"""Daemon memory benchmark: the resident set size over many cycles, which should stay flat.

    .venv/bin/python bench/memory_bench.py [--cycles 200] [--trials 500] [--churn 0.02]
                                           [--backend sqlite|postgresql] [--pg-url URL] [--trace]

The daemon's own cycle job (``Daemon._run_job``: probe, fetch, diff, store, notify through a
json:// webhook on a local receiver; then ``Daemon._notify``, its retries and digests) runs
``--cycles`` times in a child process over a watch group of ``--trials`` trials of the
stand-in registry (bench/standin.py).  Between cycles the registry publishes a registry day
(``--churn`` of the trials updated, a third of them noise only), so every cycle stores some
versions and sends some notifications.  The registry and the receiver live in this process,
so their growth is not counted.  Prints the child's RSS before the first cycle, after it, the
largest, the last, and the growth from the first cycle (and from cycle 20, after warm-up) to
the end; the target is at most 10%.  ``--trace`` also takes tracemalloc snapshots after cycle 1, cycle 20
and the last, and prints the traced growth and the allocation sites that grew most between them (slower:
tracing costs time).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from soak import database  # noqa: E402
from standin import StandIn, StandInServer, watching  # noqa: E402

WARM = 20  # cycles before the steady state is measured from


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def daemon_side(conn, url: str, archive: str, base_url: str, hook_url: str, keys: list[str], cycles: int, trace: bool):
    """The child: the daemon's cycle job, once per registry day the parent publishes."""
    import tracemalloc

    from monitor.config import Route
    from monitor.daemon import Daemon
    from monitor.store import Store

    settings = watching(url, archive, base_url, "memory", "1 hour", keys, (Route("hook", urls=(hook_url,)),))
    store = Store.open(url)
    clock = {"now": None}
    daemon = Daemon(store, settings, None, now=lambda: clock["now"])
    rss, seconds, snapshots = [rss_mb()], [], {}
    if trace:
        tracemalloc.start(8)
    for cycle in range(1, cycles + 1):
        conn.send("day")
        clock["now"] = conn.recv()  # the registry day's clock
        started = time.perf_counter()
        daemon._run_job("memory")
        daemon._notify()
        seconds.append(time.perf_counter() - started)
        rss.append(rss_mb())
        if trace and cycle in (1, WARM, cycles):
            snapshots[cycle] = tracemalloc.take_snapshot()
    lines = []
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    for a, b in ((1, WARM), (WARM, cycles)):
        if a in snapshots and b in snapshots and a < b:
            old, new = snapshots[a].filter_traces(ignore), snapshots[b].filter_traces(ignore)
            total = sum(s.size for s in new.statistics("filename")) - sum(s.size for s in old.statistics("filename"))
            lines.append(f" cycle {a} -> {b}: traced memory {total / 1e6:+.1f} MB; the sites that grew most:")
            for stat in new.compare_to(old, "traceback")[:12]:
                frames = " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in list(stat.traceback)[::-1][:4])
                lines.append(f"  {stat.size_diff / 1e3:+9.1f} kB {stat.count_diff:+7,} blocks  {frames}")
    top = "\n".join(lines)
    store.close()
    conn.send({"rss": rss, "seconds": seconds, "top": top})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ctgov")
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--churn", type=float, default=0.02, help="share of the trials updated per cycle")
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--pg-url", default=os.environ.get("MONITOR_TEST_POSTGRES_URL"))
    parser.add_argument("--trace", action="store_true", help="tracemalloc: the allocation sites that grew most")
    args = parser.parse_args()
    if args.backend == "postgresql" and not args.pg_url:
        sys.exit("error: --backend postgresql needs --pg-url or MONITOR_TEST_POSTGRES_URL")
    from receivers import Webhook

    registry = StandIn.from_folder(args.data / "records", trials=args.trials, churn=args.churn)
    server, hook = StandInServer(registry).start(), Webhook()
    with tempfile.TemporaryDirectory() as tmp:
        url, size, drop = database(args.backend, tmp, args.pg_url)
        spawn = multiprocessing.get_context("spawn")
        parent, child = spawn.Pipe()
        worker = spawn.Process(
            target=daemon_side,
            args=(child, url, str(Path(tmp) / "archive"), server.url, hook.url, registry.keys()),
            kwargs={"cycles": args.cycles, "trace": args.trace},
        )
        worker.start()
        days = 0
        while (message := parent.recv()) == "day":
            if days:  # the first cycle loads the registry as it stands
                registry.registry_day()
            days += 1
            parent.send(registry.now())
        result = message
        worker.join()
        database_mb = size() / 1e6
        drop()
    server.stop()
    hook.stop()
    rss, seconds = result["rss"], result["seconds"]
    warm = rss[min(WARM, len(rss) - 1)]
    print(
        f"[{args.backend}] {args.cycles} daemon cycles over {args.trials:,} trials ({registry.days} registry days, "
        f"{sum(len(e) for e in registry.edits.values()):,} edits, {len(hook.posts):,} notifications, "
        f"database {database_mb:,.1f} MB); median cycle {sorted(seconds)[len(seconds) // 2]:.2f} s"
    )
    print(
        f"[{args.backend}] RSS MB: before {rss[0]:.1f}, after cycle 1 {rss[1]:.1f}, after cycle {WARM} {warm:.1f}, "
        f"max {max(rss):.1f}, end {rss[-1]:.1f}; growth {100 * (rss[-1] - rss[1]) / rss[1]:+.1f}% from cycle 1, "
        f"{100 * (rss[-1] - warm) / warm:+.1f}% from cycle {WARM} (target within 10%)"
    )
    every = range(1, min(WARM, len(rss) - 1) + 1)  # the warm-up cycle by cycle, then every tenth of the run
    marks = sorted({*every, *range(0, len(rss), max(1, len(rss) // 10)), len(rss) - 1} - {0})
    print(f"[{args.backend}] RSS by cycle: " + ", ".join(f"{i}: {rss[i]:.1f}" for i in marks))
    if result["top"]:
        print(f"[{args.backend}] tracemalloc:")
        print(result["top"])


if __name__ == "__main__":
    main()
