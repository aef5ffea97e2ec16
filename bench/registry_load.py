"""The whole registry in one command: ``monitor watch add --all`` of the stand-in, as a user runs it.

    .venv/bin/python bench/registry_load.py --trials 20000 [--backend sqlite|postgresql] [--workers N]

Starts the stand-in registry (:mod:`standin`) of ``--trials`` trials on 127.0.0.1, runs the
command in a subprocess against a new database (SQLite in a temporary folder, or a new database
on the PostgreSQL server of ``--postgres``/``MONITOR_TEST_POSTGRES_URL``), and samples every
second the memory of the monitor and its worker processes together: RSS summed (which counts
the shared libraries once a process) and PSS summed (which shares them out).  Prints the wall
time, trials a second, the CPU of the monitor and its workers, the peak memory, the monitor's own
RSS over the run and the database's size.  The stand-in runs in this process, on the same cores.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from soak import database
from standin import StandIn, StandInServer

ROOT = Path(__file__).resolve().parent.parent
MONITOR = Path(sys.executable).parent / "monitor"


def descendants(pid: int) -> list[int]:
    found = [pid]
    try:
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            found += descendants(int(child))
    except OSError:  # ended meanwhile
        pass
    return found


def memory_kb(pid: int, field: str, name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:  # ended meanwhile
        pass
    return 0


def run(argv: list[str], env: dict[str, str]) -> dict:
    """Run the command, sampling its processes' memory every second."""
    rss = pss = own = 0
    timeline: list[int] = []
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as said:  # not a pipe: its buffer would fill up and stop the command
        process = subprocess.Popen(argv, env=env, stdout=said, stderr=subprocess.STDOUT, text=True)
        while process.poll() is None:
            pids = descendants(process.pid)
            rss = max(rss, sum(memory_kb(p, "VmRSS:", "status") for p in pids))
            pss = max(pss, sum(memory_kb(p, "Pss:", "smaps_rollup") for p in pids))
            timeline.append(memory_kb(process.pid, "VmRSS:", "status"))
            own = max(own, timeline[-1])
            time.sleep(1)
        seconds = time.perf_counter() - started
        said.seek(0)
        output = said.read()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "code": process.returncode,
        "seconds": seconds,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss": rss / 1024,
        "pss": pss / 1024,
        "own": own / 1024,
        "timeline": [round(kb / 1024) for kb in timeline[:: max(1, len(timeline) // 12)]],
        "last": output.strip().splitlines()[-2:],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20_000)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ctgov")
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--postgres", default=os.environ.get("MONITOR_TEST_POSTGRES_URL"), help="PostgreSQL URL")
    parser.add_argument("--workers", type=int, help="MONITOR_WORKERS (default: one a core)")
    args = parser.parse_args()
    if not (args.data / "records").is_dir():
        raise SystemExit(f"error: {args.data / 'records'} not found: give --data (../shared/data/ctgov)")
    if args.backend == "postgresql" and not args.postgres:
        raise SystemExit("error: --backend postgresql needs --postgres URL or MONITOR_TEST_POSTGRES_URL")
    registry = StandIn.from_folder(args.data / "records", trials=args.trials)
    server = StandInServer(registry).start()
    env = {**os.environ, **({"MONITOR_WORKERS": str(args.workers)} if args.workers is not None else {})}
    with tempfile.TemporaryDirectory() as tmp:
        url, size, drop = database(args.backend, tmp, args.postgres)
        try:
            argv = [str(MONITOR), "--db", url, "--ctgov-url", server.url, "--rate", "0", "watch", "add", "--all"]
            r = run(argv, env)
            stored = size()
        finally:
            drop()
            server.stop()
    print(f"[{args.backend}] watch add --all of {args.trials:,} trials: exit {r['code']}; {' / '.join(r['last'])}")
    print(f"  {r['seconds']:.1f} s wall, {args.trials / r['seconds']:.0f} trials/s; CPU {r['cpu']:.1f} s "
          f"({r['cpu'] / args.trials * 1e3:.2f} ms a trial, the monitor and its workers)")
    print(f"  peak memory of the monitor and its workers: {r['rss']:.0f} MB RSS summed, {r['pss']:.0f} MB PSS; "
          f"the monitor alone {r['own']:.0f} MB")
    print(f"  the monitor's RSS over the run (MB): {r['timeline']}")
    print(f"  database {stored / 1e6:,.1f} MB: {stored / args.trials / 1e3:.2f} kB a trial")


if __name__ == "__main__":
    main()
