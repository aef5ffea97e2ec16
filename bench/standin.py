"""A stand-in ClinicalTrials.gov registry of any size, built from real records, for benchmarks.

    registry = StandIn.from_folder(Path("../shared/data/ctgov/records"), trials=570_000)
    server = StandInServer(registry).start()      # API v2 on 127.0.0.1, like tests/ctgov_server.py
    registry.registry_day()                       # 0.5% of the trials updated, a third of them noise only

Trial ``i`` is ``NCT{first + i:08d}`` and serves template ``i % len(templates)`` (one of the
real records) under its new id.  Records are made on request from the templates, never held:
the registry holds the templates (about 32 MB for the 1,100 real records) and, for each trial
the registry days touched, its list of edits.  An edit redates the record's
``lastUpdatePostDate`` to that registry day (as the registry does for every posted update) and
is either real (status, enrollment, primary completion date, an eligibility criterion, a new
site) or noise only (a bookkeeping redate, sites reordered with whitespace in the criteria).

The server answers the API v2 paths and parameters the monitor uses, and counts what it
served (``server.requests``, ``server.tally``): ``/version``; ``/studies/{id}``; ``/studies``
with ``filter.ids`` (the probe with ``fields``, full records without), ``pageSize`` (at most
1,000) and ``pageToken`` paging, ``countTotal``, ``sort`` (``LastUpdatePostDate``), searches
(``query.term``/``query.titles`` over the title, ``query.cond`` over the conditions,
``query.intr``, ``query.spons``/``query.lead``, ``filter.overallStatus``) and the change
filter the registry's own search syntax (Essie) writes as
``filter.advanced=AREA[LastUpdatePostDate]RANGE[2027-01-02,MAX]`` (bounds inclusive, ``MIN``
and ``MAX`` open; several terms joined by ``AND``; also accepted inside ``query.term``).
Every filter combines with the others and with ``filter.ids`` (AND), as the API does.  A
parameter the API does not know is refused with 400, as the API does; one the API knows but
the stand-in does not serve (``filter.geo``, ``postFilter.*``, other ``AREA[...]`` terms) is
refused with 400 too, naming it, so a benchmark never measures a search it did not run.
"""

from __future__ import annotations

import bisect
import json
import random
import sys
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import islice
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from standin_query import Query

from ctgov_server import NCT, CtgovServer

REAL = ("status", "enrollment", "dates", "criterion", "site")
NOISE = ("redated", "reordered")
CATEGORY = {"status": "status", "enrollment": "enrollment", "dates": "dates", "criterion": "eligibility",
            "site": "locations"}  # fmt: skip
STATUSES = ("RECRUITING", "ACTIVE_NOT_RECRUITING", "COMPLETED", "TERMINATED", "SUSPENDED")


@dataclass(frozen=True)
class Template:
    raw: bytes
    nct: bytes
    updated: str
    status: str
    title: str
    conditions: tuple[str, ...]
    interventions: tuple[str, ...] = ()
    sponsors: tuple[str, ...] = ()  # the lead sponsor first, then the collaborators

    @classmethod
    def of(cls, raw: bytes) -> Template:
        protocol = json.loads(raw)["protocolSection"]
        status = protocol.get("statusModule") or {}
        sponsors = protocol.get("sponsorCollaboratorsModule") or {}
        return cls(
            raw,
            protocol["identificationModule"]["nctId"].encode(),
            (status.get("lastUpdatePostDateStruct") or {}).get("date") or "2000-01-01",
            status.get("overallStatus") or "",
            protocol["identificationModule"].get("briefTitle") or "",
            tuple(c.lower() for c in (protocol.get("conditionsModule") or {}).get("conditions") or ()),
            tuple(
                (i.get("name") or "").lower()
                for i in (protocol.get("armsInterventionsModule") or {}).get("interventions") or ()
            ),
            tuple(
                (s.get("name") or "").lower()
                for s in [sponsors.get("leadSponsor") or {}, *(sponsors.get("collaborators") or ())]
            ),
        )


@dataclass(frozen=True)
class Edit:
    day: str  # the registry day: the record's new lastUpdatePostDate
    kind: str  # one of REAL or NOISE
    value: str | int = ""


@dataclass
class StandIn:
    """The registry's content: templates, how many trials, and every edit the registry days made."""

    templates: list[Template]
    trials: int
    first: int = 10_000_000
    churn: float = 0.005  # share of the trials updated per registry day
    noise_share: float = 1 / 3  # of those, the share whose edit is noise only
    seed: int = 13
    edits: dict[int, list[Edit]] = field(default_factory=dict)
    days: int = 0
    stamp: str = "2027-01-01T00:00:00"

    @classmethod
    def from_folder(cls, folder: Path, trials: int, **options) -> StandIn:
        files = sorted(folder.glob("*.json"))
        if not files:
            raise SystemExit(f"error: no records under {folder} (pass --data)")
        return cls([Template.of(p.read_bytes()) for p in files], trials, **options)

    def __post_init__(self) -> None:
        if self.first + self.trials > 10**8:
            raise ValueError("too many trials for NCT + 8 digits")
        latest = max(date.fromisoformat(t.updated) for t in self.templates)
        self.epoch = max(latest, date(2027, 1, 1))  # registry days come after every template's own date
        self.newest_template = latest.isoformat()
        self._touched: tuple[tuple[int, str], list[int]] = ((-1, ""), [])

    def now(self, minute: int = 0) -> datetime:
        """The monitor's clock for a cycle after the latest registry day: 10:00 UTC that day (the
        registry publishes at 09:00), plus ``minute``; a change-driven cycle's watermark and the
        records' dates then agree, as they do with the real registry."""
        day = self.epoch + timedelta(days=self.days)
        return datetime.combine(day, time(10), tzinfo=UTC) + timedelta(minutes=minute)

    # --- ids --------------------------------------------------------------------------

    def key(self, i: int) -> str:
        return f"NCT{self.first + i:08d}"

    def keys(self) -> list[str]:
        return [self.key(i) for i in range(self.trials)]

    def index(self, nct: str) -> int | None:
        i = int(nct[3:]) - self.first if NCT.match(nct) else -1
        return i if 0 <= i < self.trials else None

    # --- content ----------------------------------------------------------------------

    def template(self, i: int) -> Template:
        return self.templates[i % len(self.templates)]

    def updated(self, i: int) -> str:
        edits = self.edits.get(i)
        return edits[-1].day if edits else self.template(i).updated

    def status(self, i: int) -> str:
        status = next((e.value for e in reversed(self.edits.get(i, ())) if e.kind == "status"), None)
        return str(status) if status else self.template(i).status

    def record(self, i: int) -> bytes:
        """The record of trial ``i`` as served today."""
        template = self.template(i)
        raw = template.raw.replace(template.nct, self.key(i).encode())
        if i not in self.edits:
            return raw
        study = json.loads(raw)
        for edit in self.edits[i]:
            apply(study, edit)
        return json.dumps(study).encode()

    def slim(self, i: int) -> bytes:
        """The record with only the probe's and the search's fields."""
        template = self.template(i)
        return json.dumps(
            {
                "protocolSection": {
                    "identificationModule": {"nctId": self.key(i), "briefTitle": template.title},
                    "statusModule": {
                        "overallStatus": self.status(i),
                        "lastUpdatePostDateStruct": {"date": self.updated(i)},
                    },
                }
            }
        ).encode()

    # --- registry days -----------------------------------------------------------------

    def registry_day(self) -> dict[str, str]:
        """Publish one registry day: ``churn`` of the trials updated, ``noise_share`` of those
        noise only.  Returns {id: kind} of what it did."""
        self.days += 1
        day = (self.epoch + timedelta(days=self.days)).isoformat()
        rng = random.Random(f"{self.seed}-{self.days}")
        chosen = rng.sample(range(self.trials), max(1, round(self.trials * self.churn)))
        noisy = round(len(chosen) * self.noise_share)
        done = {}
        for n, i in enumerate(chosen):
            kind = rng.choice(NOISE) if n < noisy else rng.choice(REAL)
            value: str | int = ""
            if kind == "status":
                value = rng.choice([s for s in STATUSES if s != self.status(i)])
            elif kind in ("enrollment", "criterion"):
                value = 1 + rng.randrange(10**6)
            elif kind == "dates":
                value = f"{2030 + self.days % 7}-{1 + rng.randrange(12):02d}-{1 + rng.randrange(28):02d}"
            elif kind == "site":
                value = f"Stand-in Site {self.days}-{n}"
            self.edits.setdefault(i, []).append(Edit(day, kind, value))
            done[self.key(i)] = kind
        self.stamp = f"{day}T09:00:00"
        return done

    # --- searches ---------------------------------------------------------------------

    def matches(self, i: int, query: Query) -> bool:
        template = self.template(i)
        if query.title and query.title not in template.title.lower():
            return False
        for wanted, texts in ((query.cond, template.conditions), (query.intr, template.interventions),
                              (query.spons, template.sponsors)):  # fmt: skip
            if wanted and not any(wanted in text for text in texts):
                return False
        if query.statuses and self.status(i) not in query.statuses:
            return False
        updated = self.updated(i)
        return (not query.since or updated >= query.since) and (not query.until or updated <= query.until)

    def candidates(self, query: Query) -> range | list[int]:
        """The trials a search may match, in id order: those the registry days touched when
        the change filter starts after every template's own date, else all."""
        if query.since and query.since > self.newest_template:
            if self._touched[0] != (self.days, query.since):
                touched = sorted(i for i, edits in self.edits.items() if edits[-1].day >= query.since)
                self._touched = ((self.days, query.since), touched)
            return self._touched[1]
        return range(self.trials)


def apply(study: dict, edit: Edit) -> None:
    """One registry edit, in place."""
    protocol = study["protocolSection"]
    status = protocol.setdefault("statusModule", {})
    status["lastUpdatePostDateStruct"] = {"date": edit.day, "type": "ACTUAL"}
    if edit.kind == "status":
        status["overallStatus"] = edit.value
    elif edit.kind == "enrollment":
        info = protocol.setdefault("designModule", {}).setdefault("enrollmentInfo", {"type": "ESTIMATED"})
        info["count"] = (info.get("count") or 0) + 1 + int(edit.value) % 50
    elif edit.kind == "dates":
        status["primaryCompletionDateStruct"] = {"date": edit.value, "type": "ESTIMATED"}
    elif edit.kind == "criterion":
        module = protocol.setdefault("eligibilityModule", {})
        module["eligibilityCriteria"] = (module.get("eligibilityCriteria") or "Inclusion Criteria:") + (
            f"\n* No prior exposure to agent {edit.value}"
        )
    elif edit.kind == "site":
        sites = protocol.setdefault("contactsLocationsModule", {}).setdefault("locations", [])
        sites.append({"facility": edit.value, "city": "Lyon", "country": "France", "status": "RECRUITING"})
    elif edit.kind == "reordered":
        (protocol.get("contactsLocationsModule") or {}).get("locations", []).reverse()
        module = protocol.get("eligibilityModule") or {}
        if module.get("eligibilityCriteria"):
            module["eligibilityCriteria"] = module["eligibilityCriteria"].replace("\n", "\n\n  ")


class StandInServer(CtgovServer):
    """tests/ctgov_server.CtgovServer's HTTP side (faults included) over a :class:`StandIn`."""

    def __init__(self, registry: StandIn) -> None:
        super().__init__()
        self.registry = registry
        self.served = 0  # bytes of answers
        self.tally: list[tuple[str, int]] = []  # ("probe" | "fetch" | "search", studies answered) per /studies page

    @property
    def data_timestamp(self) -> str:
        return self.registry.stamp

    @data_timestamp.setter
    def data_timestamp(self, value: str) -> None:
        if hasattr(self, "registry"):
            self.registry.stamp = value

    def answer(self, path: str, params: dict[str, list[str]]) -> tuple[int, bytes]:
        if path.startswith("/api/v2/studies/"):
            i = self.registry.index(path.rsplit("/", 1)[1])
            return (200, self.registry.record(i)) if i is not None else (404, b'{"message": "not found"}')
        status, body = super().answer(path, params)
        self.served += len(body)
        return status, body

    def search(self, params: dict[str, list[str]]) -> tuple[int, bytes]:
        registry = self.registry
        try:
            query = Query.of(params)
            size = int(params.get("pageSize", ["10"])[0] or 10) or 10
            if size < 0:
                raise ValueError(f"pageSize must be positive, not {size}")
            size = min(size, 1000)  # the API coerces larger sizes down to 1,000
            token = params.get("pageToken", [""])[0]
            start = int(token or 0)
        except ValueError as error:
            return 400, json.dumps({"message": str(error)}).encode()
        total: int | None = None
        if "filter.ids" in params or query.sort:
            if "filter.ids" in params:
                ids = [i for part in params["filter.ids"] for i in part.replace("|", ",").split(",") if i.strip()]
                bad = [i for i in ids if not NCT.match(i.strip())]
                if bad:
                    return 400, json.dumps({"message": f"invalid NCT id {bad[0]}"}).encode()
                pool = [i for i in (registry.index(nct.strip()) for nct in dict.fromkeys(ids)) if i is not None]
            else:
                pool = registry.candidates(query)
            found = [i for i in pool if registry.matches(i, query)]
            if query.sort:
                found.sort(key=lambda i: (registry.updated(i), i), reverse=query.sort == "desc")
            page, total = found[start : start + size], len(found)
            after = start + size if start + size < len(found) else None
        else:  # id order, lazily: the token is the next trial's index
            pool = registry.candidates(query)
            wanted = (i for i in pool[bisect.bisect_left(pool, start) :] if registry.matches(i, query))
            page = list(islice(wanted, size + 1))
            after = page[-1] if len(page) > size else None
            page = page[:size]
        slim = "fields" in params
        kind = "probe" if slim else "fetch"
        if "filter.ids" not in params:
            kind = "changes" if query.since else "search"
        self.tally.append((kind, len(page)))
        items = [registry.slim(i) if slim else registry.record(i) for i in page]
        tail = f', "nextPageToken": "{after}"' if after is not None else ""
        if params.get("countTotal", [""])[0].lower() == "true":
            if total is None:
                total = sum(1 for i in registry.candidates(query) if registry.matches(i, query))
            tail += f', "totalCount": {total}'
        return 200, b'{"studies": [' + b",".join(items) + b"]" + tail.encode() + b"}"


def watching(url: str, archive: str, base_url: str, name: str, schedule: str, keys, routes=()):
    """The settings of a bench run: one watch group of ``keys`` on the stand-in at ``base_url``,
    no rate limit, no backfill (the benches' child processes import the monitor here, not at start)."""
    from monitor.config import CtgovSettings, NotificationSettings, Settings, WatchGroup, parse_schedule

    return Settings(
        database=url,
        snapshots=archive,
        ctgov=CtgovSettings(base_url=base_url, rate=0, retries=2, timeout=600, backfill=False),
        watches=(WatchGroup(name, parse_schedule(schedule), trials=tuple(keys)),),
        notifications=NotificationSettings(routes=tuple(routes)),
    )
