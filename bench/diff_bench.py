"""Benchmark: normalize, diff and load over the 1,100 real records.

    .venv/bin/python bench/diff_bench.py [--data ../shared/data/ctgov] [--pairs-per-record 2]

Prints normalize throughput (records/s), diff throughput on record pairs
(pairs/s, overall and for pairs with 100+ sites, and the slowest pair), the
load of every record into a fresh SQLite store (seconds, database size), a
second load of the same records (seconds, rows added: must be 0) and peak
memory.  Targets: >= 200 pairs/s on one core for typical records, no pair over
1 s, the second load under a third of the first.

Worst cases, built from real records: 200 and 500 criteria all reworded, 1,000 sites
of which 300 are renamed, 2,000 site contacts all changed; each prints its
time (target: under 1 s each).
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import resource
import statistics
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.classify import diff_records  # noqa: E402
from monitor.normalize import normalize_study  # noqa: E402
from monitor.pipeline import load  # noqa: E402
from monitor.store import Store  # noqa: E402


def edits(study: dict, rng: random.Random) -> dict:
    """A realistic next version: sites change status, a criterion is added,
    the dates slip, sites are re-ordered (which is no change)."""
    new = copy.deepcopy(study)
    protocol = new["protocolSection"]
    sites = (protocol.get("contactsLocationsModule") or {}).get("locations") or []
    for site in rng.sample(sites, min(len(sites), 5)):
        site["status"] = rng.choice(["RECRUITING", "ACTIVE_NOT_RECRUITING", "COMPLETED", "WITHDRAWN"])
    rng.shuffle(sites)
    module = protocol.get("eligibilityModule") or {}
    module["eligibilityCriteria"] = (module.get("eligibilityCriteria") or "") + "\n* Negative pregnancy test."
    status = protocol["statusModule"]
    if status.get("primaryCompletionDateStruct", {}).get("date", "").count("-") == 2:
        status["primaryCompletionDateStruct"]["date"] = "2031-01-15"
    return new


def worst_cases(studies: list[dict]) -> dict[str, tuple[dict, dict]]:
    """Synthetic worst cases made of real text: the biggest record's sites and
    the longest criteria in the collection, multiplied."""
    base = max(
        studies, key=lambda s: len((s["protocolSection"].get("contactsLocationsModule") or {}).get("locations") or [])
    )
    real_sites = base["protocolSection"]["contactsLocationsModule"]["locations"]
    criteria = [
        line.strip("*- ").strip()
        for s in studies
        for line in (
            (s["protocolSection"].get("eligibilityModule") or {}).get("eligibilityCriteria") or ""
        ).splitlines()
        if len(line.strip()) > 40
    ][:500]
    cases = {}

    for n in (200, 500):
        old = copy.deepcopy(base)
        old["protocolSection"]["eligibilityModule"] = {
            "eligibilityCriteria": "Inclusion Criteria:\n" + "\n".join(f"* {c}" for c in criteria[:n])
        }
        new = copy.deepcopy(old)
        new["protocolSection"]["eligibilityModule"]["eligibilityCriteria"] = "Inclusion Criteria:\n" + "\n".join(
            f"* {c.replace(' ', ' the ', 1)} as confirmed at screening" for c in criteria[:n]
        )
        cases[f"{n} criteria all reworded"] = (old, new)

    sites = [
        dict(real_sites[i % len(real_sites)], facility=f"{real_sites[i % len(real_sites)].get('facility')} Unit {i}")
        for i in range(1000)
    ]
    old = copy.deepcopy(base)
    old["protocolSection"]["contactsLocationsModule"]["locations"] = sites
    new = copy.deepcopy(old)
    for site in new["protocolSection"]["contactsLocationsModule"]["locations"][:300]:
        site["facility"] = site["facility"].replace(" Unit ", " Clinical Research Unit ")
    cases["1,000 sites, 300 renamed"] = (old, new)

    contacts = [{"name": f"Coordinator {n}", "role": "CONTACT", "email": f"c{n}@example.org"} for n in range(5)]
    old = copy.deepcopy(base)
    old["protocolSection"]["contactsLocationsModule"]["locations"] = [
        dict(real_sites[i % len(real_sites)], facility=f"Site {i}", contacts=contacts) for i in range(400)
    ]
    new = copy.deepcopy(old)
    for i, site in enumerate(new["protocolSection"]["contactsLocationsModule"]["locations"]):
        site["contacts"] = [dict(c, name=f"{c['name']} {i}", email=f"n{i}.{c['email']}") for c in contacts]
    cases["2,000 site contacts all changed"] = (old, new)
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ctgov")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    files = sorted((args.data / "records").glob("*.json"))
    if not files:
        sys.exit(f"error: no records under {args.data / 'records'} (pass --data)")
    studies = [json.loads(p.read_text()) for p in files]
    print(f"records: {len(studies)} from {args.data / 'records'}")

    started = time.perf_counter()
    records = [normalize_study(s) for s in studies]
    elapsed = time.perf_counter() - started
    print(f"normalize: {len(records) / elapsed:,.0f} records/s ({elapsed:.2f} s)")

    rng = random.Random(args.seed)
    pairs = [(r, normalize_study(edits(s, rng))) for s, r in zip(studies, records, strict=True)]
    versions = sorted((args.data / "versions").glob("NCT*/"))
    for folder in versions:
        real = [normalize_study(json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))]
        pairs += list(pairwise(real))
    timings = []
    for old, new in pairs:
        t = time.perf_counter()
        diff_records(old, new)
        timings.append((time.perf_counter() - t, len(new.locations), old.key))
    total = sum(t for t, _, _ in timings)
    big = [t for t, n, _ in timings if n >= 100]
    typical = [t for t, n, _ in timings if n < 100]
    slowest = max(timings)
    print(
        f"diff: {len(pairs)} pairs, {len(pairs) / total:,.0f} pairs/s overall; "
        f"typical (<100 sites, {len(typical)} pairs): {len(typical) / sum(typical):,.0f} pairs/s, "
        f"median {statistics.median(typical) * 1000:.1f} ms"
    )
    print(
        f"diff, pairs with 100+ sites: {len(big)} pairs, {len(big) / sum(big):,.0f} pairs/s, "
        f"median {statistics.median(big) * 1000:.1f} ms"
    )
    print(f"diff, slowest pair: {slowest[0] * 1000:.0f} ms ({slowest[2]}, {slowest[1]} sites)")
    for name, (old_study, new_study) in worst_cases(studies).items():
        old, new = normalize_study(old_study), normalize_study(new_study)
        t = time.perf_counter()
        found = diff_records(old, new)
        print(f"worst case, {name}: {(time.perf_counter() - t) * 1000:.0f} ms, {len(found)} changes")

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        store = Store.open(str(db))
        t = time.perf_counter()
        first = load(store, files)
        first_s = time.perf_counter() - t
        counts = store.versions.counts()
        size = sum(p.stat().st_size for p in Path(tmp).glob("bench.db*"))
        print(
            f"load into a fresh SQLite store: {first_s:.1f} s, {counts['versions']} versions, "
            f"database {size / 1e6:.1f} MB"
        )
        t = time.perf_counter()
        second = load(store, files)
        second_s = time.perf_counter() - t
        added = store.versions.counts()["versions"] - counts["versions"]
        print(
            f"second load of the same records: {second_s:.1f} s ({second_s / first_s:.0%} of the first), "
            f"versions added: {added}, unchanged: {sum(r.status == 'unchanged' for r in second)}"
        )
        assert all(r.status == "new" for r in first)
        store.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS): {peak:.0f} MB")


if __name__ == "__main__":
    main()
