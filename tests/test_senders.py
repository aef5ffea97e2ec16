"""One sender per delivery, against a real SMTP server and a real HTTP
receiver, on SQLite and PostgreSQL: two watch groups whose cycles fire at the
same instant, or two processes sending at once, deliver each change exactly
once to each route; a killed sender's lease expires; retries back off
exponentially; a digest merges a trial's events; outbox rows are written with
their version or not at all."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime, timedelta

import pytest
from senders import race_notify_retry, stepped
from test_notify import DATABASE, Clock, configure, stale_trial_found, store_changes

from monitor.config import load_settings
from monitor.cycles import routes_for, run_group
from monitor.notify import Notifier, _backoff
from monitor.pipeline import load
from monitor.routing import for_route
from monitor.store import Store
from monitor.store.versions import VersionStore

from conftest import OPENING, UNKNOWN, study
from receivers import Mailbox


@pytest.fixture(autouse=True)
def every_backend(store_url):
    """Every test here runs on SQLite and on PostgreSQL."""
    DATABASE["url"] = store_url
    yield
    DATABASE.clear()


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 3, 10, 7, 0, tzinfo=UTC))


def two_routes(tmp_path, mailbox, webhook, extra: str = ""):
    routes = f"""
    - name: team-email
      urls: ["{mailbox.url()}"]
    - name: hook
      urls: ["{webhook.url}"]
"""
    return configure(tmp_path, routes, extra)


def expected_titles(store: Store, settings) -> list[str]:
    """The title of each event's message, once per event (what one route should get)."""
    from monitor.messages import headline

    titles = []
    for delivery in store.deliveries.recent():
        if delivery.route == "hook":
            event = store.deliveries.event(delivery.event)
            titles.append(
                f"{event.trial_key} {headline(for_route(settings.notifications.route('hook'), event.changes))}"
            )
    return sorted(titles)


def test_two_watch_groups_firing_at_the_same_instant_send_each_change_once_to_each_route(
    tmp_path, mailbox, webhook, clock, monkeypatch
):
    from monitor.store.deliveries import DeliveryStore

    config = two_routes(
        tmp_path,
        mailbox,
        webhook,
        f"  - name: opening\n    snapshots: [{OPENING}]\n  - name: stale\n    snapshots: [{UNKNOWN}]\n",
    )
    settings = load_settings(str(config))
    store = Store.open(settings.database)
    monkeypatch.setattr(DeliveryStore, "due_deliveries", stepped(threading.Barrier(2), DeliveryStore.due_deliveries))
    threads = [
        threading.Thread(target=run_group, args=(store, settings, settings.group(name), clock))
        for name in ("opening", "stale")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    monkeypatch.undo()
    titles = expected_titles(store, settings)
    assert len(titles) == 2, "one event per trial (the date rules are off in these tests)"
    assert sorted(post["title"] for post in webhook.posts) == titles
    assert sorted(m["Subject"] for m in mailbox.messages) == titles
    assert store.deliveries.delivery_counts() == {"pending": 0, "failed": 0, "sent": 4}


def test_two_notify_retry_processes_at_once_send_each_change_once_to_each_route(tmp_path, mailbox, webhook, clock):
    config = two_routes(tmp_path, mailbox, webhook)
    settings = load_settings(str(config))
    store = stale_trial_found(settings, clock)
    store_changes(settings, store, clock, OPENING / "2026-02-10.json")
    store_changes(settings, store, clock, OPENING / "2026-03-10.json")
    assert store.deliveries.delivery_counts()["pending"] == 4
    assert race_notify_retry(str(config)) == [0, 0]
    titles = expected_titles(store, settings)
    assert len(titles) == 2
    assert sorted(post["title"] for post in webhook.posts) == titles
    assert sorted(m["Subject"] for m in mailbox.messages) == titles
    assert store.deliveries.delivery_counts() == {"pending": 0, "failed": 0, "sent": 4}


def test_a_delivery_claimed_by_a_sender_elsewhere_is_left_alone_until_its_lease_expires(
    tmp_path, mailbox, webhook, clock, cli
):
    """A sender on another machine (or one this process cannot see) may be
    alive: its claim holds until the lease expires, then the row is sent again."""
    from monitor.notify import LEASE

    config = two_routes(tmp_path, mailbox, webhook)
    settings = load_settings(str(config))
    store = stale_trial_found(settings, clock)
    ids = [d.id for d in store.deliveries.recent("pending")]
    assert store.deliveries.claim(ids, "host:4242:dead", clock.now, clock.now + LEASE) == sorted(ids)
    assert store.deliveries.claim(ids, "another sender", clock.now, clock.now + LEASE) == [], "one sender per delivery"
    listing = cli("--config", config, "deliveries", "--pending")
    assert listing.out.count("claimed by host:4242:dead until 2026-03-10 07:10") == 2
    clock.advance(seconds=LEASE.total_seconds() - 1)
    assert Notifier(store, settings, now=clock).send_due().sent == 0, "the lease holds until it expires"
    clock.advance(seconds=2)
    assert Notifier(store, settings, now=clock).send_due().sent == 2, "the dead sender's lease expired"
    assert len(mailbox.messages) == len(webhook.posts) == 1


@pytest.mark.parametrize(("attempts", "minutes"), [(1, 1), (2, 2), (3, 4), (4, 8), (5, 16), (6, 32), (7, 60), (30, 60)])
def test_the_retry_backoff_doubles_up_to_an_hour(attempts, minutes):
    assert _backoff(attempts) == timedelta(minutes=minutes)


def test_each_failed_attempt_waits_twice_as_long_as_the_one_before(tmp_path, clock):
    box = Mailbox()  # never started: its port refuses every connection
    settings = load_settings(str(configure(tmp_path, f'    - name: team-email\n      urls: ["{box.url()}"]\n')))
    store = stale_trial_found(settings, clock)
    waits = []
    for _ in range(4):
        Notifier(store, settings, now=clock).send_due()
        (row,) = store.deliveries.recent("pending")
        waits.append(row.next_attempt_at.replace(tzinfo=clock.now.tzinfo) - clock.now)
        clock.now = row.next_attempt_at.replace(tzinfo=clock.now.tzinfo)
    assert waits == [timedelta(minutes=m) for m in (1, 2, 4, 8)]


def test_a_digest_merges_the_events_of_one_trial_into_one_entry(tmp_path, mailbox, clock):
    settings = load_settings(
        str(
            configure(
                tmp_path,
                f'    - name: daily\n      urls: ["{mailbox.url()}"]\n      digest: daily\n      at: "08:00"\n',
            )
        )
    )
    store = Store.open(settings.database)
    notifier = Notifier(store, settings, now=clock)
    notifier.send_due()  # 07:00: the route starts its first period
    later = study(OPENING / "2026-03-10.json")
    later["protocolSection"]["statusModule"]["overallStatus"] = "SUSPENDED"
    later["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"] = "2026-03-20"
    third = tmp_path / "NCT06821503-2026-03-20.json"
    third.write_text(json.dumps(later))
    store_changes(settings, store, clock, OPENING / "2026-02-10.json", UNKNOWN / "2026-02-02.json")
    store_changes(settings, store, clock, OPENING / "2026-03-10.json", UNKNOWN / "2026-03-02.json")
    store_changes(settings, store, clock, third)
    events = [store.deliveries.event(d.event) for d in store.deliveries.recent("pending")]
    assert sorted(e.trial_key for e in events) == ["NCT06302556", "NCT06821503", "NCT06821503"]
    total = sum(len(e.changes) for e in events)
    clock.advance(hours=1, minutes=1)
    assert notifier.send_due().sent == 3
    (message,) = mailbox.messages
    assert message["Subject"] == f"registry-monitor daily digest: {total} changes in 2 trials"
    body = mailbox.texts()[0]
    entry = body[body.index("NCT06821503") :]
    assert "Overall status NOT_YET_RECRUITING -> RECRUITING" in entry and "RECRUITING -> SUSPENDED" in entry
    assert body.count("study/NCT06821503?tab=history") == 1, "one entry for the trial"


def test_a_failure_writing_the_outbox_rows_leaves_no_version_behind(tmp_path, clock, monkeypatch):
    """The version, its changes and its delivery rows land in one transaction:
    when the rows cannot be written, the version is not stored either (and the
    per-trial boundary records the failure as that trial's problem)."""
    settings = load_settings(str(configure(tmp_path, '    - name: hook\n      urls: ["json://127.0.0.1:9/x"]\n')))
    store = Store.open(settings.database)
    store_changes(settings, store, clock, UNKNOWN / "2026-02-02.json")

    write = VersionStore._insert_deliveries

    def write_then_fail(self, conn, routes, *args):
        write(self, conn, routes, *args)
        if routes:
            raise RuntimeError("the disk filled up while writing the outbox")

    def rows_then_fail(routes, *args):  # the batched writer: its versions are already inserted
        if routes:
            raise RuntimeError("the disk filled up while writing the outbox")
        return []

    monkeypatch.setattr(VersionStore, "_insert_deliveries", write_then_fail)
    monkeypatch.setattr("monitor.store.bulk.delivery_rows", rows_then_fail)
    results = load(store, [UNKNOWN / "2026-03-02.json"], clock, routes_for(store, settings, "fixtures"))
    assert [(r.key, r.status) for r in results] == [("NCT06302556", "failed")]
    assert "the disk filled up while writing the outbox" in results[0].note
    monkeypatch.undo()
    assert len(store.versions.history("NCT06302556")) == 1, "the second version was not stored"
    assert store.deliveries.recent() == []


def test_two_senders_at_the_same_instant_send_one_digest(tmp_path, mailbox, clock, monkeypatch):
    from monitor.store.deliveries import DeliveryStore

    digest = f'    - name: daily\n      urls: ["{mailbox.url()}"]\n      digest: daily\n      at: "08:00"\n'
    settings = load_settings(str(configure(tmp_path, digest)))
    store = Store.open(settings.database)
    Notifier(store, settings, now=clock).send_due()  # 07:00: the route starts its first period
    store_changes(settings, store, clock, OPENING / "2026-02-10.json", UNKNOWN / "2026-02-02.json")
    store_changes(settings, store, clock, OPENING / "2026-03-10.json", UNKNOWN / "2026-03-02.json")
    clock.advance(hours=1, minutes=1)
    monkeypatch.setattr(DeliveryStore, "due_deliveries", stepped(threading.Barrier(2), DeliveryStore.due_deliveries))
    reports = []
    senders = [
        threading.Thread(target=lambda: reports.append(Notifier(store, settings, now=clock).send_due()))
        for _ in range(2)
    ]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    monkeypatch.undo()
    assert sorted(r.sent for r in reports) == [0, 2]
    assert len(mailbox.messages) == 1, "one digest"
    assert store.deliveries.delivery_counts() == {"pending": 0, "failed": 0, "sent": 2}


def test_a_delivery_claimed_by_a_sender_that_died_on_this_machine_is_sent_at_once(tmp_path, mailbox, webhook, clock):
    import subprocess
    import sys

    from monitor.notify import _PROCESS, LEASE

    settings = load_settings(str(two_routes(tmp_path, mailbox, webhook)))
    store = stale_trial_found(settings, clock)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead, alive = f"{_PROCESS}:{gone.stdout.strip()}:0", f"{_PROCESS}:{os.getppid()}:0"
    email, hook = sorted(store.deliveries.recent("pending"), key=lambda d: d.route)[::-1]
    assert store.deliveries.claim([email.id], dead, clock.now, clock.now + LEASE) == [email.id]
    assert store.deliveries.claim([hook.id], alive, clock.now, clock.now + LEASE) == [hook.id]
    assert Notifier(store, settings, now=clock).send_due().sent == 1, "only the dead sender's row"
    assert len(mailbox.messages) == 1 and webhook.posts == []


def test_two_processes_sending_to_a_json_webhook_post_each_event_once(tmp_path, webhook, clock):
    """The JSON webhook route (format: json, monitor.webhook) goes through the same leases as Apprise's."""
    config = configure(tmp_path, f'    - name: hook\n      urls: ["{webhook.url}"]\n      format: json\n')
    settings = load_settings(str(config))
    store = stale_trial_found(settings, clock)
    store_changes(settings, store, clock, OPENING / "2026-02-10.json")
    store_changes(settings, store, clock, OPENING / "2026-03-10.json")
    assert store.deliveries.delivery_counts()["pending"] == 2
    assert race_notify_retry(str(config)) == [0, 0]
    assert sorted((p["schema"], p["trial"]) for p in webhook.posts) == [
        ("registry-monitor/event/1", "NCT06302556"),
        ("registry-monitor/event/1", "NCT06821503"),
    ]
    assert store.deliveries.delivery_counts() == {"pending": 0, "failed": 0, "sent": 2}
