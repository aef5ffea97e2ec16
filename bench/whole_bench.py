"""The whole registry as the service follows it: ``registry_bench.py --whole`` (a watch group with
``all: true``, SQLite): its first load, eight registry days each followed by a cycle, the last one the
weekly reconciliation (ids, dates and statuses, 1,000 a page), with the requests and bytes of each,
against re-reading every record in full (the reconciliation before it)."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from registry_bench import WHOLE, children_cpu, kinds, whole_requests
from standin import StandIn, StandInServer, watching


def whole(n: int, data: Path) -> None:
    """The whole registry followed by a watch group with ``all: true``: what each phase costs."""
    import time
    from dataclasses import replace

    from monitor.config import CtgovSettings, WatchGroup, parse_schedule
    from monitor.cycles import run_group
    from monitor.store import Store

    registry = StandIn.from_folder(data / "records", trials=n)
    server = StandInServer(registry).start()
    scale = WHOLE / n
    listed_bytes: list[int] = []  # the bytes of each listing page (the reconciliation's), not the records fetched
    search = server.search

    def tallied(params):
        status, body = search(params)
        if server.tally and server.tally[-1][0] == "search" and "fields" in params:
            listed_bytes.append(len(body))
        return status, body

    server.search = tallied
    with tempfile.TemporaryDirectory() as tmp:
        keys = registry.keys()[:1]  # replaced by the group below
        base = watching(f"sqlite:///{tmp}/monitor.db", f"{tmp}/archive", server.url, "registry", "1 day", keys)
        group = WatchGroup("registry", parse_schedule("1 day"), all=True)
        ctgov = CtgovSettings(base_url=server.url, rate=0, retries=2, timeout=600, load_pages_per_cycle=100_000)
        settings = replace(base, watches=(group,), ctgov=ctgov)
        store = Store.open(settings.database)

        def measured(label: str) -> dict:
            server.requests.clear()
            server.tally.clear()
            server.served = 0
            listed_bytes.clear()
            wall, cpu = time.perf_counter(), time.process_time() + children_cpu()  # the worker pool's too
            outcome = run_group(store, settings, group, lambda: registry.now())
            r = {"requests": len(server.requests), "tally": list(server.tally), "bytes": server.served}
            cpu = time.process_time() + children_cpu() - cpu
            r.update(seconds=time.perf_counter() - wall, cpu=cpu, plan=outcome.plan)
            print(
                f"  {label:<26} plan={outcome.plan:<9} {r['seconds']:>7.1f} s (CPU {r['cpu']:>6.1f} s)  "
                f"{r['requests']:>4} requests ({kinds(r)}), {r['bytes'] / 1e6:>8.1f} MB  fetched {outcome.fetched:,}"
                f"  {'; '.join(outcome.problems[:2])}"
            )
            return r

        print(f"[sqlite] the whole registry, N = {n:,} trials, a watch group with all: true")
        first = measured("first load")
        for day in range(1, 9):
            registry.registry_day()
            last = measured(f"registry day {day}" + (" + reconcile" if day == 8 else ""))
        store.close()
    server.stop()
    assert last["plan"] == "reconcile", last["plan"]
    listing = [c for kind, c in last["tally"] if kind == "search"]
    listed = sum(c for kind, c in last["tally"] if kind == "search")
    print(
        f"  the reconciliation's listing: {len(listing)} pages, {listed:,} studies, {sum(listed_bytes) / 1e6:.2f} MB "
        f"({sum(listed_bytes) / n:,.0f} bytes a study); {last['bytes'] / 1e6:.2f} MB with the records fetched; "
        f"re-reading every record (the reconciliation before): {first['requests']} requests, "
        f"{first['bytes'] / 1e6:,.1f} MB ({first['bytes'] / n:,.0f} bytes a trial)"
    )
    print(
        f"  at {WHOLE:,} trials: the reconciliation {whole_requests(last, scale)} requests, "
        f"{last['bytes'] * scale / 1e6:,.0f} MB ({sum(listed_bytes) * scale / 1e6:,.0f} MB of listing), "
        f"CPU {last['cpu'] * scale / 60:,.1f} min; before: "
        f"{math.ceil(WHOLE / 200) + 1:,} requests, {first['bytes'] * scale / 1e9:,.1f} GB, "
        f"CPU {first['cpu'] * scale / 60:,.0f} min (a first load's)"
    )
