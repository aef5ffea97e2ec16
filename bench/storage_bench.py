"""Storage of versions, measured on the real records.

1. Codecs: per codec and level, the stored size as a share of the text and the
   milliseconds per record to compress and to decompress (the raw payload as the live
   source stores it, and the normalized record as compact JSON), and the packing the
   store uses (monitor.store.packing: the record compressed with its raw payload as
   zstandard dictionary).
2. Stores: every real record loaded (``monitor load``) into a fresh SQLite file and,
   with ``--postgres URL`` (or MONITOR_TEST_POSTGRES_URL), a PostgreSQL database; prints
   bytes per stored version (the whole database: tables and indexes).

    .venv/bin/python bench/storage_bench.py [--records FOLDER] [--postgres URL] [--stores-only]

Run it with PYTHONPATH pointing at an older checkout (``--stores-only``) for the before figures.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import zlib
from pathlib import Path

from sqlalchemy import create_engine, text

from monitor.normalize import normalize_study
from monitor.pipeline import load
from monitor.store import Store

DATA = Path(__file__).parents[1] / "../shared/data/ctgov"


def codecs():
    yield from ((f"zlib -{level}", lambda b, lv=level: zlib.compress(b, lv), zlib.decompress) for level in (1, 3, 6, 9))
    import zstandard

    for level in (1, 3, 9, 19):
        c, d = zstandard.ZstdCompressor(level=level), zstandard.ZstdDecompressor()
        yield f"zstd -{level}", c.compress, d.decompress


def measure_codecs(folder: Path) -> None:
    from monitor.store import packing

    raws, records, dicts = [], [], []
    for path in sorted(folder.glob("*.json")):
        study = json.loads(path.read_text("utf-8"))
        raw = json.dumps(study, ensure_ascii=False)  # as the live source stores it
        record = normalize_study(study).to_dict()
        raws.append(raw.encode("utf-8"))
        records.append(json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        dicts.append((record, raw))
    n = len(raws)
    raw_bytes, record_bytes = sum(map(len, raws)), sum(map(len, records))
    print(
        f"{n} records; mean raw {raw_bytes / n / 1000:.1f} kB, record (compact JSON) {record_bytes / n / 1000:.1f} kB"
    )
    print(f"{'codec':22} {'raw %':>7} {'rec %':>7} {'stored kB':>10} {'ms/compress':>12} {'ms/decompress':>14}")
    for name, compress, decompress in codecs():
        sizes, t_c, t_d = [0, 0], 0.0, 0.0
        for i, texts in enumerate((raws, records)):
            for data in texts:
                start = time.perf_counter()
                packed = compress(data)
                t_c += time.perf_counter() - start
                start = time.perf_counter()
                decompress(packed)
                t_d += time.perf_counter() - start
                sizes[i] += len(packed)
        row(name, sizes, raw_bytes, record_bytes, n, t_c, t_d)
    sizes, t_c, t_d = [0, 0], 0.0, 0.0
    for record, raw in dicts:  # what the store does: both columns, and reading the record back
        start = time.perf_counter()
        packed_raw, packed_record = packing.pack_raw(raw), packing.pack_record(record, raw)
        t_c += time.perf_counter() - start
        start = time.perf_counter()
        packing.stored_record(packed_record, packed_raw)
        t_d += time.perf_counter() - start
        sizes[0] += len(packed_raw)
        sizes[1] += len(packed_record)
    row("store: zstd -3 + dict", sizes, raw_bytes, record_bytes, n, t_c, t_d)


def row(name, sizes, raw_bytes, record_bytes, n, t_c, t_d) -> None:
    print(
        f"{name:22} {100 * sizes[0] / raw_bytes:6.1f}% {100 * sizes[1] / record_bytes:6.1f}%"
        f" {sum(sizes) / n / 1000:10.2f} {1000 * t_c / n:12.3f} {1000 * t_d / n:14.3f}"
    )


def measure_store(url: str, paths: list[Path], size) -> None:
    store = Store.open(url)
    start = time.perf_counter()
    load(store, paths)
    seconds = time.perf_counter() - start
    count = store.versions.counts()["versions"]
    store.close()
    total = size()
    print(
        f"{url.split(':', 1)[0]:12} {count:6} versions in {seconds:5.0f} s: {total / 1e6:7.1f} MB, "
        f"{total / count / 1000:5.1f} kB per version"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=Path, default=DATA / "records")
    parser.add_argument("--postgres", default=os.environ.get("MONITOR_TEST_POSTGRES_URL"))
    parser.add_argument("--stores-only", action="store_true")
    args = parser.parse_args()
    if not args.stores_only:
        measure_codecs(args.records)
    with tempfile.TemporaryDirectory(prefix="storage-bench-") as tmp:
        paths = [live_form(args.records, Path(tmp) / "records")]
        for folder in sorted(p for p in (DATA / "versions").iterdir() if p.is_dir()):
            paths.append(live_form(folder, Path(tmp) / "versions" / folder.name))
        db = Path(tmp) / "monitor.db"
        measure_store(f"sqlite:///{db}", paths, lambda: db.stat().st_size)
        if args.postgres:
            measure_postgres(args.postgres, paths)


def live_form(folder: Path, out: Path) -> Path:
    """The records of ``folder`` re-written as the live source stores a payload (one line of JSON)."""
    out.mkdir(parents=True)
    for path in folder.glob("*.json"):
        (out / path.name).write_text(json.dumps(json.loads(path.read_text("utf-8")), ensure_ascii=False), "utf-8")
    return out


def measure_postgres(base: str, paths: list[Path]) -> None:
    """Into a schema of its own (dropped afterwards): every table and index of it, TOAST included."""
    with create_engine(base).begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS storage_bench CASCADE; CREATE SCHEMA storage_bench"))
    url = base + ("&" if "?" in base else "?") + "options=-csearch_path%3Dstorage_bench"
    engine = create_engine(url)
    size = text(
        "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n "
        "ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = current_schema()"
    )
    try:
        measure_store(url, paths, lambda: int(engine.connect().execute(size).scalar()))
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA storage_bench CASCADE"))
        engine.dispose()


if __name__ == "__main__":
    main()
