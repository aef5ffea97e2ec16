"""`monitor load` of a big folder: time and peak memory of the real command, as a subprocess.

    .venv/bin/python bench/load_bench.py [--files 20000] [--db sqlite|postgresql] [--pg-url URL] [--keep DIR]

Writes ``--files`` snapshot files (the 1,100 real records of ../shared/data/ctgov/records
under new ids, as bench/standin.py makes them) into a folder under /tmp, then runs
``python -m monitor --db ... --snapshots ... load --format json FOLDER`` on a fresh
database and reports its wall time, CPU, trials/s, exit status and peak RSS (``ru_maxrss``
of that child, measured by ``/usr/bin/time``), the database size and the folder's size.  The target:
a load of any size peaks under 400 MB.  With two or more ``--files`` counts it also prints
how the peak grows per file and what that makes at the whole registry.  The folder is
removed afterwards unless ``--keep`` names where to keep it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from soak import database  # noqa: E402
from standin import StandIn  # noqa: E402


def write_folder(registry: StandIn, folder: Path) -> int:
    """One file per trial; returns the bytes written."""
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for i in range(registry.trials):
        path = folder / f"{registry.key(i)}.json"
        path.write_bytes(registry.record(i))
        total += path.stat().st_size
    return total


def run_load(url: str, archive: str, folder: Path) -> dict:
    """The real command in a child process; its time, CPU and peak RSS.  Through ``/usr/bin/time``
    when there is one: the command is then forked from that small process, so its ``ru_maxrss``
    is its own (a child forked from this process starts with this process's RSS as its peak)."""
    command = [sys.executable, "-m", "monitor", "--db", url, "--snapshots", archive]
    command += ["load", "--format", "json", str(folder.resolve())]
    timer = Path("/usr/bin/time")
    with tempfile.NamedTemporaryFile("r", suffix=".time") as measured:
        if timer.exists():
            command = [str(timer), "-f", "%M %U %S", "-o", measured.name, *command]
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tempfile.gettempdir())
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        peak_kb, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
        if timer.exists():
            kb, user, system = measured.read().split()[-3:]
            peak_kb, cpu = int(kb), float(user) + float(system)
    errors = child.stderr.read().decode(errors="replace").strip().splitlines() if child.stderr else []
    return {
        "seconds": seconds,
        "cpu": cpu,
        "peak_mb": peak_kb * 1024 / 1e6,
        "exit": child.returncode,
        "errors": errors[-3:],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ctgov")
    parser.add_argument("--files", type=int, nargs="+", default=[20_000], help="one run per count")
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--pg-url", default=os.environ.get("MONITOR_TEST_POSTGRES_URL"))
    parser.add_argument("--keep", type=Path, help="write the folder here (emptied first) and keep it")
    args = parser.parse_args()
    if args.db == "postgresql" and not args.pg_url:
        sys.exit("error: --db postgresql needs --pg-url or MONITOR_TEST_POSTGRES_URL")
    runs = []
    for files in args.files:
        registry = StandIn.from_folder(args.data / "records", trials=files, first=20_000_000)
        runs.append((files, one(registry, args)))
    if len(runs) > 1:
        (small, low), (big, high) = runs[0], runs[-1]
        slope = (high["peak_mb"] - low["peak_mb"]) / (big - small) * 1e3
        whole = low["peak_mb"] + slope * (570_000 - small) / 1e3
        print(f"[{args.db}] peak RSS grows {slope:,.0f} kB per file: {whole:,.0f} MB at 570,000 files, linearly")


def one(registry: StandIn, args: argparse.Namespace) -> dict:
    files = registry.trials
    with tempfile.TemporaryDirectory(prefix="monitor-load-bench-") as tmp:
        folder = args.keep or Path(tmp) / "snapshots"
        if args.keep and folder.exists():
            shutil.rmtree(folder)
        written = write_folder(registry, folder)
        url, size, drop = database(args.db, tmp, args.pg_url)
        result = run_load(url, str(Path(tmp) / "archive"), folder)
        stored = size()
        drop()
    print(
        f"[{args.db}] monitor load of {files:,} files ({written / 1e6:,.0f} MB): exit {result['exit']}, "
        f"{result['seconds']:,.1f} s ({files / result['seconds']:,.0f} files/s; CPU {result['cpu']:,.1f} s), "
        f"peak RSS {result['peak_mb']:,.0f} MB (target < 400 MB), database {stored / 1e6:,.0f} MB"
    )
    for line in result["errors"]:
        print(f"  stderr: {line}")
    return result


if __name__ == "__main__":
    main()
