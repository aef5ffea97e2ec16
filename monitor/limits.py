"""Limits on everything that comes from outside: files, registry answers, JSON, text.

Declared once here; files, the registry client and the schema check all read the same
:class:`Limits`. Each is a named setting with a clear error when crossed, never an accident of
memory. The defaults leave ample room for real records: the largest of 1,100 real API v2 records
is 1.8 MB, nests 9 levels deep, and its longest text is under 100,000 characters.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 64 * MIB
    """A snapshot file as stored on disk (compressed or not)."""
    max_body_bytes: int = 64 * MIB
    """One registry response body, as received."""
    max_decompressed_bytes: int = 256 * MIB
    """A gzip file or a compressed response, once decompressed."""
    max_json_depth: int = 64
    """Nesting of JSON arrays and objects."""
    max_text_chars: int = 1_000_000
    """One string in a record."""
    max_number_digits: int = 40
    """Digits of one JSON integer (registry numbers are counts, years and ids)."""
    request_deadline_seconds: float = 120.0
    """One whole request, connect to last byte (not per read)."""
    max_retry_after_seconds: float = 300.0
    """The longest wait a registry's Retry-After can impose; longer answers are capped to this."""
    max_pages: int = 2_000
    """Pages followed through nextPageToken in one search or batch."""


DEFAULT_LIMITS = Limits()
