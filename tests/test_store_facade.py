"""The store's seams: one object per concern behind a small facade, one transaction
across concerns, and one clock and id maker that reach the stored timestamps."""

from __future__ import annotations

import inspect
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import IntegrityError

from monitor import clock
from monitor.config import load_settings
from monitor.errors import StoreError
from monitor.live_plan import membership_event
from monitor.model import ChangeKind
from monitor.notify import Notifier
from monitor.pipeline import as_new_version, load
from monitor.sources.files import read_snapshots
from monitor.store import PendingVersion, Store
from monitor.store.database import Concern, Database
from monitor.store.service import ServiceState

from conftest import OPENING

CONCERNS = {
    "versions": ("add_version", "add_versions", "latest_head", "latest_heads", "history", "prepend_versions"),
    "watches": ("add_watch", "ensure_watches", "all", "members", "update_members", "mark_seen", "trial_errors"),
    "deliveries": ("due_deliveries", "recent", "claim", "release", "mark_sent", "retry_now", "event"),
    "service": ("get_state", "set_state", "state_with_prefix", "take_lock", "beat_lock", "release_lock"),
    "expected": ("apply_findings", "expected_true", "expected_seen", "latest_records"),
    "portfolio": ("change_feed", "latest_changes", "trial_rows"),
}
MEMBER = ("NCT00000001", "A trial", "RECRUITING")
FIXED = datetime(2031, 5, 4, 3, 2, 1, tzinfo=UTC)


@pytest.fixture
def store(store_url):
    store = Store.open(store_url)
    yield store
    store.close()


@pytest.mark.parametrize("concern", sorted(CONCERNS))
def test_the_facade_exposes_each_concern_on_the_one_shared_database(store, concern):
    part = getattr(store, concern)
    assert isinstance(part, Concern)
    assert part.db is store.db, "every concern holds the facade's Database, none opens its own"
    missing = [m for m in CONCERNS[concern] if not callable(getattr(part, m, None))]
    assert missing == [], f"store.{concern} lacks {missing}"
    others = {name for name in CONCERNS if name != concern}
    strays = [m for name in others for m in CONCERNS[name] if hasattr(part, m) and m not in CONCERNS[concern]]
    assert strays == [], f"store.{concern} also answers for another concern: {strays}"


def test_the_facade_itself_only_opens_closes_and_holds_the_concerns(store):
    public = {name for name in dir(store) if not name.startswith("_")}
    assert public == {"open", "close", "engine", "db", "fresh_connections", *CONCERNS}
    assert isinstance(store.db, Database)
    for concern in CONCERNS:
        chain = [c for c in inspect.getmro(type(getattr(store, concern))) if c not in (object, Concern)]
        assert len(chain) <= 2, f"store.{concern} inherits {chain}: concerns are composed, not stacked"


def test_a_version_whose_delivery_row_is_refused_is_not_stored(store):
    (first, second) = (read_snapshots(OPENING / name)[0] for name in ("2026-02-10.json", "2026-03-10.json"))
    store.versions.add_version(as_new_version(first, "a", FIXED), 1, ["mail"])
    with pytest.raises(StoreError):
        store.versions.add_version(as_new_version(second, "b", FIXED), 2, [None])  # the database refuses the row
    assert store.versions.latest_head(first.record.key).number == 1, "the version went with its delivery"
    assert store.versions.counts()["versions"] == 1
    assert [d.route for d in store.deliveries.recent()] == ["mail"]


def test_a_batch_keeps_each_version_with_its_deliveries_and_refuses_the_bad_one_alone(store):
    good, bad = (read_snapshots(OPENING / name)[0] for name in ("2026-02-10.json", "2026-03-10.json"))
    other = as_new_version(good, "a", FIXED)
    renamed = as_new_version(bad, "b", FIXED)
    renamed = replace(renamed, record=replace(bad.record, key="NCT00000002", nct_id="NCT00000002"))
    refused = store.versions.add_versions([PendingVersion(other, 1, ("mail",)), PendingVersion(renamed, 1, (None,))])
    assert list(refused) == ["NCT00000002"]
    assert store.versions.latest_head("NCT00000002") is None, "no version without its delivery row"
    assert store.versions.latest_head(good.record.key).number == 1
    assert [d.trial_key for d in store.deliveries.recent()] == [good.record.key]


def test_a_saved_search_event_its_deliveries_and_its_baseline_are_one_transaction(store):
    store.watches.add_watch("query", "cond=lupus", FIXED)
    event = membership_event("cond=lupus", ChangeKind.ADDED, "A trial", "RECRUITING")
    with pytest.raises(IntegrityError):  # the refused row: nothing of the transaction is kept
        store.watches.update_members("cond=lupus", [MEMBER], [], [("NCT00000001", event, [None])], FIXED)
    assert store.watches.members("cond=lupus") is None, "no member and no baseline: nothing of it was kept"
    assert store.deliveries.recent() == [] and store.versions.events("NCT00000001") == []
    store.watches.update_members("cond=lupus", [MEMBER], [], [("NCT00000001", event, ["mail"])], FIXED)
    assert store.watches.members("cond=lupus") == {"NCT00000001": ("A trial", "RECRUITING")}
    assert [d.route for d in store.deliveries.recent()] == ["mail"]
    assert store.service.get_state(next(iter(store.service.state_with_prefix("query.")))) == FIXED.isoformat()


def test_an_installed_clock_reaches_the_stored_timestamps(store):
    with clock.installed(lambda: FIXED):
        load(store, [OPENING / "2026-02-10.json", OPENING / "2026-03-10.json"])
    (first, second) = store.versions.history("NCT06821503")
    assert first.loaded_at.replace(tzinfo=UTC) == FIXED and second.loaded_at.replace(tzinfo=UTC) == FIXED
    assert store.versions.changes_since(FIXED)[0] == len(second.changes) > 0, "changes detected at the fixed time"
    assert clock.utc_now() != FIXED, "the machine's clock is back after the block"


def test_an_installed_id_maker_names_the_senders_lease(tmp_path):
    (tmp_path / "monitor.yaml").write_text(
        f"database: sqlite:///{tmp_path / 'm.db'}\n"
        "notifications:\n  routes:\n    - name: hook\n      urls: [\"json://127.0.0.1:9/x\"]\n"
    )
    settings = load_settings(str(tmp_path / "monitor.yaml"))
    store = Store.open(settings.database)
    with clock.installed(ids=lambda: "fixed-id"):
        owner = Notifier(store, settings).owner
    assert owner.endswith(":fixed-id")
    assert not Notifier(store, settings).owner.endswith(":fixed-id")
    store.close()


def test_the_service_state_and_the_lock_are_their_own_concern(store):
    assert isinstance(store.service, ServiceState)
    assert store.service.take_lock("daemon", "me", FIXED, lambda holder: False) is None
    assert store.service.lock_holder("daemon")["owner"] == "me"
    assert store.service.take_lock("daemon", "you", FIXED, lambda holder: False)["owner"] == "me"
    store.service.release_lock("daemon", "me")
    assert store.service.lock_holder("daemon") is None
