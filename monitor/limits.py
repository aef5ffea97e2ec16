"""Limits on everything that comes from outside: files, registry answers, JSON, text.

Declared once here; files, the registry client and the schema check all read the same
:class:`Limits`. Each is a named setting with a clear error when crossed, never an accident of
memory. The defaults leave ample room for real records: the largest of 1,100 real API v2 records
is 1.8 MB, nests 9 levels deep, and its longest text is under 100,000 characters.
"""

from __future__ import annotations

from pydantic import ConfigDict
from pydantic.dataclasses import dataclass

from monitor.settingtypes import Number, Whole

MIB = 1024 * 1024


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class Limits:
    # raise one where a real input needs more; lower ones refuse sooner
    max_file_bytes: Whole(1024, 4 * 1024**3) = 64 * MIB
    """A snapshot file as stored on disk (compressed or not)."""
    max_body_bytes: Whole(1024, 4 * 1024**3) = 64 * MIB
    """One registry response body, as received."""
    max_decompressed_bytes: Whole(1024, 16 * 1024**3) = 256 * MIB
    """A gzip file or a compressed response, once decompressed."""
    max_json_depth: Whole(10, 500) = 64  # Python's JSON parser recurses; 500 stays clear of its limit
    """Nesting of JSON arrays and objects."""
    max_text_chars: Whole(1_000, 1_000_000_000) = 1_000_000
    """One string in a record."""
    max_number_digits: Whole(10, 4_000) = 40  # Python refuses integers past 4,300 digits
    """Digits of one JSON integer (registry numbers are counts, years and ids)."""
    request_deadline_seconds: Number(1, 3_600) = 120.0
    """One whole request, connect to last byte (not per read)."""
    max_retry_after_seconds: Number(0, 86_400) = 300.0
    """The longest wait a registry's Retry-After can impose; longer answers are capped to this."""
    max_pages: Whole(1, 100_000) = 2_000
    """Pages followed through nextPageToken in one search or batch (not the whole registry's load)."""
    max_registry_studies: Whole(1, 100_000_000) = 2_000_000
    """Studies one pass over the whole registry may read (with its totalCount and 5%, the smaller)."""


DEFAULT_LIMITS = Limits()
