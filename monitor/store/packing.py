"""How a version's raw payload and record are packed in the database.

Both are zstandard frames (level 3: figures in ``bench/storage_bench.py`` and the
README's performance section).  The raw payload is its UTF-8 text compressed with a
fixed dictionary, ``raw_dictionary_1.json`` (one public ClinicalTrials.gov record of the
test fixtures: the keys and common values every record shares; 17% smaller than without),
behind a marker byte ``b"1"``; a bare zstandard frame (no marker) is read too.  That
dictionary file must never change: a new one gets a new name and marker.  The
normalized record is compact JSON compressed *with the raw payload as the
dictionary* (every string of a record comes from its raw payload, so a 12 kB record
packs to about 1.2 kB); once retention has dropped a raw payload, its record is
re-packed on its own.  The first byte of a packed record says which:

    b"r" + frame   compressed with the version's raw payload as dictionary
    b"z" + frame   compressed on its own

Every frame carries its content size, and unpacking refuses one larger than
:data:`MAX_UNPACKED_BYTES` (a decompression is always bounded).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import zstandard

from monitor.errors import StoreError

LEVEL = 3
MAX_UNPACKED_BYTES = 1024**3
WITH_RAW, ALONE = b"r", b"z"
RAW_DICTIONARY_1 = b"1"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@cache
def _raw_dictionary() -> zstandard.ZstdCompressionDict:
    text = Path(__file__).with_name("raw_dictionary_1.json").read_bytes()
    dictionary = zstandard.ZstdCompressionDict(text, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    dictionary.precompute_compress(level=LEVEL)
    return dictionary


def pack_raw(raw: str) -> bytes:
    compressor = zstandard.ZstdCompressor(dict_data=_raw_dictionary(), write_content_size=True, write_dict_id=False)
    return RAW_DICTIONARY_1 + compressor.compress(raw.encode("utf-8"))


DAMAGED = "the database is damaged: restore it from a backup, or fetch the trial again into a fresh database"


@contextmanager
def naming(key: str, number: int) -> Iterator[None]:
    """A stored version that cannot be unpacked is named by its trial and version number."""
    try:
        yield
    except StoreError as exc:
        raise StoreError(f"{key} version {number}: {exc}") from exc
    except (KeyError, TypeError, ValueError) as exc:  # unpacked, but not the shape of a record
        raise StoreError(f"{key} version {number}: a stored record is not a trial record ({exc!r}): {DAMAGED}") from exc


def _bytes(packed: Any) -> bytes:
    if not isinstance(packed, bytes | bytearray | memoryview):  # text written by hand over a packed column
        raise StoreError(f"a stored payload is {type(packed).__name__}, not packed bytes: {DAMAGED}")
    return bytes(packed)


def unpack_raw(packed: bytes) -> str:
    packed = _bytes(packed)
    if packed[:1] == RAW_DICTIONARY_1:
        unpacked = _decompress(packed[1:], _raw_dictionary())
    elif packed[:4] == ZSTD_MAGIC:
        unpacked = _decompress(packed)
    else:
        raise StoreError(
            f"a stored raw payload has an unknown packing {packed[:1]!r}: "
            f"was it written by a newer monitor? Otherwise {DAMAGED}"
        )
    try:
        return unpacked.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StoreError(f"a stored raw payload is not UTF-8 text: {DAMAGED}") from exc


def pack_record(record: dict[str, Any], raw: str | None) -> bytes:
    """``record`` as compact JSON, compressed with ``raw`` as dictionary when given."""
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if raw is None:
        return ALONE + zstandard.ZstdCompressor(level=LEVEL, write_content_size=True).compress(text)
    compressor = zstandard.ZstdCompressor(
        level=LEVEL, dict_data=_dictionary(raw), write_content_size=True, write_dict_id=False
    )
    return WITH_RAW + compressor.compress(text)


def unpack_record(packed: bytes, raw: str | None) -> dict[str, Any]:
    """The record packed in ``packed``; ``raw``: its version's raw payload (needed when packed with it)."""
    packed = _bytes(packed)
    kind, frame = packed[:1], packed[1:]
    if kind == ALONE:
        return _record(_decompress(frame))
    if kind == WITH_RAW:
        if raw is None:
            raise StoreError(f"a stored record needs its raw payload, which is missing: {DAMAGED}")
        return _record(_decompress(frame, _dictionary(raw)))
    raise StoreError(
        f"a stored record has an unknown packing {kind!r}: was it written by a newer monitor? Otherwise {DAMAGED}"
    )


def _record(text: bytes) -> dict[str, Any]:
    try:
        record = json.loads(text)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise StoreError(f"a stored record is not JSON: {DAMAGED}") from exc
    if not isinstance(record, dict):
        raise StoreError(f"a stored record is a JSON {type(record).__name__}, not an object: {DAMAGED}")
    return record


def repack_alone(packed: bytes, raw: str | None) -> bytes:
    """A packed record that no longer needs ``raw`` (before the raw payload is dropped)."""
    if _bytes(packed)[:1] == ALONE:
        return bytes(packed)
    return pack_record(unpack_record(packed, raw), None)


def _dictionary(raw: str) -> zstandard.ZstdCompressionDict:
    return zstandard.ZstdCompressionDict(raw.encode("utf-8"), dict_type=zstandard.DICT_TYPE_RAWCONTENT)


def _decompress(frame: bytes, dictionary: zstandard.ZstdCompressionDict | None = None) -> bytes:
    try:
        size = zstandard.frame_content_size(frame)
    except zstandard.ZstdError as exc:
        raise StoreError(f"a stored payload is not a zstandard frame ({exc}): {DAMAGED}") from exc
    if size < 0 or size > MAX_UNPACKED_BYTES:
        raise StoreError(f"a stored payload declares {size} bytes unpacked (limit {MAX_UNPACKED_BYTES}): {DAMAGED}")
    try:
        if dictionary is None:
            return zstandard.ZstdDecompressor().decompress(frame)
        return zstandard.ZstdDecompressor(dict_data=dictionary).decompress(frame)
    except zstandard.ZstdError as exc:
        raise StoreError(f"a stored payload cannot be unpacked ({exc}): {DAMAGED}") from exc


def stored_record(packed_record: bytes, packed_raw: bytes | None) -> dict[str, Any]:
    """A version's record from its two stored columns (the raw payload unpacked only when needed)."""
    if _bytes(packed_record)[:1] == ALONE:
        return unpack_record(packed_record, None)
    return unpack_record(packed_record, unpack_raw(packed_raw) if packed_raw is not None else None)
