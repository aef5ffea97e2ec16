"""Crash and fault safety: `monitor run` killed with SIGKILL at points of a cycle,
a read-only or full database, a misbehaving registry for a whole run.

After a crash and a restart: no duplicate version, no lost change, no
notification lost, none sent twice after it was confirmed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest

from monitor.errors import StoreError
from monitor.store import Store

from conftest import OPENING, ROOT, UNKNOWN, study
from receivers import Webhook

CRASHPOINTS = ROOT / "tests" / "crashpoints"


def config(tmp_path: Path, server_url: str, hook_url: str, database: str) -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(f"""
database: {database}
snapshots: {tmp_path / "archive"}
ctgov: {{base_url: "{server_url}", rate: 0, retries: 1, timeout: 5}}
daemon: {{shutdown_timeout_seconds: 5}}
expected: {{completion_grace_days: 100000, verification_days: 100000}}  # the daemon reads the wall clock
watches:
  - name: trials
    trials: [NCT06821503, NCT06302556]
    schedule: 1s
notifications:
  routes:
    - name: hook
      urls: ["{hook_url}"]
""")
    return path


def start(path: Path, crash: str | None = None, on: int = 1) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(CRASHPOINTS), str(ROOT)]) if crash else str(ROOT)}
    env.pop("CRASH_AT", None)
    if crash:
        env.update(CRASH_AT=crash, CRASH_ON=str(on))
    log = (path.parent / f"run-{time.monotonic_ns()}.log").open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "--config", str(path), "run"],
        cwd=path.parent,
        stdout=subprocess.DEVNULL,
        stderr=log,
        env=env,
    )


def wait(predicate, what: str, process: subprocess.Popen | None = None, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the daemon exited ({process.returncode}) before {what}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def state(database: str) -> dict:
    store = Store.open(database)
    try:
        versions = {key: store.versions.history(key) for key in ("NCT06821503", "NCT06302556") if store.versions.latest_head(key)}
        return {
            "versions": {key: len(history) for key, history in versions.items()},
            "changed": {key: bool(history[-1].changes) for key, history in versions.items()},
            "deliveries": store.deliveries.delivery_counts(),
        }
    finally:
        store.close()


@pytest.mark.parametrize(
    ("point", "on"),
    [
        ("before_store", 1),
        ("before_store", 2),
        ("before_notify", 1),
        ("during_send", 1),
        ("after_send", 1),
        ("after_send", 2),
    ],
)
def test_a_daemon_killed_mid_cycle_loses_nothing_and_repeats_nothing_confirmed(server, store_url, tmp_path, point, on):
    hook = Webhook()
    path = config(tmp_path, server.url, hook.url, store_url)
    try:
        baseline = start(path)
        wait(
            lambda: state(store_url)["versions"] == {"NCT06821503": 1, "NCT06302556": 1}, "the first versions", baseline
        )
        baseline.send_signal(signal.SIGTERM)
        assert baseline.wait(timeout=30) == 0
        server.set_study(study(OPENING / "2026-03-10.json"))
        server.set_study(study(UNKNOWN / "2026-03-02.json"))

        crashed = start(path, crash=point, on=on)
        assert crashed.wait(timeout=60) == -signal.SIGKILL, "killed at the crash point"
        posts_at_crash = len(hook.posts)

        restarted = start(path)
        wait(
            lambda: state(store_url)["deliveries"] == {"pending": 0, "failed": 0, "sent": 2},
            "every delivery sent",
            restarted,
        )
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(timeout=30) == 0
    finally:
        hook.stop()
    final = state(store_url)
    assert final["versions"] == {"NCT06821503": 2, "NCT06302556": 2}, "no duplicate version, none missing"
    assert final["changed"] == {"NCT06821503": True, "NCT06302556": True}, "no lost change"
    titles = sorted(post["title"][:11] for post in hook.posts)
    assert sorted(set(titles)) == ["NCT06302556", "NCT06821503"], "no notification lost"
    repeated = len(titles) - 2
    if point == "after_send":
        assert repeated <= 1, "only the message whose confirmation the crash cut may be repeated"
        assert posts_at_crash == on
    else:
        assert repeated == 0, "nothing is sent twice"


def test_a_read_only_database_is_a_clear_error_and_stays_intact(db_path, monitor, cli):
    from conftest import SEEDS

    assert monitor("load", OPENING / "2026-02-10.json").code == 0
    read_only = f"sqlite:///file:{db_path}?mode=ro&uri=true"
    run = cli("--db", read_only, "load", OPENING / "2026-03-10.json", SEEDS)
    assert run.code == 2
    assert run.err.startswith("error: ") and "readonly database" in run.err and run.err.count("\n") == 1
    import sqlite3

    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM versions").fetchone()[0] == 1


def test_a_full_disk_is_a_clear_error_and_nothing_is_half_written(db_path):
    from sqlalchemy import event

    from monitor.pipeline import load

    store = Store.open(str(db_path))
    load(store, [OPENING / "2026-02-10.json"])
    before = store.versions.table_sizes()
    pages = store.engine.connect().exec_driver_sql("PRAGMA page_count").scalar()
    store.engine.dispose()
    event.listen(store.engine, "connect", lambda conn, _: conn.execute(f"PRAGMA max_page_count = {pages}"))
    with pytest.raises(StoreError, match="database or disk is full"):
        load(store, [OPENING / "2026-03-10.json"])
    assert store.versions.table_sizes() == before
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"


def test_a_registry_misbehaving_for_a_whole_run_records_only_what_it_served(server, store_url, tmp_path):
    """Slow answers, 429s, 500s and truncated bodies at random for 30 cycles, while
    the trials really change: every stored version is one the registry served,
    none twice in a row, and once the registry behaves, the store catches up."""
    import copy
    import random

    from monitor.clock import utc_now
    from monitor.diff import fingerprint
    from monitor.live import Live
    from monitor.normalize import normalize_study
    from monitor.sources.ctgov import CtgovClient, Politeness

    rng = random.Random(20261122)
    client = CtgovClient(
        server.url, politeness=Politeness(rate=0, retries=2, backoff=0.001, timeout=0.3), sleep=lambda s: None
    )
    live = Live(Store.open(store_url), client)
    keys = ["NCT06821503", "NCT06302556", "NCT06387628"]
    for key in keys:
        live.store.watches.add_watch("trial", key, utc_now())
    served = {key: {fingerprint(normalize_study(json.loads(server.studies[key])))} for key in keys}
    server.chaos = (rng, 0.4)
    incomplete = 0
    for cycle in range(30):
        key = rng.choice(keys)
        changed = copy.deepcopy(json.loads(server.studies[key]))
        changed["protocolSection"]["designModule"]["enrollmentInfo"] = {"count": 100 + cycle, "type": "ESTIMATED"}
        changed["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"] = {
            "date": f"2026-04-{cycle + 1:02d}",
            "type": "ACTUAL",
        }
        server.set_study(changed)
        served[key].add(fingerprint(normalize_study(changed)))
        incomplete += not live.cycle().complete
    assert incomplete > 0, "the chaos did hit"
    server.chaos = None
    for _ in range(3):
        live.cycle()
    for key in keys:
        history = live.store.versions.history(key)
        hashes = [v.content_hash for v in history]
        assert set(hashes) <= served[key], f"{key}: a version the registry never served"
        assert all(a != b for a, b in pairwise(hashes)), f"{key}: the same version twice in a row"
        assert hashes[-1] == fingerprint(normalize_study(json.loads(server.studies[key]))), f"{key}: caught up"
    client.close()


def test_kills_at_random_moments_of_a_busy_cycle_lose_nothing(server, tmp_path):
    """150 trials change at once; the daemon is killed three times at seeded random
    moments of its cycle, then restarted: every trial ends with exactly its two
    versions, every change is notified, and a message repeats at most once per
    kill (only one send is ever in flight)."""
    import copy
    import random

    rng = random.Random(7)
    hook = Webhook()
    base = [study(OPENING / "2026-02-10.json"), study(UNKNOWN / "2026-02-02.json")]
    keys = [f"NCT0{7000000 + i:07d}" for i in range(150)]
    copies = {}
    for i, key in enumerate(keys):
        copies[key] = copy.deepcopy(base[i % 2])
        copies[key]["protocolSection"]["identificationModule"]["nctId"] = key
        server.set_study(copies[key])
    database = f"sqlite:///{tmp_path / 'monitor.db'}"
    path = config(tmp_path, server.url, hook.url, database)
    path.write_text(path.read_text().replace("trials: [NCT06821503, NCT06302556]", f"trials: [{', '.join(keys)}]"))

    def versions() -> dict[int, int]:
        store = Store.open(database)
        try:
            return Counter(len(store.versions.history(k)) for k in keys if store.versions.latest_head(k))
        finally:
            store.close()

    try:
        baseline = start(path)
        wait(lambda: versions() == {1: 150}, "the first versions", baseline, seconds=60)
        baseline.send_signal(signal.SIGTERM)
        assert baseline.wait(timeout=30) == 0
        for key in keys:
            changed = copies[key]
            changed["protocolSection"]["designModule"]["enrollmentInfo"]["count"] += 1
            changed["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"] = "2026-06-01"
            server.set_study(changed)
        for _ in range(3):
            doomed = start(path)
            time.sleep(rng.uniform(0.3, 1.5))  # a random moment of the cycle
            doomed.kill()
            assert doomed.wait(timeout=30) == -signal.SIGKILL
        final = start(path)
        wait(
            lambda: Store.open(database).deliveries.delivery_counts() == {"pending": 0, "failed": 0, "sent": 150},
            "every notification",
            final,
            seconds=90,
        )
        final.send_signal(signal.SIGTERM)
        assert final.wait(timeout=30) == 0
    finally:
        hook.stop()
    assert versions() == {2: 150}, "exactly two versions each: none doubled, none lost"
    titles = Counter(post["title"].split(" ", 1)[0] for post in hook.posts)
    assert set(titles) == set(keys), "every change notified"
    assert sum(titles.values()) - 150 <= 3, "at most one repeat per kill"
