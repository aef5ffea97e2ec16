"""Saved searches, written as the API's own parameters: ``query.cond=lupus&query.intr=CAR-NK``."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from monitor.errors import UsageError

_QUERY_KEYS = re.compile(r"^(query\.[a-z]+|filter\.[a-zA-Z]+|postFilter\.[a-zA-Z]+|aggFilters|geoDecay|sort)$")


def parse_query(query: str) -> list[tuple[str, str]]:
    """A saved search as the API's parameters: ``query.cond=lupus&query.intr=CAR-NK``."""
    params = parse_qsl(query.strip().lstrip("?"), keep_blank_values=False)
    if not params:
        raise UsageError(f"{query!r} is not a search: write it as API parameters, e.g. query.cond=lupus")
    bad = [key for key, _ in params if not _QUERY_KEYS.match(key)]
    if bad:
        raise UsageError(
            f"{query!r}: {bad[0]} is not a search parameter (use query.*, filter.*, postFilter.*, aggFilters)"
        )
    return params
