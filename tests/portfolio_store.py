"""A store loaded from the real versions in ../shared/data/ctgov/versions/, each version detected at noon
of its snapshot day; NCT06657144's first two versions come in later as backfilled history."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from monitor.classify import diff_records
from monitor.diff import fingerprint
from monitor.pipeline import as_new_version, load
from monitor.sources.files import read_snapshots
from monitor.store import Store

from conftest import SHARED

BACKFILLED = "NCT06657144"
BACKFILLED_DAYS = ("2026-02-03", "2026-02-09")


def noon(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T12:00:00+00:00")


def build(db: Path) -> Store:
    store = Store.open(str(db))
    index = json.loads((SHARED / "versions" / "INDEX.json").read_text())["trials"]
    for trial, versions in sorted(index.items()):
        for version in versions:
            day = version["snapshotDate"]
            if trial == BACKFILLED and day in BACKFILLED_DAYS:
                continue
            load(store, [SHARED / "versions" / trial / f"{day}.json"], now=lambda day=day: noon(day))
    older = [
        snapshot
        for day in BACKFILLED_DAYS
        for snapshot in read_snapshots(SHARED / "versions" / BACKFILLED / f"{day}.json")
    ]
    at = noon("2026-03-11")
    chain = [as_new_version(older[0], fingerprint(older[0].record), at)]
    found = diff_records(older[0].record, older[1].record)
    chain.append(as_new_version(older[1], fingerprint(older[1].record), at, found))
    first = store.versions.history(BACKFILLED)[0]
    store.versions.prepend_versions(BACKFILLED, chain, diff_records(older[1].record, first.record))
    return store


def now() -> datetime:
    return datetime(2026, 3, 14, tzinfo=UTC)
