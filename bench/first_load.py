"""The first load alone, CPU a trial of the monitor and of its workers (issue 13's 400 trials/s target).

    MONITOR_WORKERS=2 .venv/bin/python bench/first_load.py 10000 [sqlite|postgresql]

Runs ``registry_bench.phase`` (the daemon's ``run_group`` over N watched trials of the stand-in
registry, in a child process) once on an empty database and prints the wall time, the CPU of the
monitor process and of its worker pool (``MONITOR_WORKERS``), each per trial, and the rate two
free cores would give (2,000 ms / the CPU of all processes a trial).  PostgreSQL needs
``MONITOR_TEST_POSTGRES_URL`` (``source .ci/postgres.sh`` starts a throw-away cluster).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from registry_bench import database, in_child  # noqa: E402
from standin import StandIn, StandInServer  # noqa: E402


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000
    backend = sys.argv[2] if len(sys.argv) > 2 else "sqlite"
    registry = StandIn.from_folder(ROOT.parent / "shared" / "data" / "ctgov" / "records", trials=n)
    server = StandInServer(registry).start()
    with tempfile.TemporaryDirectory() as tmp:
        url, _, drop = database(backend, tmp, os.environ.get("MONITOR_TEST_POSTGRES_URL"))
        from monitor.store import Store

        Store.open(url).close()
        r = in_child(url, str(Path(tmp) / "archive"), server.url, registry.keys(), registry.now(0), False)
        monitor, workers = r["cpu"] - r["workers_cpu"], r["workers_cpu"]
        print(
            f"{backend} N={n:,} MONITOR_WORKERS={os.environ.get('MONITOR_WORKERS', '(one a core)')}: "
            f"wall {r['seconds']:.1f} s ({n / r['seconds']:.0f}/s); CPU a trial: monitor {monitor / n * 1e3:.2f} ms, "
            f"workers {workers / n * 1e3:.2f} ms, all {r['cpu'] / n * 1e3:.2f} ms "
            f"({2 * n / r['cpu']:.0f} trials/s on 2 free cores); peak RSS {r['peak_mb']:.0f} MB; "
            f"new {r['new']:,}; problems {r['problems']}; load average {os.getloadavg()[0]:.1f}"
        )
        drop()
    server.stop()


if __name__ == "__main__":
    main()
