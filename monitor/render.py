"""Results, comparisons, histories and records -> text, Markdown or JSON (pure).

``FORMATS`` maps each output format users name with ``--format`` to its
renderers.  Renderers return strings; printing is the CLI's job.  Changes
are judged by ``judge`` (:class:`monitor.materiality.Materiality`, the
configuration's levels; the built-in ones when not given): JSON carries each
change's ``materiality`` and rule, and text and Markdown tag the high and
medium ones (``[high: stopped-phase3]``).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

from monitor.aggregate import View, select
from monitor.fields import FIELDS
from monitor.materiality import DEFAULT
from monitor.model import Change, Severity, TrialRecord
from monitor.pipeline import version_label
from monitor.results import Results
from monitor.summaries import plain, plural

if TYPE_CHECKING:
    from monitor.checking import Result
    from monitor.materiality import Materiality
    from monitor.pipeline import Comparison
    from monitor.store import StoredVersion

OUTPUT_FORMATS = ("text", "markdown", "json")


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


def headline(changes: tuple[Change, ...] | list[Change]) -> str:
    """``3 changes (1 major): Overall status ...; +2 more``."""
    if not changes:
        return "no changes"
    major = sum(1 for c in changes if c.severity == Severity.MAJOR)
    first = select(changes, None)[0].summary
    more = f"; +{len(changes) - 1} more" if len(changes) > 1 else ""
    count = f"{len(changes)} change{'s' if len(changes) != 1 else ''}" + (f" ({major} major)" if major else "")
    return f"{count}: {first}{more}"


def _judge(judge: Materiality | None) -> Materiality:
    return judge or DEFAULT


def tag(change: Change, judge: Materiality | None = None, phases=()) -> str:
    """`` [high: stopped-phase3]`` for a high or medium change, else nothing."""
    level, rule = _judge(judge).assess(change, phases)
    return f"  [{level}: {rule}]" if level in ("high", "medium") else ""


def top_tag(changes, judge: Materiality | None = None, phases=()) -> str:
    """The tag of the most material of ``changes`` (nothing when none is high or medium)."""
    judge = _judge(judge)
    ranked = sorted(changes, key=lambda c: -judge.rank(c, phases))
    return tag(ranked[0], judge, phases) if ranked else ""


def _bullet_lines(
    changes, markdown: bool, view: View | None = None, judge: Materiality | None = None, phases=()
) -> list[str]:
    """Aggregated changes by severity, each high or medium one tagged with its
    materiality; under each aggregate, its first members (all of them with ``--full``)."""
    view = view or View()
    changes = select(changes, view)
    lines = []
    for severity in (Severity.MAJOR, Severity.MINOR):
        group = [c for c in changes if c.severity == severity]
        if not group:
            continue
        lines.append(f"**{severity.value}**" if markdown else severity.value.upper())
        for c in group:
            mark = tag(c, judge, phases)
            lines.append(
                f"- `{c.category.value}` {c.summary}{mark}" if markdown else f"  [{c.category.value}] {c.summary}{mark}"
            )
            listed = view.listed(c)
            for member in listed:
                lines.append(f"  - {member.summary}" if markdown else f"      - {member.summary}")
            if len(c.items) > len(listed):
                more = f"… and {len(c.items) - len(listed)} more (--full lists them)"
                lines.append(f"  - {more}" if markdown else f"      {more}")
    return lines


# --- diff -------------------------------------------------------------------------


def _side(label: dict, other: dict | None = None) -> str:
    """``v2 (2026-02-09)`` for a stored version, ``path (2026-02-09)`` for a file.

    The date is the registry's last-update date for that version.  When both
    sides carry the same one (the registry changed a record without posting an
    update, as when it adds a derived reference), the day each was seen is
    added, so the two sides never read alike."""
    name = f"v{label['version']}" if label.get("version") else (label.get("source") or "?")
    if not label.get("date"):
        return name
    if other and other.get("date") == label["date"] and label.get("seen"):
        return f"{name} (registry {label['date']}, seen {label['seen']})"
    return f"{name} ({label['date']})"


def comparison_text(comp: Comparison, view: View | None = None, judge: Materiality | None = None) -> str:
    lines = [
        f"{comp.key}  {comp.new.title}",
        f"{_side(comp.old_label, comp.new_label)} -> {_side(comp.new_label, comp.old_label)}: {_count(comp.changes)}",
    ]
    lines += _bullet_lines(comp.changes, markdown=False, view=view, judge=judge, phases=comp.new.phases)
    return "\n".join(lines)


def comparison_markdown(comp: Comparison, view: View | None = None, judge: Materiality | None = None) -> str:
    lines = [
        f"### {comp.key}: {comp.new.title}",
        "",
        f"{_side(comp.old_label, comp.new_label)} → {_side(comp.new_label, comp.old_label)}: {_count(comp.changes)}",
        "",
    ]
    lines += _bullet_lines(comp.changes, markdown=True, view=view, judge=judge, phases=comp.new.phases)
    return "\n".join(lines)


def change_json(change, phases=(), judge: Materiality | None = None) -> dict:
    """A change's JSON, with its ``materiality`` and the ``materiality_rule`` that gave it."""
    return _judge(judge).annotate(change.to_dict(), change, phases)


def comparison_json(comp: Comparison, view: View | None = None, judge: Materiality | None = None) -> str:
    return to_json(
        {
            "trial": comp.key,
            "old": {**comp.old_label, "record": comp.old.to_dict()},
            "new": {**comp.new_label, "record": comp.new.to_dict()},
            "changes": [change_json(c, comp.new.phases, judge) for c in select(comp.changes, view)],
        }
    )


def _count(changes) -> str:
    if not changes:
        return "no changes"
    major = sum(1 for c in changes if c.severity == Severity.MAJOR)
    by_category = Counter(c.category.value for c in changes)
    detail = ", ".join(f"{n} {cat}" for cat, n in by_category.most_common())
    return f"{plural(len(changes), 'change')}, {major} major ({detail})"


# --- load -------------------------------------------------------------------------


def results_text(results: list[Result], judge: Materiality | None = None) -> str:
    lines = []
    for r in results:
        version = f"v{r.version}" if r.version else "-"
        note = f" ({r.note})" if r.note else ""
        lines.append(f"{r.key:<16} {r.status:<9} {version:<4} {r.title}{note}")
        for c in select(r.changes, None):
            lines.append(f"    [{c.severity.value} {c.category.value}] {c.summary}{tag(c, judge)}")
    lines += [line for line in (_unlisted(results), _totals(results)) if line]
    return "\n".join(lines)


def results_markdown(results: list[Result], judge: Materiality | None = None) -> str:
    lines = ["| trial | result | version | title |", "|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.key} | {r.status} | {r.version or ''} | {r.title.replace('|', '/')} |")
    changed = [r for r in results if r.changes]
    for r in changed:
        lines += ["", f"#### {r.key}: {r.title}", ""]
        lines += _bullet_lines(r.changes, markdown=True, judge=judge)
    lines += ["", *[line for line in (_unlisted(results), _totals(results)) if line]]
    return "\n".join(lines)


def results_json(results: list[Result], judge: Materiality | None = None) -> str:
    return to_json(
        {
            "results": [
                {
                    "trial": r.key,
                    "title": r.title,
                    "status": r.status,
                    "version": r.version,
                    "source": r.origin,
                    "note": r.note,
                    "changes": [change_json(c, (), judge) for c in select(r.changes, None)],
                }
                for r in results
            ],
            "counts": dict(_counts(results)),
            "unlisted": results.unlisted if isinstance(results, Results) else 0,  # counted, not listed
        }
    )


def _counts(results: list[Result]) -> Counter[str]:
    """Every result's status, those a capped :class:`~monitor.results.Results` does not list too."""
    return +results.statuses if isinstance(results, Results) else Counter(r.status for r in results)


def _unlisted(results: list[Result]) -> str:
    return results.note() if isinstance(results, Results) else ""


def _totals(results: list[Result]) -> str:
    total = results.total if isinstance(results, Results) else len(results)
    if not total:
        return "0 records"
    counts = _counts(results)
    order = ("new", "changed", "refreshed", "unchanged", "stale", "failed")
    return f"{plural(total, 'record')}: " + ", ".join(f"{counts[s]} {s}" for s in order if counts[s])


# --- history ------------------------------------------------------------------------


def history_text(history: list[StoredVersion], view: View | None = None, judge: Materiality | None = None) -> str:
    lines = [f"{history[-1].trial_key}  {history[-1].record.title}"]
    for v in history:
        what = "first version" if v.number == 1 else headline(v.changes) + top_tag(v.changes, judge, v.record.phases)
        lines.append(f"  v{v.number:<3} {v.date}  {v.source or '-'}")
        lines.append(f"        {what}")
        if view is not None and v.number > 1:  # --category, --min-severity or --full: the changes themselves
            lines += [
                "      " + line
                for line in _bullet_lines(v.changes, markdown=False, view=view, judge=judge, phases=v.record.phases)
            ]
    return "\n".join(lines)


def history_markdown(history: list[StoredVersion], view: View | None = None, judge: Materiality | None = None) -> str:
    lines = [
        f"### {history[-1].trial_key}: {history[-1].record.title}",
        "",
        "| version | date | source | changes |",
        "|---|---|---|---|",
    ]
    for v in history:
        what = "first version" if v.number == 1 else headline(v.changes) + top_tag(v.changes, judge, v.record.phases)
        lines.append(f"| {v.number} | {v.date} | {v.source or ''} | {what.replace('|', '/')} |")
    for v in history if view is not None else ():
        if v.number > 1:
            bullets = _bullet_lines(v.changes, markdown=True, view=view, judge=judge, phases=v.record.phases)
            lines += ["", f"#### v{v.number} ({v.date})", "", *bullets]
    return "\n".join(lines)


def history_json(history: list[StoredVersion], view: View | None = None, judge: Materiality | None = None) -> str:
    return to_json(
        {
            "trial": history[-1].trial_key,
            "title": history[-1].record.title,
            "versions": [
                {
                    "version": v.number,
                    "date": v.date,
                    "loaded_at": v.loaded_at.isoformat(),
                    "source": v.source,
                    "content_hash": v.content_hash,
                    "summary": "first version" if v.number == 1 else headline(v.changes),
                    "changes": [change_json(c, v.record.phases, judge) for c in select(v.changes, view)],
                }
                for v in history
            ],
        }
    )


def nothing_to_compare_json(key: str, history: list[StoredVersion]) -> str:
    """`monitor diff KEY --format json` (and /api/trials/KEY/diff) of a trial with one stored
    version, or later ones that changed nothing: ``"old": null``, no changes."""
    new = {**version_label(history[-1]), "record": history[-1].record.to_dict()}
    return to_json({"trial": key, "old": None, "new": new, "changes": []})


def nothing_to_compare(key: str, history: list[StoredVersion], fmt: str) -> str:
    """What `monitor diff KEY` says of a trial with one stored version (or later ones that
    changed nothing): what there is, and how to get something to compare it with."""
    if fmt == "json":
        return nothing_to_compare_json(key, history)
    first = history[0]
    later = len(history) - 1
    also = f" and {later} later one{'s' if later > 1 else ''} that changed nothing" if later else ""
    text = f"{key} has one stored version ({first.date}, {first.source}){also}: nothing to compare yet."
    if key.startswith("NCT"):
        return (
            f"{text} `monitor backfill {key}` brings its past versions; "
            f"`monitor diff {key} --live` compares with the registry now."
        )
    return f"{text} Load a later snapshot of it (`monitor load FILE`) to compare."


# --- show ---------------------------------------------------------------------------


def record_text(record: TrialRecord) -> str:
    """Every field of the record under its label in the field table, values in words
    (``yes``, lists joined), never Python literals."""
    data = record.to_dict()
    lines = []
    for key, value in data.items():
        if _empty(value):
            continue
        if isinstance(value, list) and value and isinstance(value[0], dict):
            lines.append(f"{_label(key, value)}: ({len(value)})")
            lines += [f"  - {_compact(v)}" for v in value]
        elif isinstance(value, dict):
            lines.append(f"{_label(key, value)}:")
            for k, v in value.items():
                if not _empty(v):
                    items = "\n".join(f"    - {plain(i)}" for i in v) if isinstance(v, list) else ""
                    shown = f"({len(v)})\n{items}" if isinstance(v, list) else plain(v)
                    lines.append(f"  {_label(f'{key}.{k}', v)}: {shown}")
        else:
            lines.append(f"{_label(key, value)}: {plain(value)}")
    return "\n".join(lines)


def _label(name: str, value: Any) -> str:
    """A record field's label in the field table (a list's in the plural); a field the
    table does not compare (``last_update_posted``, an enrollment's ``count``) in words."""
    field = FIELDS.get(name)
    if field is None:
        return name.rsplit(".", 1)[-1].replace("_", " ").capitalize()
    return field.plural if isinstance(value, list) else field.label


def _empty(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_empty(v) for v in value.values())
    return value is None or value in ([], "")


def record_markdown(record: TrialRecord) -> str:
    return f"### {record.key}: {record.title}\n\n```\n{record_text(record)}\n```"


def record_json(record: TrialRecord) -> str:
    return to_json(record.to_dict())


def _compact(item: dict) -> str:
    return "; ".join(f"{k}={plain(v)}" for k, v in item.items() if v not in (None, [], ""))


FORMATS = {
    "text": {"comparison": comparison_text, "results": results_text, "history": history_text, "record": record_text},
    "markdown": {
        "comparison": comparison_markdown,
        "results": results_markdown,
        "history": history_markdown,
        "record": record_markdown,
    },
    "json": {"comparison": comparison_json, "results": results_json, "history": history_json, "record": record_json},
}


def render(kind: str, fmt: str, value: Any, view: View | None = None, judge: Materiality | None = None) -> str:
    """``view`` (categories, lowest severity, --full) applies to comparisons and
    histories; ``judge`` (the configuration's materiality levels) to every change."""
    if kind in ("comparison", "history"):
        return FORMATS[fmt][kind](value, view, judge)
    if kind == "results":
        return FORMATS[fmt][kind](value, judge)
    return FORMATS[fmt][kind](value)
