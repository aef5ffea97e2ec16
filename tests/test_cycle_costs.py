"""What a cycle costs the database: an unchanged cycle registers no watch and
reads no version row, the heads table always agrees with ``versions``, and
trials waiting for their history never stop an unchanged registry from being
skipped.  Statements are counted as the database sees them; nothing is timed."""

from __future__ import annotations

import pytest
from sqlalchemy import event, func, select

from monitor.archive import SnapshotArchive
from monitor.clock import utc_now
from monitor.live import LAST_FULL, Live
from monitor.pipeline import load
from monitor.sources.ctgov import CtgovClient, Politeness
from monitor.store import Store, VersionHead
from monitor.store.schema import versions

from conftest import OPENING, serve_history, study

ALL = ("NCT06821503", "NCT06302556", "NCT06387628")


@pytest.fixture
def live(server, store_url, tmp_path):
    client = CtgovClient(server.url, politeness=Politeness(rate=0, retries=0, timeout=2))
    live = Live(Store.open(store_url), client, SnapshotArchive(tmp_path / "snapshots"))
    yield live
    client.close()
    live.store.close()


class Statements(list):
    """Every SQL statement the store's engine runs while attached."""

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.engine = store.engine
        event.listen(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.append(" ".join(statement.split()))

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)

    def inserts_into(self, table: str) -> list[str]:
        return [s for s in self if s.upper().startswith(f"INSERT INTO {table.upper()}")]

    def reading(self, table: str) -> list[str]:
        return [s for s in self if f"FROM {table} " in f"{s} " or f"FROM {table}\n" in s]


def heads_from_versions(store: Store) -> dict[str, VersionHead]:
    """Every trial's latest head found the slow way, by grouping over ``versions``."""
    with store.engine.connect() as conn:
        latest = dict(conn.execute(select(versions.c.trial_key, func.max(versions.c.number)).group_by(versions.c.trial_key)).all())
        rows = conn.execute(
            select(
                versions.c.trial_key,
                versions.c.number,
                versions.c.content_hash,
                versions.c.last_update_posted,
                versions.c.raw_hash,
            )
        )
        return {
            r.trial_key: VersionHead(r.number, r.content_hash, r.last_update_posted, r.raw_hash)
            for r in rows
            if latest[r.trial_key] == r.number
        }


def watch(live: Live, *keys: str) -> None:
    live.store.watches.ensure_watches("trial", keys, utc_now())


# --- watches --------------------------------------------------------------------------------


def test_ensure_watches_adds_only_the_missing_ones_in_one_batch(store_url):
    store = Store.open(store_url)
    now = utc_now()
    assert store.watches.ensure_watches("trial", ["NCT06821503", "NCT06302556"], now) == ["NCT06821503", "NCT06302556"]
    seen = Statements(store)
    assert store.watches.ensure_watches("trial", ["NCT06302556", "NCT06387628", "NCT06387628"], now) == ["NCT06387628"]
    assert store.watches.ensure_watches("trial", ["NCT06821503", "NCT06302556", "NCT06387628"], now) == []
    seen.close()
    assert len(seen.inserts_into("watches")) == 1, "one batched insert for the one new watch, none when unchanged"
    assert store.watches.watched_trials() == sorted(ALL)
    store.close()


def test_ensure_watches_reads_and_writes_the_targets_it_is_given_a_chunk_at_a_time(store_url):
    """A configuration of 570,000 ids never holds every watch, nor every row to insert, at once."""
    from monitor.store.rows import CHUNK

    store = Store.open(store_url)
    now = utc_now()
    store.watches.ensure_watches("trial", list(ALL), now)
    many = [f"NCT9{n:07d}" for n in range(2 * CHUNK + 250)]
    seen = Statements(store)
    added = store.watches.ensure_watches("trial", [*many[:CHUNK], ALL[1], *many[CHUNK:]], now)
    seen.close()
    assert added == many, "the new ones, in order: the one already watched left out"
    reads = [s for s in seen.reading("watches") if s.upper().startswith("SELECT")]
    assert len(reads) == 3 and all(" IN (" in s for s in reads), reads
    assert len(seen.inserts_into("watches")) == 3
    assert len(store.watches.watched_trials()) == len(many) + len(ALL)
    store.close()


def test_an_unchanged_group_cycle_issues_no_insert_for_its_watches(tmp_path, server):
    from monitor.config import load_settings
    from monitor.cycles import run_group

    path = tmp_path / "monitor.yaml"
    path.write_text(f"""
database: sqlite:///{tmp_path / "monitor.db"}
snapshots: {tmp_path / "archive"}
ctgov: {{base_url: "{server.url}", rate: 0, retries: 0}}
watches:
  - name: lupus
    trials: [NCT06821503, NCT06302556]
    queries: ["query.cond=lung"]
""")
    settings = load_settings(str(path))
    store = Store.open(settings.database)
    group = settings.group("lupus")
    first = run_group(store, settings, group)
    assert first.complete and store.watches.watched_trials()
    seen = Statements(store)
    again = run_group(store, settings, group)
    seen.close()
    assert again.complete
    assert seen.inserts_into("watches") == []
    assert store.watches.backfill_state("NCT06821503") is not None, "a newly watched trial waited for its history"
    store.close()


# --- heads --------------------------------------------------------------------------------------


def test_an_unchanged_cycle_reads_no_version_row(live, server):
    watch(live, *ALL)
    live.cycle()
    server.data_timestamp = "2026-01-02T00:00:00"  # the registry moved; none of ours did
    seen = Statements(live.store)
    report = live.cycle()
    seen.close()
    assert report.probed == 3 and report.fetched == 0
    assert seen.reading("versions") == []
    assert seen.reading("trial_heads"), "the heads come from their own small table"


def test_the_heads_table_agrees_with_versions_after_cycles_and_backfills(live, server):
    serve_history(server)
    watch(live, *ALL)
    live.cycle()
    assert live.store.versions.latest_heads() == heads_from_versions(live.store)
    server.set_study(study(OPENING / "2026-03-10.json"))
    server.data_timestamp = "2026-03-11T00:00:00"
    assert [r.status for r in live.cycle().results] == ["changed"]
    assert live.backfill("NCT06821503") == 1
    heads = live.store.versions.latest_heads()
    assert heads == heads_from_versions(live.store)
    assert heads["NCT06821503"].number == 3 and heads["NCT06821503"].last_update_posted == "2026-03-10"
    assert live.store.versions.latest_heads(["NCT06821503", "NCT09999999"]) == {"NCT06821503": heads["NCT06821503"]}


def test_the_heads_table_agrees_with_versions_after_loading_files(store_url):
    from conftest import UNKNOWN

    store = Store.open(store_url)
    results = load(store, [OPENING, UNKNOWN])
    assert {r.status for r in results} >= {"new", "changed"}
    assert store.versions.latest_heads() == heads_from_versions(store)
    assert store.versions.latest_head(results[0].key) == heads_from_versions(store)[results[0].key]
    store.close()


# --- backfills --------------------------------------------------------------------------------


def test_trials_waiting_for_their_history_do_not_stop_an_unchanged_cycle_from_skipping(live, server):
    watch(live, *ALL)
    live.cycle()
    for key in ALL:
        live.store.watches.set_backfill(key, "pending")
    server.history = {key: [] for key in ALL}
    report = live.cycle(backfill_per_cycle=0)
    assert report.skipped and report.requests == 1 and report.probed == 0
    report = live.cycle(backfill_per_cycle=2)
    assert report.skipped and report.probed == 0, "the backfills took their turn without a probe"
    assert [live.store.watches.backfill_state(key) for key in sorted(ALL)].count("done") == 2
    report = live.cycle(backfill_per_cycle=2)
    assert report.skipped and live.store.watches.pending_backfills(10) == []


# --- connections ----------------------------------------------------------------------------


def test_a_cycle_after_the_server_dropped_every_connection_runs_on_new_ones(tmp_path, server, store_url):
    """No ping per trial: the connections are checked once, at the start of a
    cycle, so a server restart between cycles costs nothing and loses nothing."""
    if not store_url.startswith("postgresql"):
        pytest.skip("a SQLite file has no server connection to lose")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from monitor.config import load_settings
    from monitor.cycles import run_group

    path = tmp_path / "monitor.yaml"
    path.write_text(f"""
database: {store_url}
ctgov: {{base_url: "{server.url}", rate: 0, retries: 0}}
watches:
  - name: lupus
    trials: [NCT06821503, NCT06302556]
""")
    settings = load_settings(str(path))
    store = Store.open(settings.database)
    group = settings.group("lupus")
    assert run_group(store, settings, group).complete
    admin = create_engine(store_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:  # what a restarted or failed-over server does to idle connections
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": make_url(store_url).database},
        ).scalar()
    admin.dispose()
    assert killed >= 1, "the store kept a connection open between cycles"
    server.set_study(study(OPENING / "2026-03-10.json"))
    server.data_timestamp = "2026-03-11T00:00:00"
    again = run_group(store, settings, group)
    assert again.complete and again.problems == []
    assert [r.status for r in again.results] == ["changed"]
    store.close()


def test_a_full_refresh_reads_the_heads_a_fixed_number_of_times_whatever_the_number_of_trials(live, server):
    """The weekly full refresh of three trials reads ``trial_heads`` as often as that of one."""

    def reads_at_the_full_refresh(keys) -> int:
        scope = f"n{len(keys)}"
        watch(live, *keys)
        live.cycle(trials=list(keys), scope=scope)  # the first cycle of a scope is a full refresh
        seen = Statements(live.store)
        live.store.service.set_state(f"ctgov.last_full_refresh.{scope}", "2000-01-01T00:00:00+00:00")
        live.cycle(trials=list(keys), scope=scope)
        seen.close()
        return len(seen.reading("trial_heads"))

    assert reads_at_the_full_refresh(ALL[:1]) == reads_at_the_full_refresh(ALL)


# --- the whole registry's unchanged cycle: nothing read that did not change ---------------------


def group_settings(tmp_path, server, trials: list[str], queries: list[str] = ()):
    from monitor.config import load_settings

    path = tmp_path / "monitor.yaml"
    path.write_text(f"""
database: sqlite:///{tmp_path / "monitor.db"}
snapshots: {tmp_path / "archive"}
ctgov: {{base_url: "{server.url}", rate: 0, retries: 0, backfill: false}}
watches:
  - name: lupus
    trials: [{", ".join(trials)}]
""" + (f"    queries: [{', '.join(repr(q) for q in queries)}]\n" if queries else ""))
    return load_settings(str(path))


def test_a_settled_unchanged_group_cycle_reads_no_watch_no_seen_state_and_no_rule_state(tmp_path, server):
    from monitor.cycles import run_group

    settings = group_settings(tmp_path, server, list(ALL))
    store = Store.open(settings.database)
    group = settings.group("lupus")
    assert run_group(store, settings, group).complete
    assert run_group(store, settings, group).complete  # registers, then settles
    seen = Statements(store)
    again = run_group(store, settings, group)
    seen.close()
    assert again.complete and again.plan == "", again.problems
    read = [s for s in seen if s.upper().startswith("SELECT")]
    never_evaluated = [s for s in read if "LEFT OUTER JOIN expected_seen" in s]  # one anti-join: no row comes back
    assert len(never_evaluated) == 1
    for table in ("trial_heads", "trial_state", "versions", "expected_seen", "expected_state", "query_members"):
        reads = [s for s in seen.reading(table) if s not in never_evaluated]
        assert reads == [], f"{table}: {reads}"
    assert [s for s in read if "watches.target" in s] == [], "the watched ids are not read"
    store.close()


def test_a_trial_added_to_a_settled_group_is_fetched_at_the_next_cycle_though_the_registry_did_not_move(
    tmp_path, server
):
    from monitor.cycles import run_group

    settings = group_settings(tmp_path, server, list(ALL[:2]))
    store = Store.open(settings.database)
    for _ in range(2):
        assert run_group(store, settings, settings.group("lupus")).complete
    grown = group_settings(tmp_path, server, list(ALL))
    outcome = run_group(store, grown, grown.group("lupus"))
    assert [(r.key, r.status) for r in outcome.results] == [(ALL[2], "new")], outcome.problems
    assert store.watches.watched_trials() == sorted(ALL)
    store.close()


@pytest.mark.parametrize("another", [None, "NCT99999999"], ids=["alone", "while-another-is-added"])
def test_a_watch_removed_by_hand_is_registered_again_by_its_group(tmp_path, server, another):
    from monitor.cycles import run_group

    settings = group_settings(tmp_path, server, list(ALL))
    store = Store.open(settings.database)
    for _ in range(2):
        assert run_group(store, settings, settings.group("lupus")).complete
    store.watches.remove_watch("trial", ALL[0])
    if another:  # as many watches as before: the count alone would not tell
        store.watches.add_watch("trial", another, utc_now())
    assert run_group(store, settings, settings.group("lupus")).complete
    assert store.watches.watched_trials() == sorted([*ALL, *([another] if another else [])])
    store.close()


def test_a_registry_day_reads_what_was_seen_of_the_trials_the_change_query_answered_only(live, server):
    from monitor.live_plan import PER_DAY, WATERMARK

    many = [f"NCT9{n:07d}" for n in range(2_000)]
    live.fetch(list(ALL))
    live.store.service.set_state(f"ctgov.{LAST_FULL}.big", utc_now().isoformat())
    live.store.service.set_state(f"{WATERMARK}.big", utc_now().date().isoformat())
    live.store.service.set_state(PER_DAY, "10")
    server.data_timestamp += "moved"
    live.cycle(trials=list(ALL) + many, scope="big")  # the first with this watched set reads it all, once
    server.data_timestamp += "again"
    seen = Statements(live.store)
    report = live.cycle(trials=list(ALL) + many, scope="big")
    seen.close()
    assert report.plan == "changes", report.plan_reason
    reads = seen.reading("trial_heads") + [s for s in seen.reading("trial_state") if "seen_update" in s]
    assert all(" IN (" in s for s in reads), [s for s in reads if " IN (" not in s]


def test_the_first_cycle_of_a_new_watched_set_reads_the_keys_held_not_what_was_seen_of_each(live, server):
    """Which watched trials wait for their first fetch is told from the keys alone: at 570,000
    trials, reading every head and every seen state doubled the cycle's peak memory."""
    many = [f"NCT9{n:07d}" for n in range(2_000)]
    live.fetch(list(ALL))
    seen = Statements(live.store)
    live.cycle(trials=list(ALL) + many, scope="big")
    seen.close()
    reads = seen.reading("trial_heads") + seen.reading("trial_state")
    whole = [s for s in reads if " IN (" not in s and "trial_key = " not in s]  # not one trial's, nor a chunk's
    keys = "SELECT trial_heads.trial_key FROM trial_heads WHERE trial_heads.trial_key > "
    assert [s for s in whole if s.startswith(keys)], "the keys, a page at a time"
    assert [s for s in whole if "trial_heads.number" in s or "seen_status" in s] == [], "no head, no seen state"


def test_the_keys_held_are_read_a_page_at_a_time_and_every_one_comes(live, monkeypatch):
    import monitor.store.watches

    monkeypatch.setattr(monitor.store.watches, "HELD_PAGE", 2)
    live.fetch(list(ALL))  # a head and a date seen for each
    live.store.watches.mark_seen("NCT99999999", "2026-01-01", "RECRUITING")  # a date seen, no head
    seen = Statements(live.store)
    held = list(live.store.watches.held_keys())
    seen.close()
    assert sorted(set(held)) == sorted([*ALL, "NCT99999999"])
    reads = [s for s in seen if s.upper().startswith("SELECT")]
    assert len(reads) == 5 and all(" LIMIT " in s for s in reads), reads  # heads: 2 + 1; dated: 2 + 2 + 0


def test_the_first_evaluation_of_many_trials_is_written_in_batches(store_url):
    from datetime import UTC, datetime

    from monitor.expected_events import record_expected

    store = Store.open(store_url)
    load(store, [OPENING / "2026-02-10.json", OPENING.parent / "NCT06302556"], lambda: datetime(2026, 3, 1, tzinfo=UTC))
    keys = list(store.versions.latest_heads())
    seen = Statements(store)
    record_expected(store, [*keys, "NCT09999999"], datetime(2026, 3, 1, tzinfo=UTC))
    seen.close()
    assert len(seen.inserts_into("expected_seen")) == 1
    assert all(" IN (" in s for s in seen.reading("expected_seen") + seen.reading("expected_state"))
    assert store.expected.expected_seen() == set(keys)
    store.close()


def test_registry_clients_share_one_tls_context_made_once_a_process():
    first = CtgovClient("http://127.0.0.1:9", politeness=Politeness(rate=0, retries=0, timeout=1))
    second = CtgovClient("http://127.0.0.1:9", politeness=Politeness(rate=0, retries=0, timeout=1))
    try:
        contexts = {id(c.http._transport._pool._ssl_context) for c in (first, second)}
        assert len(contexts) == 1, "the certificates are loaded once, not once a cycle"
    finally:
        first.close()
        second.close()


def test_a_watch_sets_fingerprint_changes_with_its_ids_and_is_computed_once_for_a_configurations_tuple(monkeypatch):
    import hashlib

    from monitor import seen

    hashed = []
    sha1 = hashlib.sha1
    monkeypatch.setattr(seen.hashlib, "sha1", lambda data=b"": hashed.append(len(data)) or sha1(data))
    config = tuple(ALL)
    first = seen.fingerprint(None, config, ())
    assert seen.fingerprint(None, config, ()) == first and seen.fingerprint(None, list(ALL), ()) == first
    assert seen.fingerprint(None, tuple(ALL[:2]), ()) != first
    assert seen.fingerprint(None, None, None) is None, "every watch: not told"
    assert len([n for n in hashed if n > 20]) == 3, "the tuple's ids were hashed once, the list's and the other's once each"
