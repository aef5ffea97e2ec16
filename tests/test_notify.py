"""Notifications people act on, against a real SMTP server (aiosmtpd) and a real
HTTP receiver on 127.0.0.1: routed, readable, never lost, never doubled after
they were confirmed."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.config import load_settings
from monitor.notify import Notifier
from monitor.pipeline import load
from monitor.routing import Router
from monitor.store import Store

from conftest import OPENING, ROOT, UNKNOWN
from receivers import Mailbox


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


DATABASE: dict[str, str] = {}


@pytest.fixture(autouse=True)
def every_backend(store_url):
    """Every test here runs on SQLite and on PostgreSQL: `configure` writes the database of the run."""
    DATABASE["url"] = store_url
    yield
    DATABASE.clear()


def configure(tmp_path: Path, routes: str, extra: str = "") -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(f"""
database: {DATABASE["url"]}
expected: {{completion_grace_days: 100000, results_grace_days: 100000, verification_days: 100000}}  # changes only here
watches:
  - name: fixtures
    snapshots: [{OPENING}, {UNKNOWN}]
{extra}
notifications:
  max_age_hours: 24
  routes:
{routes}
""")
    return path


def store_changes(settings, store: Store, clock: Clock, *paths) -> None:
    """Load snapshot files as the group `fixtures` would, routing their changes."""
    from monitor.cycles import routes_for

    load(store, list(paths), clock, routes_for(store, settings, "fixtures"))


def stale_trial_found(settings, clock: Clock) -> Store:
    """The store after NCT06302556 went stale (UNKNOWN): one status event, routed."""
    store = Store.open(settings.database)
    store_changes(settings, store, clock, UNKNOWN / "2026-02-02.json")
    store_changes(settings, store, clock, UNKNOWN / "2026-03-02.json")
    return store


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 3, 10, 7, 0, tzinfo=UTC))


# --- immediate routes ----------------------------------------------------------------------


def test_a_status_change_sends_exactly_one_email_with_the_expected_subject_and_body(tmp_path, mailbox, clock):
    settings = load_settings(
        str(
            configure(
                tmp_path,
                f"""
    - name: team-email
      urls: ["{mailbox.url()}"]
      categories: [status]
""",
            )
        )
    )
    store = stale_trial_found(settings, clock)
    assert store.deliveries.delivery_counts()["pending"] == 1
    report = Notifier(store, settings, now=clock).send_due()
    assert report.sent == 1
    (message,) = mailbox.messages
    assert message["Subject"] == "NCT06302556 unknown (last known: not yet recruiting)"
    body = mailbox.texts()[0]
    assert "The Role of Immune Checkpoints in Lung Transplant (ILTRA)" in body
    assert "Overall status NOT_YET_RECRUITING -> UNKNOWN" in body
    assert "https://clinicaltrials.gov/study/NCT06302556?tab=history" in body
    assert "<li>Overall status NOT_YET_RECRUITING -&gt; UNKNOWN</li>" in mailbox.html()[0], "an HTML e-mail"
    clock.advance(hours=1)
    assert Notifier(store, settings, now=clock).send_due().sent == 0
    assert len(mailbox.messages) == 1, "never sent twice"
    assert store.deliveries.delivery_counts() == {"pending": 0, "failed": 0, "sent": 1}


def test_a_webhook_route_gets_one_json_post_per_event(tmp_path, webhook, clock):
    settings = load_settings(
        str(
            configure(
                tmp_path,
                f"""
    - name: hook
      urls: ["{webhook.url}"]
      min_severity: major
""",
            )
        )
    )
    store = Store.open(settings.database)
    store_changes(settings, store, clock, OPENING / "2026-02-10.json", UNKNOWN / "2026-02-02.json")
    store_changes(settings, store, clock, OPENING / "2026-03-10.json", UNKNOWN / "2026-03-02.json")
    assert Notifier(store, settings, now=clock).send_due().sent == 2
    titles = sorted(post["title"] for post in webhook.posts)
    assert titles == [
        "NCT06302556 unknown (last known: not yet recruiting)",
        "NCT06821503 now recruiting; start slipped 2 months; 2 eligibility changes",
    ]
    opening = next(p for p in webhook.posts if p["title"].startswith("NCT06821503"))
    assert "Site " not in opening["message"], "a major-only route hears nothing minor"
    assert "- Have not received systematic treatment" in opening["message"]


def test_routes_select_by_trial_watch_group_category_and_severity():
    from monitor.config import Route
    from monitor.model import Category, Change, ChangeKind, Severity

    status = Change(Category.STATUS, "overall_status", ChangeKind.MODIFIED, "A", "B", Severity.MAJOR, "s")
    site = Change(Category.LOCATIONS, "locations", ChangeKind.ADDED, None, {}, Severity.MINOR, "l")
    router = Router(
        [
            Route("all", urls=("json://x",)),
            Route("status", urls=("json://x",), categories=("status",)),
            Route("major", urls=("json://x",), min_severity="major"),
            Route("lupus", urls=("json://x",), watches=("lupus",)),
            Route("one", urls=("json://x",), trials=("NCT00000001",)),
        ],
        groups_of=lambda key: {"lupus"} if key == "NCT00000001" else set(),
    )
    assert router.routes_for("NCT00000002", [site]) == ["all"]
    assert router.routes_for("NCT00000002", [status, site]) == ["all", "status", "major"]
    assert router.routes_for("NCT00000001", [site]) == ["all", "lupus", "one"]
    assert router.routes_for("NCT00000002", [site], group="lupus") == ["all", "lupus"]
    assert router.routes_for("NCT00000002", []) == []


# --- digests ---------------------------------------------------------------------------------


def test_a_digest_route_sends_one_message_per_period_grouped_by_trial_most_severe_first(tmp_path, mailbox, clock):
    settings = load_settings(
        str(
            configure(
                tmp_path,
                f"""
    - name: daily
      urls: ["{mailbox.url("me@example.org")}"]
      digest: daily
      at: "08:00"
""",
            )
        )
    )
    store = Store.open(settings.database)
    notifier = Notifier(store, settings, now=clock)
    assert notifier.send_due().sent == 0  # 07:00: the route starts its first period
    store_changes(settings, store, clock, OPENING / "2026-02-10.json", UNKNOWN / "2026-02-02.json")
    store_changes(settings, store, clock, OPENING / "2026-03-10.json", UNKNOWN / "2026-03-02.json")
    clock.advance(minutes=30)
    assert notifier.send_due().sent == 0 and mailbox.messages == []  # 07:30: not yet
    clock.advance(minutes=31)
    assert notifier.send_due().sent == 2  # 08:01: one message for both
    (message,) = mailbox.messages
    assert message["Subject"] == "registry-monitor daily digest: 22 changes in 2 trials"
    body = mailbox.texts()[0]
    assert body.index("NCT06821503") < body.index("NCT06302556"), "most severe first"
    clock.advance(hours=2)
    assert notifier.send_due().sent == 0 and len(mailbox.messages) == 1
    assert Notifier(store, settings, now=clock).send_due().sent == 0, "a route with nothing to say sends nothing"


# --- failures, retries, crashes -------------------------------------------------------------


def test_with_the_smtp_server_down_the_delivery_waits_and_one_retry_delivers_it_once(tmp_path, clock):
    box = Mailbox()  # not started: its port refuses connections
    settings = load_settings(
        str(
            configure(
                tmp_path,
                f"""
    - name: team-email
      urls: ["{box.url()}"]
""",
            )
        )
    )
    store = stale_trial_found(settings, clock)
    report = Notifier(store, settings, now=clock).send_due()
    assert (report.sent, report.retrying, report.failed) == (0, 1, 0)
    (row,) = store.deliveries.recent("pending")
    assert row.attempts == 1 and row.last_error
    assert row.next_attempt_at.replace(tzinfo=UTC) == clock.now + timedelta(minutes=1)
    box.start()
    try:
        assert Notifier(store, settings, now=clock).send_due().sent == 0, "not before its next attempt"
        clock.advance(minutes=2)
        assert Notifier(store, settings, now=clock).send_due().sent == 1
        clock.advance(hours=1)
        assert Notifier(store, settings, now=clock).send_due().sent == 0
        assert len(box.messages) == 1
    finally:
        box.stop()


def test_a_delivery_failing_past_its_max_age_is_marked_failed_and_shown(tmp_path, clock, cli):
    box = Mailbox()
    config = configure(
        tmp_path,
        f"""
    - name: team-email
      urls: ["mailto://user:s3cretpassword@127.0.0.1:{box.port}?from=monitor@example.org&to=a@example.org&mode=insecure"]
""",
    )
    settings = load_settings(str(config))
    store = stale_trial_found(settings, clock)
    for _ in range(3):
        Notifier(store, settings, now=clock).send_due()
        clock.advance(hours=13)
    (row,) = store.deliveries.recent("failed")
    assert row.attempts >= 2
    listing = cli("--config", config, "deliveries", "--failed")
    assert listing.code == 0 and "failed   team-email" in listing.out
    status = cli("--config", config, "status")
    assert "deliveries      0 pending, 1 failed" in status.out
    for text in (listing.out, listing.err, status.out, row.last_error):
        assert "s3cretpassword" not in text


def test_killing_the_sender_between_send_and_mark_sends_again_on_restart(tmp_path, mailbox, clock):
    """The behaviour chosen: at-least-once.  The ledger row is marked sent only
    after Apprise confirmed the send; a crash in between leaves it pending, so
    it is sent again.  The other choice (mark first, then send) would lose the
    message in the same crash, and a missed alert is worse than a repeated one.
    The killed sender's claim is given back at once, since it ran on this
    machine and is gone (a claim from elsewhere waits for its lease to expire:
    test_senders); once marked sent, a row is never sent again."""
    settings = load_settings(
        str(
            configure(
                tmp_path,
                f"""
    - name: team-email
      urls: ["{mailbox.url()}"]
""",
            )
        )
    )
    store = stale_trial_found(settings, clock)
    crash = f"""
import os, sys
from datetime import datetime
sys.path.insert(0, {str(ROOT)!r})
from monitor.config import load_settings
from monitor.notify import Notifier
from monitor.store import Store
from monitor.store.deliveries import DeliveryStore
DeliveryStore.mark_sent = lambda self, ids, at: os._exit(9)  # killed right after the send
settings = load_settings({str(tmp_path / "monitor.yaml")!r})
Notifier(Store.open(settings.database), settings, now=lambda: datetime.fromisoformat({clock.now.isoformat()!r})).send_due()
"""
    result = subprocess.run([sys.executable, "-c", crash], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 9, result.stderr
    assert len(mailbox.messages) == 1
    (row,) = store.deliveries.recent("pending")
    assert row.lease_owner, "not confirmed, so not marked: still pending, and claimed by the dead sender"
    assert Notifier(store, settings, now=clock).send_due().sent == 1
    assert len(mailbox.messages) == 2, "sent again after the crash"
    clock.advance(hours=1)
    assert Notifier(store, settings, now=clock).send_due().sent == 0
    assert len(mailbox.messages) == 2, "and never again once confirmed"


# --- the commands -------------------------------------------------------------------------------


def test_notify_test_sends_a_sample_message(tmp_path, mailbox, cli):
    config = configure(
        tmp_path,
        f"""
    - name: team-email
      urls: ["{mailbox.url()}"]
""",
    )
    run = cli("--config", config, "notify", "test")
    assert run.code == 0, run.err
    assert run.out.startswith("team-email: sent (mailto://")
    assert mailbox.messages[0]["Subject"] == "NCT00000000 terminated; enrollment 263 estimated -> 99 actual"
    missing = cli("--config", config, "notify", "test", "nope")
    assert missing.code == 2 and missing.err == "error: no route named 'nope' (routes: team-email)\n"


def test_notify_retry_sends_pending_deliveries_now(tmp_path, clock, cli):
    box = Mailbox()  # down at first
    config = configure(tmp_path, f'    - name: team-email\n      urls: ["{box.url()}"]\n')
    settings = load_settings(str(config))
    store = stale_trial_found(settings, clock)
    assert Notifier(store, settings, now=clock).send_due().retrying == 1
    box.start()
    try:
        run = cli("--config", config, "notify", "retry")
        assert run.code == 0, run.err
        assert run.out == "1 due; 1 sent, 0 to retry, 0 given up\n"
        assert len(box.messages) == 1
        assert store.deliveries.delivery_counts()["sent"] == 1
    finally:
        box.stop()


@pytest.mark.parametrize(
    ("route", "message"),
    [
        (
            '    - name: a\n      urls: ["nonsense://x"]\n',
            "notifications.routes[0].urls[0]: is not a URL Apprise can send to",
        ),
        (
            '    - name: a\n      urls: ["json://h"]\n      categories: [statuses]\n',
            "notifications.routes[0].categories[0]: 'statuses' is not a category (one of: status, enrollment",
        ),
        (
            '    - name: a\n      urls: ["json://h"]\n      watches: [nope]\n',
            "notifications.routes[0].watches[0]: 'nope' is not a watch group's name",
        ),
        (
            '    - name: a\n      urls: ["json://h"]\n      digest: monthly\n',
            "notifications.routes[0].digest: 'monthly' should be hourly, daily or weekly",
        ),
        (
            '    - name: a\n      urls: ["json://h"]\n      digest: daily\n      at: "8am"\n',
            "notifications.routes[0].at: '8am' should be HH:MM",
        ),
        ("    - name: a\n", "notifications.routes[0]: sends nowhere: give it urls (Apprise URLs) or tags"),
        (
            '    - name: a\n      urls: ["json://$UNSET_VARIABLE_FOR_TEST/x"]\n',
            "notifications.routes[0].urls[0]: names an environment variable that is not set",
        ),
    ],
    ids=["bad_url", "bad_category", "bad_group", "bad_digest", "bad_time", "no_urls", "unset_env"],
)
def test_a_wrong_route_names_its_line_and_path(tmp_path, route, message):
    from monitor.errors import ConfigError

    path = configure(tmp_path, route)
    with pytest.raises(ConfigError) as raised:
        load_settings(str(path))
    assert message in raised.value.message
    assert raised.value.message.startswith(f"{path}:")


def test_route_urls_take_secrets_from_the_environment_and_never_show_them(tmp_path, monkeypatch, cli):
    monkeypatch.setenv("SLACK_TOKENS", "T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ")
    config = configure(tmp_path, '    - name: slack\n      urls: ["slack://${SLACK_TOKENS}/#lupus"]\n')
    assert load_settings(str(config)).notifications.routes[0].urls == (
        "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#lupus",
    )
    shown = cli("--config", config, "config", "check").out
    assert "TIiajkdnlazkcOXrIdevi7FQ" not in shown and "slack://T...2/A...D/T...Q/" in shown


def test_a_route_can_name_tags_of_an_apprise_config_file(tmp_path, webhook, clock):
    apprise_config = tmp_path / "apprise.txt"
    apprise_config.write_text(f"team={webhook.url}\nothers=json://127.0.0.1:9/never\n")
    path = configure(tmp_path, "    - name: by-tag\n      tags: [team]\n")
    path.write_text(
        path.read_text().replace("notifications:\n", f"notifications:\n  apprise_config: {apprise_config}\n")
    )
    settings = load_settings(str(path))
    store = stale_trial_found(settings, clock)
    assert Notifier(store, settings, now=clock).send_due().sent == 1
    assert [p["title"] for p in webhook.posts] == ["NCT06302556 unknown (last known: not yet recruiting)"]


def test_templates_in_the_configured_folder_override_the_built_in_ones(tmp_path, webhook, clock):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "event.txt.j2").write_text("{{ key }} changed: {% for s in sections %}{{ s.category }} {% endfor %}")
    path = configure(tmp_path, f'    - name: hook\n      urls: ["{webhook.url}"]\n')
    path.write_text(path.read_text().replace("notifications:\n", f"notifications:\n  templates: {templates}\n"))
    settings = load_settings(str(path))
    store = stale_trial_found(settings, clock)
    Notifier(store, settings, now=clock).send_due()
    assert webhook.posts[0]["message"].strip() == "NCT06302556 changed: status"


def test_new_trials_in_a_saved_search_reach_a_webhook(tmp_path, server, webhook, clock):
    import copy

    from monitor.cycles import run_group

    from conftest import NOISE, study

    path = tmp_path / "monitor.yaml"
    path.write_text(f"""
database: sqlite:///{tmp_path / "monitor.db"}
ctgov: {{base_url: "{server.url}", rate: 0, retries: 0}}
watches:
  - name: lung
    queries: ["query.cond=lung"]
notifications:
  routes:
    - name: new-trials
      urls: ["{webhook.url}"]
      categories: [membership]
""")
    settings = load_settings(str(path))
    store = Store.open(settings.database)
    group = settings.group("lung")
    assert run_group(store, settings, group, clock).notified == 0, "the first run sets the baseline"
    newcomer = copy.deepcopy(study(NOISE / "2026-02-03.json"))
    newcomer["protocolSection"]["identificationModule"]["nctId"] = "NCT07777777"
    newcomer["protocolSection"]["conditionsModule"]["conditions"] = ["Lung Cancer"]
    # it enters the search through an update, posted today (after the data timestamp the first run read)
    newcomer["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"] = clock().date().isoformat()
    server.set_study(newcomer)
    clock.advance(hours=1)
    assert run_group(store, settings, group, clock).notified == 1
    (post,) = webhook.posts
    assert post["title"].startswith("NCT07777777 entered saved search 'query.cond=lung'")
