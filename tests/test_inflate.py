"""A gzip body is inflated at most 1 MiB at a time against the cap: a bomb is refused holding about
the cap, never a whole decompressed slice beside the body."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib

import pytest

from monitor.sources.http import CHUNK_BYTES, TooLarge, _Inflate

MIB = 2**20


def bomb(size: int) -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [z.compress(b" " * MIB) for _ in range(size // MIB)]
    return b"".join(out) + z.flush()


def inflate(body: bytes, cap: int) -> bytearray:
    inflating, out = _Inflate("gzip", cap, "http://registry/studies"), bytearray()
    for start in range(0, len(body), CHUNK_BYTES):
        inflating.feed(body[start : start + CHUNK_BYTES], out)
    inflating.finish(out)
    return out


def test_a_gzip_bomb_is_refused_holding_about_the_cap_not_twice_it():
    body, cap = bomb(256 * MIB), 32 * MIB
    tracemalloc.start()
    try:
        with pytest.raises(TooLarge, match="decompresses to more than the 33,554,432-byte limit"):
            inflate(body, cap)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the body up to the cap (a bytearray over-allocates by an eighth), and one step of 1 MiB;
    # inflating up to the cap in one step held that step beside the body: twice the cap
    assert peak < cap * 1.25, f"peak {peak / MIB:.1f} MiB for a cap of 32 MiB"


@pytest.mark.parametrize("size", [0, 1, MIB - 1, MIB, MIB + 1, 5 * MIB + 17])
def test_a_gzip_body_inflates_whole_in_bounded_steps(size):
    text = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    assert inflate(gzip.compress(text, compresslevel=1), 64 * MIB) == text
