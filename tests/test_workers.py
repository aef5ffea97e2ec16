"""A bulk fetch normalized and projected in worker processes (monitor.workers) stores exactly
what the serial path stores, keeps every trial's problem its own, stops between trials and
leaves no process behind.  Against the local registry (tests/ctgov_server.py) and a real
SQLite file (PostgreSQL too, when MONITOR_TEST_POSTGRES_URL names a server)."""

from __future__ import annotations

import copy
import json
import multiprocessing
import os
import signal
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from monitor.errors import ConfigError, ParseError, Stopped
from monitor.live import Live
from monitor.prepare import _prepare_one, prepare
from monitor.sources.ctgov import CtgovClient, Politeness
from monitor.sources.ctgov_source import payload
from monitor.store import Store
from monitor.workers import Workers

from conftest import FIXTURES, study

N = 300
BASES = [FIXTURES / "ctgov" / name for name in ("NCT06821503", "NCT06302556", "noise/NCT06387628")]
BROKEN = "NCT90000007"  # its status is a number: refused with the JSON path, in a worker as in the parent


def key(i: int) -> str:
    return f"NCT9{i:07d}"


def trials(version: int) -> list[dict]:
    """N trials made of the fixture records under new ids; ``version`` 1 is each one's first
    recorded version, 2 its second (real changes, and noise only for the third base)."""
    out = []
    for i in range(N):
        base = sorted(BASES[i % 3].glob("*.json"))[version - 1]
        one = copy.deepcopy(study(base))
        one["protocolSection"]["identificationModule"]["nctId"] = key(i)
        if key(i) == BROKEN:
            one["protocolSection"]["statusModule"]["overallStatus"] = 5
        out.append(one)
    return out


@pytest.fixture
def registry():
    from ctgov_server import CtgovServer

    server = CtgovServer(trials(1)).start()
    yield server
    server.stop()


def run(registry, url: str, workers: Workers) -> Live:
    """A Live on ``url`` reading the local registry, with ``workers`` (Workers(0): serial)."""
    client = CtgovClient(registry.url, politeness=Politeness(rate=0, retries=0, timeout=30))
    clock = lambda: datetime(2026, 4, 1, tzinfo=UTC)  # noqa: E731
    return Live(Store.open(url), client, now=clock, routes=lambda key, changes: ["team"], workers=workers)


def stored(store: Store) -> dict:
    """Every stored version and change, and every trial's problem, as plain values."""
    out = {}
    for i in range(N):
        out[key(i)] = (
            store.versions.latest_raw_hash(key(i)),
            [
                (
                    v.number,
                    v.content_hash,
                    v.source,
                    v.loaded_at.replace(tzinfo=None),
                    v.record.to_dict(),
                    [c.__dict__ for c in v.changes],
                )
                for v in (store.versions.history(key(i)) if store.versions.latest_head(key(i)) else [])
            ],
        )
    out["problems"] = sorted((k, message) for k, message, _ in store.watches.trial_errors())
    with store.engine.connect() as conn:  # the stored bytes themselves: packed alike
        rows = conn.execute(text("SELECT trial_key, number, record, raw FROM versions ORDER BY 1, 2")).all()
    out["rows"] = [(k, n, bytes(record), raw and bytes(raw)) for k, n, record, raw in rows]  # alike on each database
    return out


def both_fetches(live: Live, registry) -> list:
    keys = [key(i) for i in range(N)]
    for one in trials(1):
        registry.set_study(one)
    first = live.fetch(keys)
    for one in trials(2):
        registry.set_study(one)
    second = live.fetch(keys)
    return [(r.key, r.status, r.version, [c.summary for c in r.changes]) for r in first.results + second.results] + [
        first.problems,
        second.problems,
    ]


def test_a_pooled_fetch_stores_exactly_what_the_serial_fetch_stores(registry, store_url, tmp_path):
    serial = run(registry, f"sqlite:///{tmp_path / 'serial.db'}", Workers(0))
    pooled = run(registry, store_url, Workers(2, minimum=200))
    seen: set[int] = set()
    pooled.progress = lambda what, n: seen.update(pooled.workers.processes())
    read_here = []  # pages the parent decoded itself
    decode = pooled.client._decode
    pooled.client._decode = lambda response, attempt=0: read_here.append(response.url) or decode(response)

    reports = both_fetches(pooled, registry)
    assert read_here == [], "every page was decoded by the workers"
    assert both_fetches(serial, registry) == reports
    assert stored(serial.store) == stored(pooled.store)
    assert len(seen) == 4, "each pooled fetch ran in two worker processes of its own, ended with it"
    assert not any(alive(pid) for pid in seen)
    statuses = [status for _, status, _, _ in reports[:-2]]
    assert statuses.count("new") == N - 1 and statuses.count("changed") == 2 * (N // 3) - 1
    assert reports[-2] == [f"{BROKEN}: {registry.url}/studies: {problem(registry)}"]
    serial.store.close()
    pooled.store.close()


def problem(registry) -> str:
    one = next(s for s in trials(1) if s["protocolSection"]["identificationModule"]["nctId"] == BROKEN)
    with pytest.raises(ParseError) as refused:
        payload(one, "x").snapshot()
    return refused.value.message.removeprefix("x: ")


def test_a_hostile_study_on_a_pooled_page_is_refused_as_an_unpooled_fetch_refuses_it(tmp_path):
    from ctgov_server import CtgovServer

    studies = trials(1)
    studies[5]["protocolSection"]["identificationModule"]["briefTitle"] = "a NUL \x00 here"
    server = CtgovServer(studies).start()
    try:
        serial = run(server, f"sqlite:///{tmp_path / 'serial.db'}", Workers(0))
        pooled = run(server, f"sqlite:///{tmp_path / 'pooled.db'}", Workers(2, minimum=200))
        keys = [key(i) for i in range(N)]
        asked = server.count("/studies")
        alone = serial.fetch(keys)
        asked, before = server.count("/studies") - asked, server.count("/studies")
        both = pooled.fetch(keys)
        assert server.count("/studies") - before == asked > 1  # the batch halved down to the bad study, alike
        assert both.problems == alone.problems and any(key(5) in p and "NUL" in p for p in both.problems)
        assert stored(pooled.store) == stored(serial.store)
    finally:
        server.stop()


def test_a_small_fetch_does_not_start_the_pool(registry, tmp_path):
    live = run(registry, f"sqlite:///{tmp_path / 'm.db'}", Workers(2, minimum=200))
    started: list[int] = []
    live.progress = lambda what, n: started.extend(live.workers.processes())
    live.fetch([key(i) for i in range(199)])
    assert started == [] and live.workers.pool is None
    live.store.close()


def test_stopping_part_way_stops_between_trials_and_leaves_no_worker(registry, tmp_path):
    live = run(registry, f"sqlite:///{tmp_path / 'm.db'}", Workers(2, minimum=200))
    pids: set[int] = set()
    done = [0]

    def progress(what: str, n: int) -> None:
        done[0] += n
        pids.update(live.workers.processes())

    live.progress = progress
    live.should_stop = lambda: done[0] >= 120
    with pytest.raises(Stopped):
        live.fetch([key(i) for i in range(N)])
    reached = [key(i) for i in range(120) if key(i) != BROKEN]  # the broken one refused, as ever
    assert [k for k in (key(i) for i in range(N)) if live.store.versions.latest_head(k)] == reached
    assert len(pids) == 2 and live.workers.pool is None
    assert not any(alive(pid) for pid in pids), "every worker ended with the fetch"
    assert multiprocessing.active_children() == []
    live.should_stop = lambda: False
    later = live.fetch([key(i) for i in range(N)])  # the rest next time
    assert [r.status for r in later.results].count("new") == N - 120
    live.store.close()


def test_a_worker_killed_mid_fetch_loses_no_trial(registry, tmp_path, caplog):
    killed: list[int] = []

    class Killed(Workers):
        def decode_page(self, *args, **kwargs):  # the page's pieces are with the workers: one is killed
            pieces = super().decode_page(*args, **kwargs)
            if not killed and (pids := self.processes()):
                os.kill(pids[0], signal.SIGTERM)  # as a service manager stopping the whole group would
                killed.append(pids[0])
            return pieces

    serial = run(registry, f"sqlite:///{tmp_path / 'serial.db'}", Workers(0))
    live = run(registry, f"sqlite:///{tmp_path / 'm.db'}", Killed(2, minimum=200))
    keys = [key(i) for i in range(N)]
    assert live.fetch(keys).fetched == serial.fetch(keys).fetched == N - 1
    assert killed and stored(live.store) == stored(serial.store)
    assert len([r for r in caplog.records if "worker pool failed" in r.getMessage()]) == 1, "said once"
    assert multiprocessing.active_children() == []
    live.store.close()
    serial.store.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Unpicklable(Exception):
    def __init__(self, a: str, b: str) -> None:
        super().__init__(f"{a} {b}")


def test_an_unexpected_failure_in_a_worker_comes_back_with_its_name_and_text(monkeypatch):
    raw = payload(study(BASES[0] / "2026-02-10.json"), "o").raw

    def boom(study):
        raise Unpicklable("cannot", "pickle me")

    monkeypatch.setattr("monitor.sources.files.normalize_study", boom)
    back = _prepare_one("o", raw, json.loads(raw), False).error
    assert type(back).__name__ == "Unpicklable" and str(back) == "cannot pickle me"
    assert "in a worker process" in back.__notes__[0]
    monkeypatch.setattr("monitor.sources.files.normalize_study", lambda s: {}["missing"])
    assert repr(prepare([("o", raw, True)])[0].error) == "KeyError('missing')"


@pytest.mark.parametrize("given", ["two", "-1", "1.5", "\u00b2", "\u0663", "1e3"])
def test_a_worker_count_that_is_not_a_whole_number_is_refused(monkeypatch, given):
    monkeypatch.setenv("MONITOR_WORKERS", given)
    with pytest.raises(ConfigError, match=r"MONITOR_WORKERS: .* should be a whole number"):
        Workers()


@pytest.mark.parametrize("given", ["33", "99999999", "1" + "0" * 40])
def test_a_worker_count_past_the_bound_is_refused_not_a_process_per_chunk(monkeypatch, given):
    monkeypatch.setenv("MONITOR_WORKERS", given)
    with pytest.raises(ConfigError, match=r"MONITOR_WORKERS: .* at most 32"):
        Workers()


@pytest.mark.parametrize("given, workers", [("0", 0), (" 2 ", 2), ("32", 32)])
def test_a_worker_count_within_the_bound_is_taken(monkeypatch, given, workers):
    monkeypatch.setenv("MONITOR_WORKERS", given)
    assert Workers().workers == workers


def test_a_worker_that_dies_halfway_through_its_answer_breaks_the_pool_instead_of_hanging_it():
    """Python's process pool waits for the rest of such an answer for ever and never says it is broken;
    the monitor stops that pool, and its waits and its shutdown end."""
    import threading
    from concurrent.futures.process import BrokenProcessPool

    from dying_worker import half_answer

    from monitor.workers import answer

    workers = Workers(2, minimum=1)
    outcome: list = []

    def wait() -> None:
        with workers.session():
            pool = workers._pool()
            try:
                outcome.append(answer(pool.submit(half_answer), pool))
            except BrokenProcessPool as exc:
                outcome.append(exc)
        outcome.append(workers.pool)

    waiting = threading.Thread(target=wait, daemon=True)
    waiting.start()
    waiting.join(timeout=120)  # a guard: without the monitor's care this waits for ever
    assert not waiting.is_alive(), "still waiting for the dead worker's answer"
    assert isinstance(outcome[0], BrokenProcessPool) and outcome[1] is None, outcome


def test_a_session_whose_pool_is_stuck_on_a_dead_workers_answer_still_ends():
    """Stopping (SIGTERM) between two pages shuts the pool down: a stuck one is stopped, not waited for."""
    import threading
    import time

    from dying_worker import half_answer

    from monitor.workers import _worker_dead

    workers = Workers(2, minimum=1)
    ended: list[bool] = []

    def stop_while_stuck() -> None:
        with workers.session():
            pool = workers._pool()
            pool.submit(half_answer)
            deadline = time.monotonic() + 60
            while not _worker_dead(pool) and time.monotonic() < deadline:  # the worker has died; nobody waits
                time.sleep(0.05)
            ended.append(_worker_dead(pool))
        ended.append(True)

    stopping = threading.Thread(target=stop_while_stuck, daemon=True)
    stopping.start()
    stopping.join(timeout=120)  # a guard: without the monitor's care the shutdown waits for ever
    assert not stopping.is_alive(), "the session's end still waits for the stuck pool"
    assert ended == [True, True], "the worker died and the pool did not say so; the session ended anyway"
