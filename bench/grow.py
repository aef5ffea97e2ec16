"""A store grown to the whole registry's size without a first load of it: the scale benchmark at 570,000.

    .venv/bin/python bench/registry_bench.py --grow 570000 [--seed 11000] [--quick] [--backend sqlite]

A first load of ``seed`` trials (a multiple of the stand-in's 1,100 templates, so trial ``i`` and
trial ``i % seed`` serve the same record) runs through the monitor as usual; then every table a
cycle reads is copied in SQL to ``N`` trials (:func:`grow`): trial ``i`` gets trial ``i % seed``'s
rows under its own id (versions, heads, per-trial state, expected-event state, watches).  A copied
version's packed record still names the seed trial, so the trials the next registry day touches
are not copied but fetched through the monitor (:func:`day_keys`): the registry day then compares
real records, and its recall and precision mean what they say.  Then, each in a child process:
two unchanged cycles of a group listing every id, two of a group with ``all: true``, a registry day
(the id-list group; the expected-event rules' first pass of the day measured on its own after it) and
the weekly reconciliation (the ``all: true`` group).
"""

from __future__ import annotations

import time
from pathlib import Path

from standin import CATEGORY, REAL, StandIn, StandInServer

COPIED = {  # table -> (the columns copied, the column holding the trial's key)
    "trials": ("key, nct_id, title, first_seen", "key"),
    "versions": (
        "trial_key, number, content_hash, record, raw, raw_hash, format, source, loaded_at, last_update_posted",
        "trial_key",
    ),
    "trial_heads": ("trial_key, number, content_hash, last_update_posted, raw_hash", "trial_key"),
    "trial_state": ("trial_key, backfill, seen_update, seen_status, last_error, last_error_at", "trial_key"),
    "expected_seen": ("trial_key, since, due", "trial_key"),
    "expected_state": ("trial_key, rule, since, summary", "trial_key"),
}


def day_keys(registry: StandIn, days: int = 1) -> set[str]:
    """The trials the next ``days`` registry days of ``registry`` will touch (the registry is not changed)."""
    ahead = StandIn(registry.templates, registry.trials, seed=registry.seed, churn=registry.churn)
    ahead.days = registry.days
    touched: set[str] = set()
    for _ in range(days):
        touched |= set(ahead.registry_day())
    return touched


def grow(url: str, registry: StandIn, seed: int, group: str, leave_out: set[str]) -> float:
    """Copy the first ``seed`` trials' rows to every trial of ``registry`` but those of ``leave_out``;
    the group ``group`` watches them all by id, and the whole registry is watched too (its state
    that of the group).  Returns the seconds it took."""
    from sqlalchemy import create_engine, text

    if seed % len(registry.templates):
        raise SystemExit(f"error: --seed must be a multiple of the {len(registry.templates):,} templates")
    started = time.perf_counter()
    engine = create_engine(url)
    pairs = [
        {"src": registry.key(i % seed), "dst": registry.key(i)}
        for i in range(seed, registry.trials)
        if registry.key(i) not in leave_out
    ]
    with engine.begin() as conn:
        conn.execute(text("CREATE TEMPORARY TABLE grow_map (src VARCHAR(64), dst VARCHAR(64) PRIMARY KEY)"))
        for start in range(0, len(pairs), 50_000):
            conn.execute(text("INSERT INTO grow_map (src, dst) VALUES (:src, :dst)"), pairs[start : start + 50_000])
        conn.execute(text("CREATE INDEX grow_map_src ON grow_map (src)"))
        for table, (columns, key) in COPIED.items():
            chosen = ", ".join("m.dst" if c.strip() == key else f"t.{c.strip()}" for c in columns.split(","))
            if table == "trials":
                chosen = chosen.replace("t.nct_id", "m.dst")
            conn.execute(
                text(
                    f"INSERT INTO {table} ({columns}) SELECT {chosen} FROM grow_map m JOIN {table} t ON t.{key} = m.src"
                )
            )
        conn.execute(
            text(
                "INSERT INTO watches (kind, target, added_at) SELECT 'trial', m.dst, w.added_at FROM grow_map m "
                "JOIN watches w ON w.kind = 'trial' AND w.target = m.src"
            )
        )
        conn.execute(
            text("INSERT INTO watches (kind, target, added_at) SELECT 'registry', 'all', MIN(added_at) FROM watches")
        )
        suffix = f".{group}"
        for key, value in conn.execute(text("SELECT key, value FROM source_state")).all():
            if key.startswith("ctgov.") and key.endswith(suffix):
                conn.execute(
                    text("INSERT INTO source_state (key, value) VALUES (:k, :v)"),
                    {"k": key[: -len(suffix)], "v": value},
                )
        loaded = conn.execute(text("SELECT value FROM source_state WHERE key = 'ctgov.last_full_refresh'")).scalar()
        conn.execute(text("INSERT INTO source_state (key, value) VALUES ('ctgov.loaded_at', :v)"), {"v": loaded})
        conn.execute(text("DROP TABLE grow_map"))
    engine.dispose()
    return time.perf_counter() - started


def fetch(url: str, archive: str, base_url: str, keys: list[str]) -> int:
    """Fetch ``keys`` in full through the monitor (in a child process): stored as a first load stores them."""
    from monitor.archive import SnapshotArchive
    from monitor.live import Live
    from monitor.sources.ctgov import CtgovClient, Politeness
    from monitor.store import Store

    store = Store.open(url)
    client = CtgovClient(base_url, politeness=Politeness(rate=0, retries=2, timeout=600))
    report = Live(store, client, SnapshotArchive(archive)).fetch(keys)
    client.close()
    store.close()
    return report.fetched


def grown(n: int, seed: int, data: Path, backend: str, pg_url: str | None, profile: bool) -> dict:
    """The whole-registry phases on a store grown to ``n`` trials from a first load of ``seed``."""
    import tempfile

    from registry_bench import in_child, kinds, line, tallied
    from soak import database

    registry = StandIn.from_folder(data / "records", trials=n)
    server = StandInServer(registry).start()
    keys = registry.keys()
    figures: dict = {"backend": backend, "n": n, "seed": seed}
    with tempfile.TemporaryDirectory() as tmp:
        url, size, drop = database(backend, tmp, pg_url)
        archive = str(Path(tmp) / "archive")

        def run(label: str, minute: int, watched: list[str] | None, group: str = "registry", full_due=False) -> dict:
            server.requests.clear()
            server.tally.clear()
            result = in_child(url, archive, server.url, watched, registry.now(minute), profile, group, full_due)
            tallied(server, result, label, backend, n)
            line(backend, label, result, f"plan={result.get('plan', '')}")
            return result

        print(f"[{backend}] N = {n:,} trials, grown from a first load of {seed:,}")
        figures["first"] = run(f"first load of {seed:,}", 0, keys[:seed])
        touched = day_keys(registry)
        leave_out = {k for k in touched if registry.index(k) >= seed}
        took = grow(url, registry, seed, "registry", leave_out)
        print(f"  grown to {n:,} trials in {took:.1f} s (SQL); {len(leave_out):,} the registry day touches left out")
        with _pool() as pool:
            fetched = pool.submit(fetch, url, archive, server.url, sorted(leave_out)).result()
        print(f"  and fetched through the monitor: {fetched:,}")
        stored = size()
        figures["bytes_per_trial"] = stored / n
        print(f"  database {stored / 1e6:,.1f} MB: {stored / n / 1e3:.2f} kB per trial")
        figures["unchanged_first"] = run("unchanged, ids (first after growing)", 1, keys)
        figures["unchanged"] = run("unchanged, ids", 2, keys)
        figures["unchanged_all_first"] = run("unchanged, all: true (first)", 3, None, "")
        figures["unchanged_all"] = run("unchanged, all: true", 4, None, "")
        edits = registry.registry_day()
        evaluated = "expected.evaluated.registry"  # the rules' first pass of the day: measured on its own below
        _set_state(url, evaluated, registry.now().date().isoformat())
        day = run(f"registry day ({len(edits):,} updated), ids", 5, keys)
        real = {k: v for k, v in edits.items() if v in REAL}
        found = day["changed"]
        hits = sum(1 for k, kind in real.items() if CATEGORY[kind] in found.get(k, ()))
        print(f"  recall {hits}/{len(real)}, precision {hits}/{len(found)}; requests: {kinds(day)}")
        figures["day"], figures["recall"] = day, (hits, len(real), len(found))
        _set_state(url, evaluated, "")
        figures["rules"] = run("the rules' first pass of a day, ids (unchanged)", 6, keys)
        figures["reconcile"] = run("reconciliation, all: true", 7, None, "", full_due=True)
        print(f"  reconciliation requests: {kinds(figures['reconcile'])}")
        drop()
    server.stop()
    return figures


def _pool():
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))


def _set_state(url: str, key: str, value: str) -> None:
    from monitor.store import Store

    store = Store.open(url)
    store.service.set_state(key, value)
    store.close()
