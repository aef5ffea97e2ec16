"""Compression of stored versions, measured on the real records: prints, per codec and
level, the stored size as a share of the text and the milliseconds per record to compress
and to decompress (the raw payload as the live source stores it, and the normalized
record as compact JSON).

    .venv/bin/python bench/storage_bench.py [RECORDS_FOLDER]
"""

from __future__ import annotations

import json
import sys
import time
import zlib
from pathlib import Path

from monitor.normalize import normalize_study

FOLDER = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parents[1] / "../shared/data/ctgov/records")


def codecs():
    yield from ((f"zlib -{level}", lambda b, lv=level: zlib.compress(b, lv), zlib.decompress) for level in (1, 3, 6, 9))
    try:
        import zstandard
    except ImportError:
        return
    for level in (1, 3, 9, 19):
        c, d = zstandard.ZstdCompressor(level=level), zstandard.ZstdDecompressor()
        yield f"zstd -{level}", c.compress, d.decompress


def main() -> None:
    raws, records = [], []
    for path in sorted(FOLDER.glob("*.json")):
        study = json.loads(path.read_text("utf-8"))
        raws.append(json.dumps(study, ensure_ascii=False).encode("utf-8"))
        record = normalize_study(study).to_dict()
        records.append(json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    n = len(raws)
    raw_kb, record_kb = sum(map(len, raws)) / n / 1000, sum(map(len, records)) / n / 1000
    print(f"{n} records; mean raw {raw_kb:.1f} kB, record {record_kb:.1f} kB")
    print(f"{'codec':10} {'raw %':>7} {'rec %':>7} {'stored kB':>10} {'ms/compress':>12} {'ms/decompress':>14}")
    for name, compress, decompress in codecs():
        sizes, t_c, t_d = [0, 0], 0.0, 0.0
        for i, texts in enumerate((raws, records)):
            for text in texts:
                start = time.perf_counter()
                packed = compress(text)
                t_c += time.perf_counter() - start
                start = time.perf_counter()
                decompress(packed)
                t_d += time.perf_counter() - start
                sizes[i] += len(packed)
        print(
            f"{name:10} {100 * sizes[0] / sum(map(len, raws)):6.1f}% {100 * sizes[1] / sum(map(len, records)):6.1f}%"
            f" {sum(sizes) / n / 1000:10.2f} {1000 * t_c / n:12.3f} {1000 * t_d / n:14.3f}"
        )


if __name__ == "__main__":
    main()
