"""The database schema: tables only (see :mod:`monitor.store`)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects.postgresql import JSONB

_json = JSON().with_variant(JSONB(), "postgresql")
metadata = MetaData()

trials = Table(
    "trials",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("nct_id", String(11), index=True),
    Column("title", Text),
    Column("first_seen", DateTime(timezone=True), nullable=False),
)

versions = Table(
    "versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("trial_key", String(64), ForeignKey("trials.key"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    # Packed by monitor.store.packing: the record as compact JSON, compressed with the raw
    # payload as dictionary; the raw payload compressed, or NULL once retention dropped it.
    Column("record", LargeBinary, nullable=False),
    Column("raw", LargeBinary),
    Column("raw_hash", String(64), nullable=False, index=True),
    Column("format", String(32)),
    Column("source", Text),
    Column("loaded_at", DateTime(timezone=True), nullable=False),
    Column("last_update_posted", String(10)),
    UniqueConstraint("trial_key", "number", name="uq_versions_trial_number"),
)

trial_heads = Table(
    "trial_heads",
    metadata,
    # Each trial's latest version, kept beside ``versions`` in the transaction that writes it, so that a
    # cycle finds every head without reading a version row (whose date sits after the blobs).
    Column("trial_key", String(64), ForeignKey("trials.key"), primary_key=True),
    Column("number", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("last_update_posted", String(10)),
    # The latest version's raw-payload hash: a fetched copy byte-identical to it is not normalized again
    # (NULL only if a migration could not tell it; then the copy is compared the long way).
    Column("raw_hash", String(64)),
)

changes = Table(
    "changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # NULL for events that belong to no version: a trial entering or leaving a saved search.
    Column("version_id", Integer, ForeignKey("versions.id"), index=True),
    Column("trial_key", String(64), nullable=False, index=True),
    Column("detected_at", DateTime(timezone=True), nullable=False),
    Column("position", Integer, nullable=False),
    Column("category", String(32), nullable=False),
    Column("field", String(64), nullable=False),
    Column("change", String(16), nullable=False),
    Column("old", _json),
    Column("new", _json),
    Column("severity", String(8), nullable=False),
    Column("summary", Text, nullable=False),
    # Found in the registry's version history (``monitor backfill``): history, not news.
    Column("backfill", Boolean, nullable=False, server_default=false()),
)


watches = Table(
    "watches",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(8), nullable=False),  # trial | query
    Column("target", Text, nullable=False),  # an NCT id, or a saved search's API parameters
    Column("added_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("kind", "target", name="uq_watches_kind_target"),
)

query_members = Table(
    "query_members",
    metadata,
    Column("watch_id", Integer, ForeignKey("watches.id", ondelete="CASCADE"), primary_key=True),
    Column("trial_key", String(64), primary_key=True),
    Column("title", Text),
    Column("status", String(40)),
    Column("entered_at", DateTime(timezone=True), nullable=False),
)

trial_state = Table(
    "trial_state",
    metadata,
    Column("trial_key", String(64), primary_key=True),
    Column("backfill", String(8), nullable=False, default="pending"),  # pending | done | failed
    Column("seen_update", String(10)),  # the registry's last-update date when we last looked
    Column("seen_status", String(40)),  # and its overall status then
    Column("last_error", Text),
    Column("last_error_at", DateTime(timezone=True)),
)

source_state = Table(
    "source_state",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text),
)

deliveries = Table(
    "deliveries",
    metadata,
    # The transactional outbox: one row per (event, route), written in the transaction that stores the event.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("route", String(64), nullable=False),
    Column("event", String(32), nullable=False),  # "v:<version id>" or "c:<change id>" (a saved-search event)
    Column("trial_key", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("status", String(8), nullable=False, default="pending", index=True),  # pending | sent | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_error", Text),
    Column("sent_at", DateTime(timezone=True)),
    # A sender claims a pending row before sending it: until lease_until no other sender takes it.
    Column("lease_until", DateTime(timezone=True)),
    Column("lease_owner", String(64)),
    UniqueConstraint("route", "event", name="uq_deliveries_route_event"),
)

expected_state = Table(
    "expected_state",
    metadata,
    # The expected-event rules true now for a trial (monitor.expected): a row appears when a rule
    # becomes true (one `expected` event) and goes when it stops being true (one "resolved" event).
    Column("trial_key", String(64), primary_key=True),
    Column("rule", String(40), primary_key=True),
    Column("since", DateTime(timezone=True), nullable=False),
    Column("summary", Text, nullable=False),
)

expected_seen = Table(
    "expected_seen",
    metadata,
    # Trials the expected-event rules have evaluated at least once.  The first evaluation is a
    # baseline: the rules true then are stored in expected_state without an event.
    Column("trial_key", String(64), primary_key=True),
    Column("since", DateTime(timezone=True), nullable=False),
    # The next day the rules can turn for the trial's latest record (expected_events.next_due):
    # NULL = not known yet (evaluated on the next daily pass), date.max = no later day changes them.
    Column("due", Date, nullable=True, index=True),
)
