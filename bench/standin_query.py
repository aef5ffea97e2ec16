"""The filters of one ``GET /studies`` of the stand-in registry (bench/standin.py), checked as
the ClinicalTrials.gov API v2 checks them: an unknown parameter, a malformed date or status is
refused (400) with a one-line message; so is a parameter the stand-in does not serve."""

from __future__ import annotations

import re
from dataclasses import dataclass

RANGE = re.compile(r"AREA\[LastUpdatePostDate\]\s*RANGE\[\s*([^,\]]*?)\s*,\s*([^\]]*?)\s*\]", re.I)
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
STATUS_VALUES = frozenset(
    ("ACTIVE_NOT_RECRUITING", "COMPLETED", "ENROLLING_BY_INVITATION", "NOT_YET_RECRUITING", "RECRUITING",
     "SUSPENDED", "TERMINATED", "WITHDRAWN", "AVAILABLE", "NO_LONGER_AVAILABLE", "TEMPORARILY_NOT_AVAILABLE",
     "APPROVED_FOR_MARKETING", "WITHHELD", "UNKNOWN")
)  # fmt: skip
# Every parameter of GET /studies in the API v2 specification; the API answers 400 for others.
KNOWN = {
    "format", "markupFormat", "query.cond", "query.term", "query.locn", "query.titles", "query.intr",
    "query.outc", "query.spons", "query.lead", "query.id", "query.patient", "filter.overallStatus",
    "filter.geo", "filter.ids", "filter.advanced", "filter.synonyms", "postFilter.overallStatus",
    "postFilter.geo", "postFilter.ids", "postFilter.advanced", "postFilter.synonyms", "aggFilters",
    "geoDecay", "fields", "sort", "countTotal", "pageSize", "pageToken",
}  # fmt: skip
SERVED = {
    "format", "markupFormat", "query.cond", "query.term", "query.titles", "query.intr", "query.spons",
    "query.lead", "filter.overallStatus", "filter.ids", "filter.advanced", "fields", "sort", "countTotal",
    "pageSize", "pageToken",
}  # fmt: skip


@dataclass(frozen=True)
class Query:
    """The filters of one ``GET /studies``, checked as the API checks them."""

    title: str = ""
    cond: str = ""
    intr: str = ""
    spons: str = ""
    statuses: frozenset[str] = frozenset()
    since: str = ""  # inclusive; "" is open
    until: str = ""
    sort: str = ""  # "" (id order), "asc" or "desc" by LastUpdatePostDate

    @classmethod
    def of(cls, params: dict[str, list[str]]) -> Query:
        """Raises ValueError with the API's kind of message for what it would refuse."""
        for name in params:
            if name not in KNOWN:
                raise ValueError(f"unknown parameter: {name}")
            if name not in SERVED:
                raise ValueError(f"{name} is not served by the stand-in registry (bench/standin.py)")
        text = lambda name: " ".join(params.get(name, [])).strip()  # noqa: E731
        term = text("query.term")
        ranges = [m.groups() for m in RANGE.finditer(term)]
        term = " ".join(w for w in RANGE.sub(" ", term).split() if w != "AND")
        advanced = text("filter.advanced")
        for part in re.split(r"\s+AND\s+", advanced) if advanced else []:
            match = RANGE.fullmatch(part.strip().strip("()").strip())
            if not match:
                raise ValueError(
                    f"filter.advanced: the stand-in registry evaluates AREA[LastUpdatePostDate]RANGE[from,to] "
                    f"terms joined by AND, not {part!r}"
                )
            ranges.append(match.groups())
        since = until = ""
        for low, high in ranges:
            for bound in (low, high):
                if bound.upper() not in ("MIN", "MAX", "") and not DAY.match(bound):
                    raise ValueError(f"invalid date {bound!r} in RANGE (write YYYY-MM-DD, MIN or MAX)")
            low, high = ("" if low.upper() == "MIN" else low), ("" if high.upper() == "MAX" else high)
            since = max(since, low)
            until = min(until, high) if until and high else until or high
        statuses = frozenset(s.strip().upper() for s in re.split(r"[,|]", text("filter.overallStatus")) if s.strip())
        if statuses - STATUS_VALUES:
            raise ValueError(f"filter.overallStatus: unknown status {sorted(statuses - STATUS_VALUES)[0]}")
        sort = text("sort")
        if sort not in ("", "@relevance", "LastUpdatePostDate", "LastUpdatePostDate:asc", "LastUpdatePostDate:desc"):
            raise ValueError(f"sort={sort} is not served by the stand-in registry (LastUpdatePostDate only)")
        order = "desc" if sort.endswith(":desc") else "asc" if sort.startswith("LastUpdatePostDate") else ""
        spons = " ".join(filter(None, [text("query.spons"), text("query.lead")])).lower()
        title = " ".join(filter(None, [term, text("query.titles")])).lower()
        return cls(title, text("query.cond").lower(), text("query.intr").lower(), spons, statuses, since, until, order)
