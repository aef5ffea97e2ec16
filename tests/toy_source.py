"""A toy registry, added the way any registry is: one source module with its
normalizer, and one line in a registry (``SOURCES["toy"] = ToySource``).

Its keys are ``TOY-`` and four digits.  Its "server" is :data:`SERVED`, which a
test fills: key -> the record's JSON text as the registry answers it today.
Its watermark is :data:`DAY`, the registry's publication day, and it can say
which trials changed since a watermark (so the cycle asks no probe).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator

from monitor.errors import ParseError, UsageError
from monitor.model import TrialRecord
from monitor.sources.base import Changed, Fetched, Source

SERVED: dict[str, str] = {}  # key -> JSON text of its current record
UPDATED: dict[str, int] = {}  # key -> the day its record last changed
DAY = [1]  # the registry's publication day: its watermark
KEY = re.compile(r"TOY-[0-9]{4}")


def normalize_toy(raw: str) -> TrialRecord:
    """A toy record ``{"id", "title", "status", "updated"}`` -> a TrialRecord; any
    other shape is refused with the JSON path, never coerced."""
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ParseError(f"$: expected an object, got {type(data).__name__}")
    for field in ("id", "title", "status", "updated"):
        if not isinstance(data.get(field), str):
            raise ParseError(f"{field}: expected a string, got {json.dumps(data.get(field))}")
    if not KEY.fullmatch(data["id"]):
        raise ParseError(f"id: {data['id']!r} is not a toy id (TOY- and four digits)")
    return TrialRecord(
        key=data["id"],
        brief_title=data["title"],
        overall_status=data["status"],
        last_update_posted=data["updated"],
        source="toy",
    )


class ToySource(Source):
    name = "toy"
    title = "the Toy Registry"
    key_hint = "a toy id (TOY- and four digits)"
    url = "toy://registry"

    def __init__(self) -> None:
        self.requests = 0

    @classmethod
    def open(cls, settings, should_stop=lambda: False, group=None) -> ToySource:
        return cls()

    @classmethod
    def parse_key(cls, text: str) -> str | None:
        candidate = text.strip().upper()
        if not candidate.startswith("TOY-"):
            return None
        if not KEY.fullmatch(candidate):
            raise UsageError(f"{text} is not {cls.key_hint}")
        return candidate

    def changed_since(self, watermark: str | None) -> Changed:
        self.requests += 1
        since = int(watermark or 0)
        return Changed(str(DAY[0]), frozenset(k for k, day in UPDATED.items() if day > since))

    def known(self, keys: Iterable[str], on_problem=None) -> dict:
        self.requests += 1
        return {k: (str(UPDATED[k]), None) for k in keys if k in SERVED}

    def records(self, keys: Iterable[str], on_problem=None) -> Iterator:
        self.requests += 1
        for key in keys:
            if key in SERVED:
                yield key, Fetched(f"{self.url}/{key}", SERVED[key], normalize_toy)


def publish(key: str, title: str, status: str, updated: str, day: int) -> None:
    """The toy registry publishes a record of ``key`` on ``day``."""
    SERVED[key] = json.dumps({"id": key, "title": title, "status": status, "updated": updated})
    UPDATED[key] = day
    DAY[0] = max(DAY[0], day)
