"""Benchmark: polling cycles against the local ClinicalTrials.gov-compatible server.

    .venv/bin/python bench/cycle_bench.py [--sizes 1000 10000] [--data ../shared/data/ctgov]
        [--postgres postgresql+psycopg://user@host/db]   (a throw-away database is made on that server)

For N watched trials (ids re-keyed from the 1,100 real records), prints requests,
seconds and rows written for: the first cycle; an unchanged cycle (the registry's
dataTimestamp has not moved); a cycle where the registry moved but none of ours
did; a cycle where 1% of ours changed; with, for each, the CPU seconds of this
process (which also serves the stand-in registry) and the SQL statements sent
per watched trial.  Targets: an unchanged cycle costs at most
ceil(N/1000) + 1 requests, a 1%-changed cycle at most that plus ceil(changed/1000)
full-record pages; naive per-trial polling would be N requests.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from monitor.clock import utc_now  # noqa: E402
from monitor.live import Live  # noqa: E402
from monitor.sources.ctgov import CtgovClient, Politeness  # noqa: E402
from monitor.store import Store  # noqa: E402

from ctgov_server import CtgovServer  # noqa: E402


def rows(store: Store) -> int:
    return sum(store.versions.table_sizes().values())


def rekeyed(records: list[dict], n: int) -> list[dict]:
    studies = []
    for i in range(n):
        study = json.loads(json.dumps(records[i % len(records)]))
        study["protocolSection"]["identificationModule"]["nctId"] = f"NCT{90000000 + i:08d}"
        studies.append(study)
    return studies


def read_bytes() -> int:
    """Bytes this process has read through system calls (database pages and sockets), Linux only."""
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure(label: str, live: Live, n: int, **cycle) -> None:
    before = rows(live.store)
    read = read_bytes()
    statements = [0]

    def count(*_args) -> None:
        statements[0] += 1

    event.listen(live.store.engine, "before_cursor_execute", count)
    started, cpu = time.perf_counter(), time.process_time()
    report = live.cycle(**cycle)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    event.remove(live.store.engine, "before_cursor_execute", count)
    read = read_bytes() - read
    written = rows(live.store) - before
    naive = n
    print(
        f"  {label:<34} {report.requests:>6} requests  {seconds:>7.2f} s  {cpu:>7.2f} s CPU  "
        f"{report.fetched / max(seconds, 1e-9):>6.0f} fetched/s  {statements[0] / n:>6.2f} SQL/trial  "
        f"{read / 1e6:>8.1f} MB read  "
        f"{written:>7} rows written  fetched {report.fetched:>6}  "
        f"(naive polling: {naive} requests, {naive / max(report.requests, 1):,.0f}x)"
    )
    if not report.complete or report.problems:
        print(f"    problems: {report.problems[:3]}")
    return report


@contextmanager
def database(tmp: str, postgres: str | None):
    """A SQLite file in ``tmp``, or a database of its own on the ``postgres`` server."""
    if not postgres:
        yield str(Path(tmp) / "bench.db")
        return
    name = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(postgres).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def bench(n: int, records: list[dict], postgres: str | None = None) -> None:
    studies = rekeyed(records, n)
    server = CtgovServer(studies).start()
    with tempfile.TemporaryDirectory() as tmp, database(tmp, postgres) as url:
        store = Store.open(url)
        client = CtgovClient(server.url, politeness=Politeness(rate=0, timeout=600))
        live = Live(store, client)
        now = utc_now()
        keys = [study["protocolSection"]["identificationModule"]["nctId"] for study in studies]
        if hasattr(store, "ensure_watches"):
            store.watches.ensure_watches("trial", keys, now)
        else:  # an older store, measured for comparison
            for key in keys:
                store.watches.add_watch("trial", key, now)
        print(
            f"{'PostgreSQL' if postgres else 'SQLite'}: "
            f"N = {n:,} watched trials (targets: unchanged <= {math.ceil(n / 1000) + 1} requests; "
            f"1% changed <= {math.ceil(n / 1000) + 1 + math.ceil(n / 100 / 1000)})"
        )
        measure("first cycle", live, n)
        measure("unchanged (registry did not move)", live, n)
        server.data_timestamp = "2027-01-01T00:00:00"
        measure("unchanged (registry moved)", live, n)
        changed = studies[::100]
        for i, study in enumerate(changed):
            status = study["protocolSection"]["statusModule"]
            status["lastUpdatePostDateStruct"] = {"date": "2027-01-02", "type": "ACTUAL"}
            design = study["protocolSection"].setdefault("designModule", {})
            enrollment = design.setdefault("enrollmentInfo", {"count": 0, "type": "ESTIMATED"})
            enrollment["count"] = (enrollment.get("count") or 0) + 1 + i
            server.set_study(study)
        report = measure(f"1% changed ({len(changed)} trials)", live, n)
        assert report.changed == len(changed), (report.changed, len(changed))
        if not postgres:
            size = sum(p.stat().st_size for p in Path(tmp).glob("bench.db*"))
            print(f"  database: {size / 1e6:.1f} MB")
        client.close()
        store.close()
    server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ctgov")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--postgres", metavar="URL", help="measure on this PostgreSQL server instead of SQLite")
    args = parser.parse_args()
    files = sorted((args.data / "records").glob("*.json"))
    if not files:
        sys.exit(f"error: no records under {args.data / 'records'} (pass --data)")
    records = [json.loads(p.read_text()) for p in files]
    for n in args.sizes:
        bench(n, records, args.postgres)


if __name__ == "__main__":
    main()
