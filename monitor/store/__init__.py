"""The version store (the only package that imports SQLAlchemy).

Tables (:mod:`monitor.store.schema`): ``trials``; ``versions`` (each distinct
normalized record with its raw payload, content hash, source, load time and the
registry's last-update date); ``changes`` (what each version changed against
the one before, and saved-search events, which belong to no version);
``watches``, ``query_members``, ``trial_state`` and ``source_state`` for the
live source; ``expected_state`` (the expected-event rules true now).  A
version and its changes are written in one transaction (a batch of versions,
with per-trial isolation: :mod:`monitor.store.bulk`).  Rows never leave
this package: callers get :class:`StoredVersion` values and model objects.

SQLite files are opened in WAL mode with a busy timeout, so a CLI command and
the daemon can use the same file.
"""

from __future__ import annotations

from monitor.store.bulk import BulkStore, PendingVersion
from monitor.store.database import BUSY_TIMEOUT_MS, DEFAULT_DB, database_url, open_engine
from monitor.store.deliveries import Delivery, Event
from monitor.store.expected import ExpectedStore
from monitor.store.portfolio import ChangeQuery, FeedChange, PortfolioStore, TrialRow
from monitor.store.schema import metadata
from monitor.store.versions import NewVersion, StoredVersion, VersionHead
from monitor.store.watches import Watch


class Store(PortfolioStore, ExpectedStore, BulkStore):
    """Trials, versions, changes and watches in one SQLAlchemy database."""

    @classmethod
    def open(
        cls, url: str | None = None, create: bool = True, read_only: bool = False, keep_raw_versions: int = 0
    ) -> Store:
        """``read_only``: open for reading only (a read-only file or folder serves it); writes fail.
        ``keep_raw_versions``: keep only each trial's newest N raw payloads (0: all)."""
        return cls(open_engine(url, False if read_only else create, read_only=read_only), keep_raw_versions)


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
