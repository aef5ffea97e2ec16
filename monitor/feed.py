"""The change feed and the portfolio table -> text, Markdown, JSON, CSV, NDJSON (pure).

``CHANGE_COLUMNS`` are the CSV columns of ``monitor changes`` and the keys of
each of its JSON objects (documented in the README; append, never rename).
``TRIAL_COLUMNS`` are those of ``monitor watch list``.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Any

from monitor.portfolio import PortfolioRow, aware, folded
from monitor.store import FeedChange

FEED_FORMATS = ("text", "markdown", "json", "csv", "ndjson")
CHANGE_COLUMNS = (
    "detected_at",
    "trial",
    "title",
    "version",
    "registry_date",
    "category",
    "severity",
    "change",
    "field",
    "summary",
    "old",
    "new",
    "backfill",
)
TRIAL_COLUMNS = (
    "trial",
    "title",
    "overall_status",
    "groups",
    "versions",
    "last_change_at",
    "last_change",
    "last_checked",
    "last_error",
    "watched",
)


def short(text: str | None, width: int = 50) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _iso(moment: datetime | None) -> str | None:
    moment = aware(moment)
    return moment.isoformat(timespec="seconds") if moment else None


def change_dict(item: FeedChange) -> dict[str, Any]:
    change = item.change.to_dict()
    return {
        "detected_at": _iso(item.detected_at),
        "trial": item.trial_key,
        "title": item.title,
        "version": item.version,
        "registry_date": item.registry_date,
        **{key: change[key] for key in ("category", "severity", "change", "field", "summary", "old", "new")},
        "backfill": item.backfill,
    }


def trial_dict(row: PortfolioRow) -> dict[str, Any]:
    t = row.trial
    return {
        "trial": t.key,
        "title": t.title,
        "overall_status": t.overall_status,
        "groups": list(row.groups),
        "versions": t.versions,
        "last_change_at": _iso(t.last_change_at),
        "last_change": row.last_headline,
        "last_checked": _iso(row.last_checked),
        "last_error": t.last_error,
        "watched": t.watched,
    }


def _csv(rows: list[dict], columns: tuple[str, ...]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _cell(row[key]) for key in columns})
    return out.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


def _md(text: Any) -> str:
    """A Markdown table cell: registry text cannot break the table or become markup."""
    value = " ".join(str(text if text is not None else "").split())
    for char in "\\`*_[]<|#":
        value = value.replace(char, "\\" + char)
    return value


def changes_text(found: list[FeedChange]) -> str:
    if not found:
        return "no changes"
    lines = [f"{'detected':<10}  {'trial':<13}  {'title':<40}  {'registry':<10}  {'severity':<8}  category: summary"]
    for item in found:
        c = item.change
        lines.append(
            f"{aware(item.detected_at):%Y-%m-%d}  {item.trial_key:<13}  {short(item.title, 40):<40}  "
            f"{item.registry_date or '-':<10}  {c.severity.value:<8}  {c.category.value}: {c.summary}"
        )
    return "\n".join(lines)


def changes_markdown(found: list[FeedChange]) -> str:
    if not found:
        return "_no changes_"
    lines = ["| detected | trial | title | registry date | severity | category | summary |", "|---" * 7 + "|"]
    for item in found:
        c = item.change
        cells = [
            f"{aware(item.detected_at):%Y-%m-%d}",
            item.trial_key,
            short(item.title, 60),
            item.registry_date or "",
            c.severity.value,
            c.category.value,
            c.summary,
        ]
        lines.append("| " + " | ".join(_md(cell) for cell in cells) + " |")
    return "\n".join(lines)


def render_changes(fmt: str, found: list[FeedChange]) -> str:
    if fmt == "json":
        return json.dumps([change_dict(i) for i in found], indent=2, ensure_ascii=False)
    if fmt == "ndjson":
        return "".join(json.dumps(change_dict(i), ensure_ascii=False) + "\n" for i in found).rstrip("\n")
    if fmt == "csv":
        return _csv([change_dict(i) for i in found], CHANGE_COLUMNS).rstrip("\r\n")
    readable = folded(found)  # a person reads these two: aggregated as `monitor diff` says them
    return changes_markdown(readable) if fmt == "markdown" else changes_text(readable)


def render_portfolio(fmt: str, rows: list[PortfolioRow]) -> str:
    data = [trial_dict(r) for r in rows]
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False)
    if fmt == "ndjson":
        return "\n".join(json.dumps(d, ensure_ascii=False) for d in data)
    if fmt == "csv":
        return _csv(data, TRIAL_COLUMNS).rstrip("\r\n")
    if not rows:
        return "nothing is stored or watched: `monitor load PATH` or `monitor watch add NCT_ID`"
    header = ("trial", "title", "status", "groups", "versions", "last change", "last checked", "last error")
    table = [header]
    for r, d in zip(rows, data, strict=True):
        last = f"{aware(r.trial.last_change_at):%Y-%m-%d} {r.last_headline}" if r.trial.last_change_at else "-"
        checked = f"{aware(r.last_checked):%Y-%m-%d %H:%M}" if r.last_checked else "-"
        table.append(
            (
                d["trial"],
                short(d["title"], 40),
                d["overall_status"] or "-",
                ",".join(d["groups"]) or "-",
                str(d["versions"]),
                short(last, 70),
                checked,
                short(d["last_error"], 50) or "-",
            )
        )
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in table[1:]]
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        for row in table
    )
