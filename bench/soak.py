"""Soak benchmark: many polling cycles over thousands of trials with a seeded stream of
real-looking changes and noise, on SQLite and on PostgreSQL.

    .venv/bin/python bench/soak.py [--trials 10000] [--cycles 30] [--backend sqlite postgresql]
                                   [--pg-url postgresql+psycopg://...] [--seed 7]

Each cycle runs the daemon's unit of work (`monitor.cycles.run_group`: probe, fetch,
diff, store, notify) against the local ClinicalTrials.gov-compatible server, with a
json:// webhook route on a local receiver.  Between cycles a generator changes some
trials for real (status, enrollment, dates, a criterion, a site) and edits others
in ways that are not news (versionHolder only, a re-dated record, sites reordered
and whitespace in the criteria).  At the end every change the generator made is
compared with what was stored and notified: recall, precision, noise suppressed,
cycles per minute, memory over the run, database growth per cycle, and the rows an
unchanged cycle writes.  PostgreSQL needs --pg-url or MONITOR_TEST_POSTGRES_URL.

``--whole-registry`` watches the stand-in registry of bench/standin.py instead (570,000
trials unless --trials says otherwise, records made on request, never all held): each
cycle is a registry day that updates 0.5% of the trials, a third of them noise only.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import resource
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from monitor.config import CtgovSettings, NotificationSettings, Route, Settings, WatchGroup, parse_schedule  # noqa: E402
from monitor.cycles import run_group  # noqa: E402
from monitor.store import Store  # noqa: E402

from ctgov_server import CtgovServer  # noqa: E402
from receivers import Webhook  # noqa: E402

KINDS = {
    "status": "status",
    "enrollment": "enrollment",
    "dates": "dates",
    "criterion": "eligibility",
    "site": "locations",
}
NOISE = ("version_holder", "redated", "reordered")
STATUSES = ["RECRUITING", "ACTIVE_NOT_RECRUITING", "COMPLETED", "TERMINATED", "SUSPENDED"]


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


class RegistryDays:
    """The generator of --whole-registry: each step is one registry day of the stand-in registry."""

    def __init__(self, registry) -> None:
        self.registry = registry

    def step(self, cycle: int, real: int, noise: int) -> tuple[dict[str, str], dict[str, str]]:
        from standin import CATEGORY

        edits = self.registry.registry_day()
        made = {key: CATEGORY[kind] for key, kind in edits.items() if kind in CATEGORY}
        return made, {key: kind for key, kind in edits.items() if kind not in CATEGORY}


class Generator:
    """Seeded edits of the served studies; remembers what it did."""

    def __init__(self, server: CtgovServer, keys: list[str], seed: int) -> None:
        self.server, self.keys, self.rng = server, keys, random.Random(seed)
        self.day = datetime(2027, 1, 1)

    def study(self, key: str) -> dict:
        return json.loads(self.server.studies[key])

    def redate(self, study: dict) -> None:
        """The registry posts updates once a day: each cycle is a new day."""
        study["protocolSection"].setdefault("statusModule", {})["lastUpdatePostDateStruct"] = {
            "date": self.day.strftime("%Y-%m-%d"),
            "type": "ACTUAL",
        }

    def step(self, cycle: int, real: int, noise: int) -> tuple[dict[str, str], dict[str, str]]:
        self.day += timedelta(days=1)
        chosen = self.rng.sample(self.keys, real + noise)
        made, noised = {}, {}
        for i, key in enumerate(chosen[:real]):
            kind = self.rng.choice(list(KINDS))
            study = self.study(key)
            protocol = study["protocolSection"]
            if kind == "status":
                status = protocol["statusModule"]
                status["overallStatus"] = self.rng.choice([s for s in STATUSES if s != status.get("overallStatus")])
            elif kind == "enrollment":
                info = protocol.setdefault("designModule", {}).setdefault("enrollmentInfo", {"type": "ESTIMATED"})
                info["count"] = (info.get("count") or 0) + 1 + self.rng.randrange(50)
            elif kind == "dates":
                protocol["statusModule"]["primaryCompletionDateStruct"] = {
                    "date": f"{2030 + cycle % 5}-{1 + i % 12:02d}-{1 + self.rng.randrange(28):02d}",
                    "type": "ESTIMATED",
                }
            elif kind == "criterion":
                module = protocol.setdefault("eligibilityModule", {})
                module["eligibilityCriteria"] = (module.get("eligibilityCriteria") or "Inclusion Criteria:") + (
                    f"\n* Soak criterion {cycle}-{i}: no prior exposure to agent {self.rng.randrange(10**6)}"
                )
            else:
                sites = protocol.setdefault("contactsLocationsModule", {}).setdefault("locations", [])
                sites.append(
                    {"facility": f"Soak Site {cycle}-{i}", "city": "Lyon", "country": "France", "status": "RECRUITING"}
                )
            self.redate(study)
            self.server.set_study(study)
            made[key] = KINDS[kind]
        for key in chosen[real:]:
            kind = self.rng.choice(NOISE)
            study = self.study(key)
            if kind == "version_holder":
                study.setdefault("derivedSection", {}).setdefault("miscInfoModule", {})["versionHolder"] = str(cycle)
            else:
                self.redate(study)
                if kind == "reordered":
                    protocol = study["protocolSection"]
                    sites = (protocol.get("contactsLocationsModule") or {}).get("locations") or []
                    sites.reverse()
                    module = protocol.get("eligibilityModule") or {}
                    if module.get("eligibilityCriteria"):
                        module["eligibilityCriteria"] = module["eligibilityCriteria"].replace("\n", "\n\n  ")
            self.server.set_study(study)
            noised[key] = kind
        return made, noised


def database(backend: str, tmp: str, pg_url: str | None):
    if backend == "sqlite":
        path = Path(tmp) / "soak.db"
        return f"sqlite:///{path}", lambda: sum(p.stat().st_size for p in Path(tmp).glob("soak.db*")), lambda: None
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"soak_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(pg_url).set(database=name).render_as_string(hide_password=False)

    def size() -> int:
        with admin.connect() as conn:
            return conn.execute(text(f"SELECT pg_database_size('{name}')")).scalar()

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return url, size, drop


def soak(backend: str, n: int, cycles: int, seed: int, data: Path, pg_url: str | None, whole: bool = False) -> None:
    if whole:
        from standin import StandIn, StandInServer

        registry = StandIn.from_folder(data / "records", trials=n, seed=seed)
        keys = registry.keys()
        server = StandInServer(registry).start()
    else:
        records = [json.loads(p.read_text()) for p in sorted((data / "records").glob("*.json"))]
        studies = []
        for i in range(n):
            study = copy.deepcopy(records[i % len(records)])
            study["protocolSection"]["identificationModule"]["nctId"] = f"NCT{80000000 + i:08d}"
            studies.append(study)
        keys = [s["protocolSection"]["identificationModule"]["nctId"] for s in studies]
        server = CtgovServer(studies).start()
    hook = Webhook()
    with tempfile.TemporaryDirectory() as tmp:
        url, size, drop = database(backend, tmp, pg_url)
        group = WatchGroup("soak", parse_schedule("1 minute"), trials=tuple(keys))
        settings = Settings(
            database=url,
            snapshots=str(Path(tmp) / "archive"),
            ctgov=CtgovSettings(base_url=server.url, rate=0, retries=2, timeout=600, backfill=False),
            watches=(group,),
            notifications=NotificationSettings(routes=(Route("hook", urls=(hook.url,)),)),
        )
        store = Store.open(url)
        clock = {"now": registry.now() if whole else datetime(2027, 1, 1, tzinfo=UTC)}
        now = lambda: clock["now"]  # noqa: E731
        started = time.perf_counter()
        first = run_group(store, settings, group, now)
        print(
            f"[{backend}] N = {n:,} trials; first cycle {time.perf_counter() - started:.1f} s "
            f"({first.count('new')} new), database {size() / 1e6:.1f} MB"
        )
        generator = RegistryDays(registry) if whole else Generator(server, keys, seed)
        real_total = noise_total = detected_total = true_positive = noise_quiet = 0
        notified_true = notified_noise = notified_extra = expected_notices = 0
        wrong_category = 0
        memory, growth, seconds = [], [], []
        for cycle in range(1, cycles + 1):
            made, noised = generator.step(cycle, real=max(1, n // 200), noise=max(1, n // 200))
            clock["now"] = registry.now() if whole else clock["now"] + timedelta(minutes=1)
            before_size, before_posts = size(), len(hook.posts)
            t = time.perf_counter()
            outcome = run_group(store, settings, group, now)
            seconds.append(time.perf_counter() - t)
            growth.append(size() - before_size)
            memory.append(rss_mb())
            detected = {r.key: {c.category.value for c in r.changes} for r in outcome.results if r.status == "changed"}
            fresh = hook.posts[before_posts:]
            # an expected-event rule that fires on a real change (a status moved) is its own notice
            expected_notices += sum(1 for post in fresh if "expected-event" in post["title"])
            posts = Counter(post["title"].split(" ", 1)[0] for post in fresh if "expected-event" not in post["title"])
            real_total += len(made)
            noise_total += len(noised)
            detected_total += len(detected)
            for key, category in made.items():
                if key not in detected and os.environ.get("SOAK_DEBUG"):
                    print(f"  missed: cycle {cycle} {key} {category}: {outcome.problems[:2]}")
                if key in detected:
                    true_positive += 1
                    wrong_category += category not in detected[key]
                notified_true += posts.get(key, 0) == 1
            for key in noised:
                if key in detected and os.environ.get("SOAK_DEBUG"):
                    result = next(r for r in outcome.results if r.key == key)
                    print(
                        f"  noise taken for a change: cycle {cycle} {key} {noised[key]}: "
                        f"{[c.summary[:120] for c in result.changes[:3]]}"
                    )
                noise_quiet += key not in detected and key not in posts
                notified_noise += key in posts
            notified_extra += sum(count for key, count in posts.items() if key not in made and key not in noised)
            notified_extra += sum(count - 1 for key, count in posts.items() if count > 1)
        rows_before = store.versions.table_sizes()
        clock["now"] = registry.now(1) if whole else clock["now"] + timedelta(minutes=1)
        server.data_timestamp += "-moved"  # the registry moved, none of ours did
        unchanged = run_group(store, settings, group, now)
        rows_after = store.versions.table_sizes()
        written = sum(rows_after.values()) - sum(rows_before.values())
        total_seconds = sum(seconds)
        print(f"[{backend}] {cycles} cycles, {real_total} real changes, {noise_total} noise edits")
        print(
            f"[{backend}] recall {true_positive / max(real_total, 1):.1%} ({true_positive}/{real_total}), "
            f"precision {true_positive / max(detected_total, 1):.1%} ({true_positive}/{detected_total}), "
            f"right category {1 - wrong_category / max(true_positive, 1):.1%}"
        )
        print(
            f"[{backend}] noise suppressed {noise_quiet / max(noise_total, 1):.1%} ({noise_quiet}/{noise_total}); "
            f"notifications: {notified_true}/{real_total} real changes notified exactly once, "
            f"{notified_noise} for noise, {notified_extra} extra ({expected_notices} expected-event notices apart)"
        )
        print(
            f"[{backend}] {cycles / (total_seconds / 60):.1f} cycles per minute "
            f"(median {sorted(seconds)[len(seconds) // 2]:.2f} s); memory {memory[0]:.0f} MB after cycle 1, "
            f"{memory[-1]:.0f} MB after cycle {cycles}, max {max(memory):.0f} MB "
            f"(peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6:.0f} MB)"
        )
        print(
            f"[{backend}] database growth per cycle: median {sorted(growth)[len(growth) // 2] / 1e3:.0f} kB, "
            f"final size {size() / 1e6:.1f} MB; an unchanged cycle ({unchanged.line()}) wrote {written} rows"
        )
        store.close()
        drop()
    hook.stop()
    server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ctgov")
    parser.add_argument("--trials", type=int, help="how many trials (default 10,000; 570,000 with --whole-registry)")
    parser.add_argument(
        "--whole-registry",
        action="store_true",
        help="the stand-in registry of bench/standin.py, one registry day a cycle",
    )
    parser.add_argument("--cycles", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--backend", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    parser.add_argument("--pg-url", default=os.environ.get("MONITOR_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    if not any((args.data / "records").glob("*.json")):
        sys.exit(f"error: no records under {args.data / 'records'} (pass --data)")
    trials = args.trials or (570_000 if args.whole_registry else 10_000)
    for backend in args.backend:
        if backend == "postgresql" and not args.pg_url:
            print("[postgresql] skipped: pass --pg-url or set MONITOR_TEST_POSTGRES_URL")
            continue
        soak(backend, trials, args.cycles, args.seed, args.data, args.pg_url, args.whole_registry)


if __name__ == "__main__":
    main()
