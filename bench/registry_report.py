"""What ``registry_bench.py`` prints after its runs: the linear extrapolation to the whole registry
against the targets, and every run in one Markdown table."""

from __future__ import annotations

from registry_bench import TARGETS, WHOLE, whole_requests


def extrapolate(f: dict) -> None:
    """The whole registry, linear from the measured size, against the targets."""
    n, scale = f["n"], WHOLE / f["n"]
    first = f["first"]
    rate = n / first["seconds"]
    day_requests = whole_requests(f["day"], scale)
    rows = [
        (
            "first load",
            f"{rate:,.0f} trials/s: {WHOLE / rate / 60:,.0f} min (CPU {WHOLE * first['cpu'] / n / 60:,.0f} min)",
            f">= {TARGETS['first_load']}/s",
            rate >= 400,
        ),
        (
            "unchanged cycle (did not move)",
            f"{f['unchanged']['seconds'] * scale:,.1f} s (CPU {f['unchanged']['cpu'] * scale:,.1f} s)",
            "< 1 s",
            f["unchanged"]["seconds"] * scale < 1,
        ),
        (
            "unchanged cycle (registry moved)",
            f"{f['moved']['seconds'] * scale:,.1f} s (CPU {f['moved']['cpu'] * scale:,.1f} s)",
            "",
            None,
        ),
        (
            "registry day (2,850 updated)",
            f"{day_requests} requests, {f['day']['seconds'] * scale:,.0f} s (CPU {f['day']['cpu'] * scale:,.0f} s)",
            "<= 10 requests, < 180 s",
            day_requests <= 10 and f["day"]["seconds"] * scale < 180,
        ),
        (
            "storage per version",
            f"{f['bytes_per_version'] / 1e3:.1f} kB: {f['bytes_per_version'] * WHOLE / 1e9:,.1f} GB",
            "<= 8 kB",
            f["bytes_per_version"] <= 8000,
        ),
        ("peak RSS (first load)", f"{first['peak_mb']:,.0f} MB at {n:,}", "< 400 MB", first["peak_mb"] < 400),
    ]
    print(f"[{f['backend']}] the whole registry ({WHOLE:,} trials), extrapolated linearly from N = {n:,}:")
    for name, value, target, ok in rows:
        verdict = "" if ok is None else ("meets" if ok else "MISSES")
        print(f"  {name:<34} {value:<52} {target:<24} {verdict}")


def table(runs: list[dict]) -> None:
    """Every run in one Markdown table (paste into the README or a report)."""
    if not runs:
        return
    head = [
        "database", "trials", "first load (CPU)", "trials/s (of CPU)", "registry day: s (CPU), requests",
        "unchanged: s (CPU); moved: s",
        "kB/trial (archive)", "kB/version", "peak RSS MB", f"{WHOLE:,}: first load, day requests, GB",
    ]  # fmt: skip
    print("\n| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for f in runs:
        n, first, day, scale = f["n"], f["first"], f["day"], WHOLE / f["n"]
        cells = [
            f["backend"],
            f"{n:,}",
            f"{first['seconds']:,.1f} s ({first['cpu']:,.1f} s)",
            f"{n / first['seconds']:,.0f} ({n / first['cpu']:,.0f})",
            f"{day['seconds']:,.2f} s ({day['cpu']:,.2f} s), {day['requests']}",
            f"{f['unchanged']['seconds']:,.2f} s ({f['unchanged']['cpu']:,.2f} s); {f['moved']['seconds']:,.2f} s",
            f"{f['bytes_per_trial'] / 1e3:,.1f} ({f['archive_per_trial'] / 1e3:,.1f})",
            f"{f['bytes_per_version'] / 1e3:,.1f}",
            f"{max(first['peak_mb'], day['peak_mb']):,.0f}",
            f"{WHOLE * first['seconds'] / n / 60:,.0f} min, {whole_requests(day, scale)}, "
            f"{f['bytes_per_trial'] * WHOLE / 1e9:,.1f} GB",
        ]
        print("| " + " | ".join(cells) + " |")
