"""The version store (the only package that imports SQLAlchemy).

Tables (:mod:`monitor.store.schema`): ``trials``; ``versions`` (each distinct
normalized record with its raw payload, content hash, source, load time and the
registry's last-update date); ``changes`` (what each version changed against
the one before, and saved-search events, which belong to no version);
``watches``, ``query_members``, ``trial_state`` and ``source_state`` for the
live source; ``expected_state`` (the expected-event rules true now).

:class:`Store` is a small facade: it opens and closes the database and holds
one object per concern, each on the same :class:`~monitor.store.database.Database`:

- ``store.versions``: trials, versions, changes and heads; one version
  (:mod:`monitor.store.versions`) or a batch with per-trial isolation
  (:mod:`monitor.store.bulk`), each with its changes and deliveries in one transaction;
- ``store.watches``: watches, saved-search members and each trial's fetch state
  (:mod:`monitor.store.watches`);
- ``store.deliveries``: the outbox rows, claimed, sent and retried (:mod:`monitor.store.deliveries`);
- ``store.service``: the key-value service state and the daemon's lock (:mod:`monitor.store.service`);
- ``store.expected``: the expected-event rules true now (:mod:`monitor.store.expected`);
- ``store.portfolio``: the change feed and the portfolio's rows (:mod:`monitor.store.portfolio`).

A write that spans concerns (a saved-search event with its deliveries, an expected
event) is still one transaction: the writing concern calls the other's helper with
its open connection.  Rows never leave this package: callers get
:class:`StoredVersion` values and model objects.

SQLite files are opened in WAL mode with a busy timeout, so a CLI command and
the daemon can use the same file.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from monitor.store.bulk import BulkStore, PendingVersion
from monitor.store.database import BUSY_TIMEOUT_MS, DEFAULT_DB, Database, database_url, open_engine
from monitor.store.deliveries import Delivery, DeliveryStore, Event
from monitor.store.expected import ExpectedStore
from monitor.store.portfolio import ChangeQuery, FeedChange, PortfolioStore, TrialRow
from monitor.store.rows import NewVersion, StoredVersion, VersionHead
from monitor.store.schema import metadata
from monitor.store.service import ServiceState
from monitor.store.watches import Watch, WatchStore


class Store:
    """Trials, versions, changes, watches, deliveries and service state in one SQLAlchemy
    database: one attribute per concern (``store.versions.latest_head(key)``,
    ``store.deliveries.claim(...)``, ``store.service.take_lock(...)``)."""

    def __init__(self, engine: Engine, keep_raw_versions: int = 0) -> None:
        self.db = Database(engine, keep_raw_versions)
        self.versions = BulkStore(self.db)
        self.service = ServiceState(self.db)
        self.watches = WatchStore(self.db, self.versions, self.service)
        self.deliveries = DeliveryStore(self.db, self.versions)
        self.expected = ExpectedStore(self.db, self.versions)
        self.portfolio = PortfolioStore(self.db)

    @classmethod
    def open(
        cls, url: str | None = None, create: bool = True, read_only: bool = False, keep_raw_versions: int = 0
    ) -> Store:
        """``read_only``: open for reading only (a read-only file or folder serves it); writes fail.
        ``keep_raw_versions``: keep only each trial's newest N raw payloads (0: all)."""
        return cls(open_engine(url, False if read_only else create, read_only=read_only), keep_raw_versions)

    @property
    def engine(self) -> Engine:
        return self.db.engine

    def close(self) -> None:
        self.db.close()

    def fresh_connections(self) -> None:
        """Start a cycle on new server connections (:meth:`Database.fresh_connections`)."""
        self.db.fresh_connections()


__all__ = [
    "BUSY_TIMEOUT_MS",
    "DEFAULT_DB",
    "ChangeQuery",
    "Delivery",
    "Event",
    "FeedChange",
    "NewVersion",
    "PendingVersion",
    "Store",
    "StoredVersion",
    "TrialRow",
    "VersionHead",
    "Watch",
    "database_url",
    "metadata",
]
