"""Scale benchmark: the whole-registry targets, measured against a stand-in registry on 127.0.0.1.

    .venv/bin/python bench/registry_bench.py [--sizes 10000 100000] [--full] [--postgres URL]
                                             [--backend sqlite postgresql] [--profile] [--data DIR]

The stand-in registry (bench/standin.py) serves the 1,100 real records of
../shared/data/ctgov/records under new ids (NCT + 8 digits), made on request, with
realistic churn: each registry day updates 0.5% of the trials, a third of them noise only.
For each size and database it runs the daemon's unit of work (``monitor.cycles.run_group``
over one watch group of every trial, snapshot archive on, no notification routes, no rate
limit) in a child process, one child per phase, and prints:

* first load: time, CPU and trials/s;
* an unchanged cycle (the registry did not move), and one where the registry moved but
  none of ours did: time and requests;
* a registry day: time, requests, and recall/precision of what was stored;
* database bytes per trial and per stored version, the archive's bytes per version;
* peak RSS of each child (VmHWM: imports included; the server runs in the parent);
* on a PostgreSQL server of this machine, the server's CPU for each phase (postmaster and backends);
* the linear extrapolation to the whole registry (570,000 trials) against the targets.

``--profile`` prints cProfile's top entries for the first load and the registry day.
``--whole`` runs instead the whole registry as the service follows it (a watch group with
``all: true``, SQLite): its first load, eight registry days each followed by a cycle, the last
one the weekly reconciliation (ids, dates and statuses, 1,000 a page), with the requests and
bytes of each, against re-reading every record in full (the reconciliation before it).
PostgreSQL runs when ``--postgres URL`` or ``MONITOR_TEST_POSTGRES_URL`` is given.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from soak import database  # noqa: E402
from standin import CATEGORY, REAL, StandIn, StandInServer, watching  # noqa: E402

WHOLE = 570_000
TARGETS = {
    "first_load": 400,  # trials/s
    "unchanged": 1.0,  # s at the whole registry
    "day_requests": 10,
    "day_seconds": 180,
    "version_bytes": 8_000,
    "peak_mb": 400,
}


def phase(
    url: str,
    archive: str,
    base_url: str,
    keys: list[str] | None,
    clock: datetime,
    profile: bool = False,
    name: str = "registry",
    full_due: bool = False,
) -> dict:
    """One run_group over every trial (``keys``; None: a group with ``all: true``), in a child
    process; what it cost.  ``full_due``: the full refresh (the reconciliation) is due."""
    import time
    from dataclasses import replace

    from monitor.config import WatchGroup, parse_schedule
    from monitor.cycles import run_group
    from monitor.heap import tune_heap
    from monitor.store import Store

    tune_heap()  # as every command does at start

    settings = watching(url, archive, base_url, name or "whole", "1 day", keys or ["NCT00000000"])
    if keys is None:
        settings = replace(settings, watches=(WatchGroup(name or "whole", parse_schedule("1 day"), all=True),))
    group = settings.watches[0]
    store = Store.open(url)
    if full_due:
        scope = "." + name if keys is not None else ""
        store.service.set_state(f"ctgov.last_full_refresh{scope}", "2000-01-01T00:00:00+00:00")
    before = peak_mb()
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    wall, cpu, workers = time.perf_counter(), time.process_time(), children_cpu()
    outcome = run_group(store, settings, group, lambda: clock)
    workers = children_cpu() - workers  # the worker pool's CPU (monitor.workers), counted in the CPU
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu + workers
    top = ""
    if profiler:
        import io
        import pstats

        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(18)
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
        top = out.getvalue()
    versions = store.versions.table_sizes().get("versions", 0)
    store.close()
    return {
        "seconds": wall,
        "cpu": cpu,
        "workers_cpu": workers,
        "peak_mb": peak_mb(),
        "start_mb": before,
        "new": outcome.count("new"),
        "changed": {
            r.key: sorted(c.category.value for c in r.changes) for r in outcome.results if r.status == "changed"
        },
        "fetched": outcome.fetched,
        "problems": outcome.problems[:3],
        "plan": outcome.plan,
        "complete": outcome.complete,
        "versions": versions,
        "profile": top,
    }


def children_cpu() -> float:
    """CPU seconds of this process's finished children: the monitor's worker pool (monitor.workers)."""
    import resource

    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def postmaster(url: str) -> int | None:
    """The PostgreSQL server's postmaster process id when it runs on this machine (else None):
    the parent of this connection's backend."""
    if not url.startswith("postgresql"):
        return None
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        backend = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    engine.dispose()
    try:
        with open(f"/proc/{backend}/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("PPid:"))
    except OSError:  # a server elsewhere
        return None


def server_cpu(pid: int | None) -> float:
    """CPU seconds the PostgreSQL server has used: the postmaster, its finished backends (waited
    for: its children's times) and its live ones."""
    if pid is None:
        return 0.0

    def times(p: int, children: bool) -> float:
        try:
            with open(f"/proc/{p}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            return 0.0
        used = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
        return used / os.sysconf("SC_CLK_TCK")

    live = 0.0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            if parent == pid:
                live += times(int(entry), False)
    return times(pid, True) + live


def peak_mb() -> float:
    """This process's peak RSS in MB: VmHWM, which starts afresh in a spawned child (``ru_maxrss``
    keeps the parent's RSS at the fork across the exec, so a child smaller than the bench's
    parent would report the parent's)."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) * 1024 / 1e6


def in_child(*args, **kwargs) -> dict:
    # not a multiprocessing.Pool: its processes are daemonic and may not start the monitor's workers
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(phase, *args, **kwargs).result()


def files_size(folder: Path) -> tuple[int, int]:
    """Bytes and files under ``folder``."""
    total = count = 0
    for dirpath, _, names in os.walk(folder):
        for name in names:
            total += os.stat(os.path.join(dirpath, name)).st_size
            count += 1
    return total, count


def bench(backend: str, n: int, data: Path, pg_url: str | None, profile: bool) -> dict:
    registry = StandIn.from_folder(data / "records", trials=n)
    server = StandInServer(registry).start()
    keys = registry.keys()
    figures: dict = {"backend": backend, "n": n}
    with tempfile.TemporaryDirectory() as tmp:
        url, size, drop = database(backend, tmp, pg_url)
        from monitor.store import Store

        Store.open(url).close()
        empty = size()
        archive = str(Path(tmp) / "archive")

        pg = postmaster(url)

        def run(label: str, minute: int, profiled: bool = False) -> dict:
            server.requests.clear()
            server.tally.clear()
            before = server_cpu(pg)
            result = in_child(url, archive, server.url, keys, registry.now(minute), profiled)
            result["server_cpu"] = server_cpu(pg) - before if pg else None
            return tallied(server, result, label, backend, n)

        print(f"[{backend}] N = {n:,} trials from {len(registry.templates):,} templates")
        first = run("first load", 0, profile)
        stored = size() - empty
        archived, archive_files = files_size(Path(archive))
        figures["first"] = first
        line(
            backend,
            "first load",
            first,
            f"{n / first['seconds']:,.0f} trials/s ({n / first['cpu']:,.0f}/s of CPU; "
            f"workers {first['workers_cpu']:.1f} s CPU, the monitor {first['cpu'] - first['workers_cpu']:.1f} s)",
        )
        print(
            f"  database {stored / 1e6:,.1f} MB: {stored / n / 1e3:.1f} kB per trial, "
            f"{stored / max(first['versions'], 1) / 1e3:.1f} kB per version; archive {archived / 1e6:,.1f} MB "
            f"({archived / n / 1e3:.1f} kB per trial, {archive_files:,} files)"
        )
        figures["bytes_per_version"] = stored / max(first["versions"], 1)
        figures["bytes_per_trial"] = stored / n
        figures["archive_per_trial"] = archived / n
        figures["unchanged"] = run("unchanged", 1)
        line(backend, "unchanged, registry did not move", figures["unchanged"])
        registry.stamp += "-moved"
        figures["moved"] = run("moved", 2)
        line(backend, "unchanged, registry moved", figures["moved"])
        edits = registry.registry_day()
        day = run("registry day", 3, profile)
        figures["day"] = day
        real = {k: v for k, v in edits.items() if v in REAL}
        found = day["changed"]
        hits = sum(1 for k, kind in real.items() if CATEGORY[kind] in found.get(k, ()))
        line(
            backend,
            f"registry day ({len(edits):,} updated, {len(real):,} real)",
            day,
            f"recall {hits}/{len(real)}, precision {hits}/{len(found)}",
        )
        grown = size() - empty - stored
        print(f"  the registry day added {grown / 1e6:,.1f} MB ({grown / max(len(found), 1) / 1e3:.1f} kB per version)")
        drop()
    server.stop()
    return figures


def kinds(r: dict) -> str:
    """The requests of a phase by kind: /studies pages by what they asked, the rest (/version...)."""
    counts: dict[str, int] = {}
    for kind, _ in r["tally"]:
        counts[kind] = counts.get(kind, 0) + 1
    other = r["requests"] - len(r["tally"])
    return ", ".join(f"{count} {kind}" for kind, count in [("other", other), *counts.items()] if count)


def line(backend: str, label: str, r: dict, extra: str = "") -> None:
    print(
        f"  {label:<42} {r['seconds']:>8.2f} s  CPU {r['cpu']:>8.2f} s  {r['requests']:>5} requests ({kinds(r)})  "
        f"fetched {r['fetched']:>7,}  peak RSS {r['peak_mb']:>5.0f} MB (at start {r['start_mb']:.0f})  {extra}"
        + (f"  PostgreSQL server CPU {r['server_cpu']:.2f} s" if r.get("server_cpu") is not None else "")
    )


def whole_requests(r: dict, scale: float) -> int:
    """A cycle's requests at the whole registry: /version and the like as measured; the
    /studies pages as many as the studies they answered, scaled, need (1,000 a page)."""
    other = r["requests"] - len(r["tally"])
    pages = 0
    for kind in ("probe", "fetch", "search", "changes"):
        answered = [count for what, count in r["tally"] if what == kind]
        if answered:
            pages += max(len(answered) if kind in ("search", "changes") else 1, math.ceil(sum(answered) * scale / 1000))
    return other + pages


def tallied(server, result: dict, label: str, backend: str, n: int) -> dict:
    """A phase's result with the stand-in's requests (count and kinds); its problems and profile printed."""
    result["requests"] = len(server.requests)
    result["tally"] = list(server.tally)
    if result["problems"] or not result["complete"]:
        print(f"  [{label}] problems: {result['problems']}")
    if result["profile"]:
        print(f"--- profile: {label}, {backend}, N = {n:,}\n{result['profile']}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ctgov")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--full", action="store_true", help=f"also the whole registry ({WHOLE:,} trials)")
    parser.add_argument("--backend", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    parser.add_argument("--postgres", default=os.environ.get("MONITOR_TEST_POSTGRES_URL"), help="PostgreSQL URL")
    parser.add_argument("--profile", action="store_true", help="cProfile the first load and the registry day")
    parser.add_argument("--whole", action="store_true", help="the whole registry as a group with all: true")
    parser.add_argument("--grow", type=int, metavar="N", help="a store grown to N trials in SQL (bench/grow.py)")
    parser.add_argument("--seed", type=int, default=11_000, help="with --grow: the trials first loaded")
    parser.add_argument("--quick", action="store_true", help="with --grow: a first load of 2,200 trials")
    args = parser.parse_args()
    if args.grow:
        from grow import grown  # the grown store's phases

        for backend in args.backend:
            if backend == "sqlite" or args.postgres:
                grown(args.grow, 2_200 if args.quick else args.seed, args.data, backend, args.postgres, args.profile)
        return
    if args.whole:
        from whole_bench import whole  # the whole registry as a group with all: true

        for n in args.sizes:
            whole(n, args.data)
        return
    from registry_report import extrapolate, table  # the printed verdicts and the Markdown table

    sizes = args.sizes + ([WHOLE] if args.full else [])
    runs: list[dict] = []
    for n in sizes:
        for backend in args.backend:
            if backend == "postgresql" and not args.postgres:
                print("[postgresql] skipped: pass --postgres URL or set MONITOR_TEST_POSTGRES_URL")
                continue
            figures = bench(backend, n, args.data, args.postgres, args.profile)
            extrapolate(figures)
            runs.append(figures)
    table(runs)


if __name__ == "__main__":
    main()
