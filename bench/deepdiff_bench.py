"""Benchmark: today's field deltas against DeepDiff computing them directly.

    .venv/bin/python bench/deepdiff_bench.py [--data ../shared/data/ctgov] [--rounds 3]

Both paths start from the same keyed projection (:func:`monitor.diff.project`:
text in the field table's text form, lists keyed by their identity rule).

* **today**: :func:`monitor.diff.field_deltas`: each field and each item is
  compared with ``==`` (in C) and DeepDiff only names the differing sub-fields
  of the few items that differ;
* **deepdiff**: one ``DeepDiff`` of the two whole projections (the field
  table's ``ignore_string_case``, the bookkeeping excluded with
  ``exclude_regex_paths``), each reported path reduced to its unit (field,
  item, sub-field).

On the pairs of ``diff_bench.py`` (1,100 records with realistic edits, and
the real consecutive versions) it checks that both find the same deltas, and
prints pairs/s for typical pairs (< 100 sites), pairs with 100+ sites, and the
slowest pair of each path.  Times are CPU time of this process (the best of
``--rounds``), so that other work on a shared machine does not count.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from deepdiff import DeepDiff  # noqa: E402
from diff_bench import edits  # noqa: E402

from monitor import pairing  # noqa: E402
from monitor.diff import (  # noqa: E402
    _MISSING,
    KEYED,
    Delta,
    _changed_parts,
    _empty,
    _follow_renamed_cities,
    _kind,
    field_deltas,
    project,
)
from monitor.fields import FIELDS  # noqa: E402
from monitor.model import ChangeKind, TrialRecord  # noqa: E402
from monitor.normalize import normalize_study  # noqa: E402

IGNORE_CASE = all(f.noise.ignore_case for f in FIELDS.values())  # DeepDiff's flag is global, not per path
EXCLUDE = [rf"^root\['{name}'\]" for name in FIELDS.bookkeeping]


def deepdiff_deltas(old: TrialRecord, new: TrialRecord) -> list[Delta]:
    """The same deltas as :func:`field_deltas`, with one DeepDiff over the whole projection."""
    old_cmp, old_show = project(old)
    new_cmp, new_show = project(new)
    _follow_renamed_cities(old_show, new_cmp, new_show)
    for name in KEYED:  # alignment must precede the one comparison
        new_cmp[name], new_show[name] = pairing.align(old_cmp[name], new_cmp[name], old_show[name], new_show[name])
    report = DeepDiff(
        old_cmp,
        new_cmp,
        view="tree",
        verbose_level=0,
        threshold_to_diff_deeper=0,
        ignore_string_case=IGNORE_CASE,
        exclude_regex_paths=EXCLUDE,
    )
    touched: dict[str, dict[str, set[str]]] = {}
    for items in report.values():
        for item in items:
            path = item.path(output_format="list")
            units = touched.setdefault(str(path[0]), {})
            if str(path[0]) in KEYED and len(path) > 1:
                parts = units.setdefault(str(path[1]), set())
                if len(path) > 2:
                    parts.add(str(path[2]))
    across_formats = old.source != new.source
    deltas: list[Delta] = []
    for name in old_cmp:
        if name not in touched:
            continue
        if across_formats and (_empty(old_cmp[name]) or _empty(new_cmp[name])):
            continue
        if name in KEYED:
            deltas += _keyed(name, touched[name], old_cmp[name], new_cmp[name], old_show[name], new_show[name])
        else:
            old_v, new_v = old_cmp[name], new_cmp[name]
            parts = _changed_parts(old_v, new_v)
            deltas.append(Delta(name, None, _kind(old_v, new_v), old_show[name], new_show[name], parts))
    moved_sites = {d.key for d in deltas if d.field == "locations" and d.change != ChangeKind.MODIFIED}
    return [
        d
        for d in deltas
        if not (d.field == "site_contacts" and d.change != ChangeKind.MODIFIED and d.key in moved_sites)
    ]


def _keyed(name, units, old_cmp, new_cmp, old_show, new_show) -> list[Delta]:
    units = dict(sorted(units.items()))
    added = [k for k in units if k not in old_cmp]
    removed = [k for k in units if k not in new_cmp]
    deltas = [
        Delta(
            name,
            key,
            ChangeKind.MODIFIED,
            old_show[key],
            new_show[key],
            tuple(sorted(parts)) if isinstance(old_cmp[key], dict) and isinstance(new_cmp[key], dict) else (),
        )
        for key, parts in units.items()
        if old_cmp.get(key, _MISSING) is not _MISSING and new_cmp.get(key, _MISSING) is not _MISSING
    ]
    items = FIELDS[name].items
    pairs = pairing.pairs(removed, added, items.pairing if items else None, sites=bool(items and items.by_site))
    for old_key, new_key in pairs:
        parts = _changed_parts(old_cmp[old_key], new_cmp[new_key]) if isinstance(old_cmp[old_key], dict) else ()
        deltas.append(Delta(name, new_key, ChangeKind.MODIFIED, old_show[old_key], new_show[new_key], parts))
    paired_old, paired_new = {o for o, _ in pairs}, {n for _, n in pairs}
    deltas += [Delta(name, k, ChangeKind.REMOVED, old_show[k], None) for k in removed if k not in paired_old]
    deltas += [Delta(name, k, ChangeKind.ADDED, None, new_show[k]) for k in added if k not in paired_new]
    return deltas


def _canonical(deltas: list[Delta]) -> str:
    return json.dumps(sorted(json.dumps(d.__dict__, sort_keys=True, default=str) for d in deltas))


def _pairs(data: Path, seed: int) -> list[tuple[TrialRecord, TrialRecord]]:
    studies = [json.loads(p.read_text()) for p in sorted((data / "records").glob("*.json"))]
    rng = random.Random(seed)
    pairs = [(normalize_study(s), normalize_study(edits(s, rng))) for s in studies]
    for folder in sorted((data / "versions").glob("NCT*/")):
        real = [normalize_study(json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))]
        pairs += list(pairwise(real))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ctgov")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    pairs = _pairs(args.data, args.seed)
    if not pairs:
        sys.exit(f"error: no records under {args.data / 'records'} (pass --data)")
    differing = [
        old.key for old, new in pairs if _canonical(field_deltas(old, new)) != _canonical(deepdiff_deltas(old, new))
    ]
    print(f"pairs: {len(pairs)}; deltas differ between the two paths on {len(differing)} {differing[:5]}")
    paths = {"today": field_deltas, "deepdiff": deepdiff_deltas}
    best: dict[str, list[float]] = {name: [float("inf")] * len(pairs) for name in paths}
    for _ in range(args.rounds):
        for name, run in paths.items():
            for i, (old, new) in enumerate(pairs):
                t = time.process_time()
                run(old, new)
                best[name][i] = min(best[name][i], time.process_time() - t)
    for name, times in best.items():
        typical = [t for t, (_, new) in zip(times, pairs, strict=True) if len(new.locations) < 100]
        big = [t for t, (_, new) in zip(times, pairs, strict=True) if len(new.locations) >= 100]
        slowest, at = max((t, old.key) for t, (old, _) in zip(times, pairs, strict=True))
        median = statistics.median(typical) * 1e3
        print(
            f"{name:>8}: typical {len(typical) / sum(typical):,.0f} pairs/s (median {median:.1f} ms);"
            f" 100+ sites {len(big) / sum(big):,.0f} pairs/s (median {statistics.median(big) * 1e3:.1f} ms);"
            f" slowest {slowest * 1e3:.0f} ms ({at})"
        )


if __name__ == "__main__":
    main()
