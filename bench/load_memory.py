"""Peak memory of ``monitor load`` over many records: the real records copied N times
under new NCT ids (a folder under /tmp), loaded into a fresh SQLite file by a
``monitor load`` child process; prints records, seconds and the child's peak RSS.

    .venv/bin/python bench/load_memory.py [COPIES] [--code DIR]

``--code DIR`` runs the ``monitor`` package found in DIR instead (for example an
older release unpacked with ``git archive``), to compare before and after.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECORDS = Path(__file__).parents[1] / "../shared/data/ctgov/records"


def make_copies(folder: Path, copies: int) -> int:
    """``copies`` x every real record, each under an id of its own (NCT9CCCIIII)."""
    count = 0
    for i, path in enumerate(sorted(RECORDS.glob("*.json"))):
        text = path.read_text("utf-8")
        old = re.search(r'"nctId"\s*:\s*"(NCT\d{8})"', text).group(1)
        for c in range(copies):
            new = f"NCT9{c:03d}{i:04d}"
            out = folder / f"copy{c:03d}"
            out.mkdir(exist_ok=True)
            (out / f"{new}.json").write_text(text.replace(old, new), "utf-8")
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("copies", nargs="?", type=int, default=5)
    parser.add_argument("--code", help="a folder holding the monitor package to run instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="load-memory-") as tmp:
        folder = Path(tmp) / "records"
        folder.mkdir()
        count = make_copies(folder, args.copies)
        env = dict(os.environ, PYTHONPATH=args.code) if args.code else dict(os.environ)
        command = [sys.executable, "-m", "monitor", "--db", f"sqlite:///{tmp}/monitor.db", "load", str(folder)]
        start = time.perf_counter()
        run = subprocess.run(command, env=env, cwd=args.code or None, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        seconds = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if run.returncode != 0:
            sys.exit(f"monitor load failed ({run.returncode}): {run.stderr.decode()[-500:]}")
        print(f"{count} records ({args.copies} x {count // args.copies}): {seconds:.0f} s, peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
